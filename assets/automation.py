"""What starts runs without a person: the inbox sensor, a schedule per configured source, and
the automation condition that re-indexes what a model change (or an upstream re-run) touched.
"""

# No `from __future__ import annotations`: Dagster reads the context annotations.
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from assets.partitions import INGEST_BATCHES, ingest_batches
from assets.resources import StoreResource
from assets.sources import SOURCE_TAG, SourceSpec
from pipelines.sources.inbox import claim_inbox

INBOX_SOURCE = "inbox"
INBOX_SENSOR = "inbox_sensor"
REINDEX_SENSOR = "reindex_on_model_change"

# Re-run a partition when the asset's model (its code version) changed, or when one of its
# dependencies was re-materialized by a run that did not also run it (a keypoint re-run
# carries on to pose, framing and the search table); never while a dependency is missing or
# running. A plain indexing run updates the whole chain at once and so triggers nothing.
_REINDEX_TRIGGER: dg.AutomationCondition[Any] = (
    dg.AutomationCondition.code_version_changed() | dg.AutomationCondition.any_deps_updated()
)
REINDEX_CONDITION = (
    _REINDEX_TRIGGER.since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("re-index when the model or an input changed")


def inbox_batch_id(when: datetime) -> str:
    return f"{INBOX_SOURCE}-{when.astimezone(UTC):%Y%m%d-%H%M%S-%f}"


def build_inbox_sensor(
    job_name: str, settle_seconds: float = 10.0, interval_seconds: int = 30
) -> dg.SensorDefinition:
    """Turns new files in `$POSEFRAMER_HOME/inbox` into a new batch and requests its indexing."""

    @dg.sensor(
        name=INBOX_SENSOR,
        job_name=job_name,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "New files in $POSEFRAMER_HOME/inbox (dropped there, or uploaded with POST /uploads) "
            "become a new ingest batch, indexed by the index_batches job. Files are moved to "
            "inbox-batches/<batch>/ when claimed, so none is indexed twice; files whose bytes "
            "are already indexed are removed."
        ),
    )
    def inbox_sensor(
        context: dg.SensorEvaluationContext, store: StoreResource
    ) -> dg.SensorResult | dg.SkipReason:
        db = store.get()
        instance = context.instance
        # A batch claimed on an earlier tick whose partition never reached the instance (the
        # daemon stopped in between) is requested again rather than left unindexed.
        orphans = [
            b.batch_id
            for b in db.list_batches()
            if b.source == INBOX_SOURCE
            and not instance.has_dynamic_partition(INGEST_BATCHES, b.batch_id)
        ]
        batch_id = inbox_batch_id(datetime.now(UTC))
        claim = claim_inbox(
            store.inbox,
            store.inbox_batches / batch_id,
            db.known_image_ids,
            settle_s=settle_seconds,
        )
        if claim.already_indexed:
            context.log.info(
                f"removed {len(claim.already_indexed)} inbox files whose bytes are already "
                f"indexed: {', '.join(claim.already_indexed[:10])}"
            )
        new: list[str] = []
        if claim.folder is not None:
            db.register_batch(
                batch_id,
                INBOX_SOURCE,
                str(claim.folder),
                options={"folder": str(claim.folder)},
                source_name=INBOX_SOURCE,
            )
            new.append(batch_id)
            context.log.info(f"batch {batch_id}: {len(claim.files)} new files from the inbox")
        requested = orphans + new
        if not requested:
            waiting = f"; {claim.waiting} still being written" if claim.waiting else ""
            return dg.SkipReason(f"no new files in {store.inbox}{waiting}")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=b, partition_key=b, tags={SOURCE_TAG: INBOX_SOURCE})
                for b in requested
            ],
            dynamic_partitions_requests=[ingest_batches.build_add_request(requested)],
        )

    return inbox_sensor


def build_source_schedule(spec: SourceSpec, job_name: str) -> dg.ScheduleDefinition:
    """Each tick registers a new batch of `spec` (named by its scheduled time) and indexes it."""
    assert spec.schedule is not None

    @dg.schedule(
        name=f"{spec.job_safe_name}_schedule",
        cron_schedule=spec.schedule,
        job_name=job_name,
        execution_timezone="UTC",
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if spec.schedule_running
            else dg.DefaultScheduleStatus.STOPPED
        ),
        description=spec.description
        or f"A new batch from source {spec.name!r} ({spec.kind}), indexed end to end.",
        tags={SOURCE_TAG: spec.name},
    )
    def source_schedule(
        context: dg.ScheduleEvaluationContext, store: StoreResource
    ) -> dg.RunRequest:
        when = context.scheduled_execution_time or datetime.now(UTC)
        batch_id = spec.batch_id(when)
        spec.register_batch(store.get(), batch_id)
        # Schedules cannot return partition requests (sensors can): add it here, before the
        # run request naming it is resolved.
        context.instance.add_dynamic_partitions(INGEST_BATCHES, [batch_id])
        return dg.RunRequest(run_key=batch_id, partition_key=batch_id, tags={SOURCE_TAG: spec.name})

    return source_schedule


def build_reindex_sensor(
    assets: Sequence[dg.AssetsDefinition],
) -> dg.AutomationConditionSensorDefinition:
    """Evaluates REINDEX_CONDITION on the model assets and the search table, so changing a model
    launches one single-run backfill of exactly what it touched."""
    return dg.AutomationConditionSensorDefinition(
        REINDEX_SENSOR,
        target=dg.AssetSelection.assets(*assets),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description=(
            "Re-indexes the batches whose keypoints, pose vectors, framing, CLIP vectors or "
            "search rows are out of date after a model change (an asset's code_version is its "
            "model id) or an upstream re-run."
        ),
    )
