"""The Dagster `Definitions` of PoseFramer: `dagster dev -m assets.definitions`."""

from __future__ import annotations

import dagster as dg

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

INDEX_JOB = "index_batches"


def build_definitions(settings: IndexSettings, progress_bar: bool = False) -> dg.Definitions:
    """All assets, the indexing job and the resources, chosen here in one place."""
    index_assets = build_index_assets(ModelIds.of(settings))
    index_job = dg.define_asset_job(
        INDEX_JOB,
        selection=dg.AssetSelection.assets(*index_assets),
        description="Index the selected ingest batches end to end and publish the search table.",
    )
    return dg.Definitions(
        assets=index_assets,
        jobs=[index_job],
        resources={
            "store": StoreResource(home=str(settings.home)),
            "keypoint_model": KeypointModelResource(name=settings.keypoint_model),
            "pose_model": PoseModelResource(name=settings.pose_model),
            "framing_model": FramingModelResource(name=settings.framing_model),
            "clip_model": ClipModelResource(
                model=settings.clip_model,
                pretrained=settings.clip_pretrained,
                config_path=settings.clip_config,
                device=settings.device,
                batch_size=settings.batch_size,
            ),
            "progress": ProgressResource(bar=progress_bar),
        },
    )


defs = build_definitions(IndexSettings.from_env())
