"""Run the indexing job for one registered folder batch on a throwaway Dagster instance."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.definitions import INDEX_JOB, build_definitions
from assets.partitions import INGEST_BATCHES
from config.settings import Settings


def run_folder_batch(
    settings: Settings, folder: Path, batch_id: str = "b1", raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    """Register `folder` as batch `batch_id` and materialize the whole chain for it."""
    settings.storage.open_store().register_batch(batch_id, "folder", str(folder))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(INGEST_BATCHES, [batch_id])
    return (
        build_definitions(settings)
        .resolve_job_def(INDEX_JOB)
        .execute_in_process(
            partition_key=batch_id, instance=instance, raise_on_error=raise_on_error
        )
    )
