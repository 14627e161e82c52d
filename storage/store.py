"""Access to the PoseFramer tables in one LanceDB database plus the blob store.

`Store` is the one object the assets, the service and the benchmarks hold; its methods come
by concern from `storage.ingest_tables` (batches, images, failures), `storage.stage_tables`
(what each model stage found) and `storage.search_tables` (the served table and its
publications), over the shared table access of `storage.tables`. Its record types and
errors are `storage.records`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pipelines.retrieval.ann import ANN_MIN_ROWS
from storage.ingest_tables import IngestTables
from storage.search_tables import SearchTables
from storage.stage_tables import StageTables


class Store(IngestTables, StageTables, SearchTables):
    """The PoseFramer database: LanceDB tables under `db_uri` and originals under `blob_root`
    (see `storage.tables.TableAccess`)."""

    @classmethod
    def at_home(
        cls,
        home: str | Path,
        db_uri: str | Path | None = None,
        storage_options: Mapping[str, str] | None = None,
        ann_min_rows: int = ANN_MIN_ROWS,
    ) -> Store:
        """The store of one PoseFramer home: tables in `db_uri` (default `<home>/lancedb`),
        originals in `<home>/blobs`."""
        home = Path(home)
        return cls(db_uri or home / "lancedb", home / "blobs", storage_options, ann_min_rows)
