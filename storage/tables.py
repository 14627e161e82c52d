"""The tables of one LanceDB database: their names, and the access every group of them shares.

Every write is idempotent: rows are merged on their id (`merge_insert`), and per-batch
derived tables replace exactly the rows of the batches being written, so re-running a step
never duplicates rows and never leaves rows of people a newer model no longer finds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lancedb
import pyarrow as pa
import pyarrow.fs as pafs

from pipelines.retrieval.ann import ANN_MIN_ROWS
from storage.blobs import BlobStore
from storage.location import filesystem_for
from storage.records import (
    Publication,
    StoreError,
    validate_batch_id,
)

T_BATCHES = "batches"
T_IMAGES = "images"
T_FAILURES = "ingest_failures"
T_KEYPOINTS = "keypoints"
T_FRAMING = "framing"
T_POSE = "pose_embeddings"
T_CLIP = "clip_embeddings"
T_SEARCH = "search"
T_PUBLICATIONS = "publications"
# The record of what was ingested and published: a newer schema adds columns to these tables
# (null in the rows already there) and never rebuilds them. Derived tables (keypoints, framing,
# vectors) are rebuilt when a new model changes their vector sizes.
_KEPT_TABLES = frozenset({T_BATCHES, T_IMAGES, T_FAILURES, T_SEARCH, T_PUBLICATIONS})


def sql_list(values: Iterable[str]) -> str:
    # Only ids we validated ever reach a filter; quoting still doubles quotes defensively.
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _columns(schema: pa.Schema) -> dict[str, pa.DataType]:
    return {f.name: f.type for f in schema}


class TableAccess:
    """The LanceDB database and the blob store, and what every group of tables shares: opening
    a table (creating or migrating it), replacing a batch's rows in one commit, reading them."""

    def __init__(
        self,
        db_uri: str | Path,
        blob_root: str | Path,
        storage_options: Mapping[str, str] | None = None,
        ann_min_rows: int = ANN_MIN_ROWS,
    ) -> None:
        """`db_uri` is a local directory or an object-store URI (`s3://bucket/prefix`);
        `storage_options` (endpoint, region, keys, ...; see `storage.location`) go to LanceDB
        and to `files()`. Originals stay under the local `blob_root` either way. A published
        search table of at least `ann_min_rows` rows gets an ANN index (`storage.publishing`)."""
        self.db_uri = str(db_uri)
        self.ann_min_rows = ann_min_rows
        self.storage_options = dict(storage_options or {})
        self.db = lancedb.connect(self.db_uri, storage_options=self.storage_options or None)
        self.blobs = BlobStore(blob_root)
        self._lock = threading.Lock()
        self._publications: tuple[int, tuple[Publication, ...]] | None = None

    def files(self) -> tuple[pafs.FileSystem, str]:
        """The filesystem holding the tables and the database's root path in it, for files
        kept beside the tables: a local path, or S3 reached with the tables' own endpoint and
        credentials. Other object stores raise ValueError."""
        return filesystem_for(self.db_uri, self.storage_options)

    # ---------------------------------------------------------------- tables

    def _table_names(self) -> set[str]:
        names: set[str] = set()
        token: str | None = None
        while True:
            page = self.db.list_tables(page_token=token)
            names.update(page.tables)
            token = page.page_token
            if not token:
                return names

    def _table(self, name: str, schema: pa.Schema) -> Any:
        """Open `name`, creating it with `schema`, or bringing an older table up to it.

        Columns the table lacks are added (null in its rows). A column whose type changed (the
        vector size of a new model) rebuilds a derived table, and the served table, empty;
        the tables that record what was ingested are never rebuilt: that is an error.
        """
        with self._lock:
            if name not in self._table_names():
                return self.db.create_table(name, schema=schema, exist_ok=True)
            table = self.db.open_table(name)
            current = table.schema
            if _columns(current) == _columns(schema):
                return table
            changed = [
                f.name
                for f in schema
                if f.name in current.names and not current.field(f.name).type.equals(f.type)
            ]
            if changed:
                if name in _KEPT_TABLES and name != T_SEARCH:
                    raise StoreError(
                        f"table {name!r} has columns {changed} of another type than this "
                        "version of PoseFramer writes; refusing to rebuild it (its rows are the "
                        "record of what was ingested): migrate it by hand"
                    )
                # Vector sizes changed (a new model): rows of the old model cannot be served
                # with the new one. Overwrite keeps the old versions readable.
                return self.db.create_table(name, schema=schema, mode="overwrite")
            missing = [f for f in schema if f.name not in current.names]
            if missing:
                required = [f.name for f in missing if not f.nullable]
                if required:
                    raise StoreError(
                        f"cannot add non-nullable columns {required} to table {name!r}"
                    )
                table.add_columns(missing)
            return table

    def _open(self, name: str) -> Any | None:
        if name not in self._table_names():
            return None
        return self.db.open_table(name)

    def _replace_batches(
        self, name: str, schema: pa.Schema, key: str, batch_ids: Sequence[str], rows: pa.Table
    ) -> int:
        """Make the rows of `batch_ids` in `name` exactly `rows`, in one commit."""
        table = self._table(name, schema)
        condition = f"batch_id IN ({sql_list(batch_ids)})"
        (
            table.merge_insert(key)
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete(condition)
            # Vectors are null where a model had nothing to say (no CLIP weights, too few
            # joints seen); pyarrow's cast already rejects any wrong length.
            .execute(rows.cast(schema), on_bad_vectors="null")
        )
        return int(table.version)

    def _rows_for_batches(
        self, name: str, batch_ids: Sequence[str], columns: list[str] | None = None
    ) -> pa.Table | None:
        table = self._open(name)
        if table is None:
            return None
        for b in batch_ids:
            validate_batch_id(b)
        query = table.search().where(f"batch_id IN ({sql_list(batch_ids)})", prefilter=True)
        if columns:
            query = query.select(columns)
        return query.limit(None).to_arrow()

    def version_of(self, name: str) -> int | None:
        table = self._open(name)
        return None if table is None else int(table.version)

    def count_rows(self, name: str) -> int:
        table = self._open(name)
        return 0 if table is None else int(table.count_rows())

    def images_per_batch(self, table_name: str, batch_ids: Sequence[str]) -> dict[str, int]:
        """Per batch, the number of distinct images with rows in `table_name` (e.g. `images`,
        `keypoints`, `search`), at the table's latest version."""
        rows = self._rows_for_batches(table_name, batch_ids, ["image_id", "batch_id"])
        found: dict[str, set[str]] = {b: set() for b in batch_ids}
        if rows is not None:
            for image_id, batch_id in zip(
                rows.column("image_id").to_pylist(),
                rows.column("batch_id").to_pylist(),
                strict=True,
            ):
                found.setdefault(batch_id, set()).add(image_id)
        return {b: len(ids) for b, ids in found.items()}
