"""The Dagster `Definitions` of PoseFramer: `dagster dev -m assets.definitions`.

Everything is chosen here, in one place: the indexing assets and their checks, the job that
indexes selected batches, the inbox sensor, a schedule per configured source, the re-index
automation, and the resources.
"""

from __future__ import annotations

import json

import dagster as dg

from assets.automation import build_inbox_sensor, build_reindex_sensor, build_source_schedule
from assets.checks import INDEX_CHECKS
from assets.index_assets import build_index_assets
from assets.model_ids import ModelIds
from assets.resources import (
    ClipModelResource,
    FramingModelResource,
    KeypointModelResource,
    PoseModelResource,
    ProgressResource,
    StoreResource,
)
from assets.sources import load_sources
from config.settings import Settings

INDEX_JOB = "index_batches"


def build_definitions(settings: Settings, progress_bar: bool = False) -> dg.Definitions:
    """All assets, checks, the indexing job, sensors, schedules and resources."""
    index_assets = build_index_assets(ModelIds.of(settings))
    index_job = dg.define_asset_job(
        INDEX_JOB,
        selection=dg.AssetSelection.assets(*index_assets),
        description="Index the selected ingest batches end to end and publish the search table.",
    )
    model_assets = [a for a in index_assets if dg.AssetKey("source_images") not in a.keys]
    schedules = [
        build_source_schedule(spec, INDEX_JOB)
        for spec in load_sources(settings.sources_path)
        if spec.schedule
    ]
    storage, models = settings.storage, settings.models
    return dg.Definitions(
        assets=index_assets,
        asset_checks=INDEX_CHECKS,
        jobs=[index_job],
        schedules=schedules,
        sensors=[
            build_inbox_sensor(INDEX_JOB, settle_seconds=settings.indexing.inbox_settle_seconds),
            build_reindex_sensor(model_assets),
        ],
        resources={
            "store": StoreResource(
                home=str(storage.home),
                lancedb_uri=storage.lancedb_uri,
                lancedb_storage_options=storage.lancedb_storage_options,
                ann_min_rows=storage.ann_min_rows,
            ),
            "keypoint_model": KeypointModelResource(
                name=models.keypoint_model,
                device=models.device,
                options_json=json.dumps(models.keypoint_model_options),
            ),
            "pose_model": PoseModelResource(
                name=models.pose_model, options_json=json.dumps(models.pose_model_options)
            ),
            "framing_model": FramingModelResource(name=models.framing_model),
            "clip_model": ClipModelResource(
                model=models.clip_model,
                pretrained=models.clip_pretrained,
                config_path=models.clip_config,
                device=models.device,
                batch_size=models.batch_size,
                status_file=str(storage.clip_status_file),
                retry_after_s=models.clip_retry_after,
            ),
            "progress": ProgressResource(bar=progress_bar),
        },
    )


defs = build_definitions(Settings.from_env())
