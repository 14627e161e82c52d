"""The Dagster `Definitions` of PoseFramer: `dagster dev -m assets.definitions`.

Everything is chosen here, in one place: the indexing assets and their checks, the job that
indexes selected batches, the inbox sensor, a schedule per configured source, the re-index
automation, and the resources.
"""

from __future__ import annotations

import json

import dagster as dg

from assets.automation import build_inbox_sensor, build_reindex_sensor, build_source_schedule
from assets.checks import build_index_checks
from assets.index_assets import build_index_assets
from assets.resources import (
    ClipModelResource,
    FramingModelResource,
    KeypointModelResource,
    PoseModelResource,
    ProgressResource,
    StoreResource,
)
from assets.settings import IndexSettings, ModelIds
from assets.sources import load_sources

INDEX_JOB = "index_batches"


def build_definitions(settings: IndexSettings, progress_bar: bool = False) -> dg.Definitions:
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
    return dg.Definitions(
        assets=index_assets,
        asset_checks=build_index_checks(index_assets),
        jobs=[index_job],
        schedules=schedules,
        sensors=[
            build_inbox_sensor(INDEX_JOB, settle_seconds=settings.inbox_settle_seconds),
            build_reindex_sensor(model_assets),
        ],
        resources={
            "store": StoreResource(
                home=str(settings.home),
                lancedb_uri=settings.lancedb_uri,
                lancedb_storage_options=settings.lancedb_storage_options,
            ),
            "keypoint_model": KeypointModelResource(
                name=settings.keypoint_model,
                device=settings.device,
                options_json=json.dumps(settings.keypoint_options),
            ),
            "pose_model": PoseModelResource(
                name=settings.pose_model, options_json=json.dumps(settings.pose_options)
            ),
            "framing_model": FramingModelResource(name=settings.framing_model),
            "clip_model": ClipModelResource(
                model=settings.clip_model,
                pretrained=settings.clip_pretrained,
                config_path=settings.clip_config,
                device=settings.device,
                batch_size=settings.batch_size,
                status_file=str(settings.clip_status_file),
                retry_after_s=settings.clip_retry_after_s,
            ),
            "progress": ProgressResource(bar=progress_bar),
        },
    )


defs = build_definitions(IndexSettings.from_env())
