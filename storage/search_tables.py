"""The served search table and its publications: versions written, sampled, recorded, read."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.retrieval.ann import SCAN_BATCH
from pipelines.retrieval.calibration import Calibration
from storage import schemas
from storage.records import (
    NothingPublishedError,
    Publication,
    VersionNotFoundError,
)
from storage.tables import (
    T_PUBLICATIONS,
    T_SEARCH,
    TableAccess,
    utc_now,
)

log = logging.getLogger(__name__)

CALIBRATION_ROWS = 20_000


def publication_tag(version: int) -> str:
    """The tag a published version of the search table carries."""
    return f"publish-{version}"


def scan_batches(
    table: Any, columns: list[str], batch: int = SCAN_BATCH
) -> Iterator[pa.RecordBatch]:
    """The rows of a (checked-out) LanceDB table in scan order, a batch at a time: the order
    the index numbers its rows in, and the order `SearchSnapshot` loads them in."""
    reader = table.search().select(columns).limit(None).to_batches(batch)
    yield from reader


@dataclass(frozen=True)
class VectorSample:
    """Vectors of rows spread evenly over a version of the search table (those that have one),
    and how many rows the version holds."""

    pose: np.ndarray
    clip: np.ndarray
    rows: int


def _vectors(table: pa.Table, column: str) -> np.ndarray:
    values = table.column(column)
    valid = values.filter(values.is_valid()).combine_chunks()
    if len(valid) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return valid.flatten().to_numpy().reshape(len(valid), -1).astype(np.float32)


class SearchTables(TableAccess):
    """The search table's versions and the publications that say which one is served."""

    def write_search_rows(
        self,
        batch_ids: Sequence[str],
        rows: list[dict[str, Any]] | pa.Table,
        pose_dim: int,
        clip_dim: int,
    ) -> int:
        """Replace the batches' rows of the served table in one commit, tag that version
        (`publish-<version>`) and return it. Not served until `record_publication` (see
        `storage.publishing`)."""
        schema = schemas.search(pose_dim, clip_dim)
        if not isinstance(rows, pa.Table):
            rows = pa.Table.from_pylist(rows, schema=schema)
        version = self._replace_batches(T_SEARCH, schema, "id", batch_ids, rows)
        table = self.db.open_table(T_SEARCH)
        tag = publication_tag(version)
        if tag not in table.tags.list():
            table.tags.create(tag, version)
        return version

    def _search_at(self, version: int) -> Any:
        """The search table checked out at `version`."""
        table = self.db.open_table(T_SEARCH)
        table.checkout(version)
        return table

    def search_vector_sample(self, version: int, rows: int = CALIBRATION_ROWS) -> VectorSample:
        """The pose and CLIP vectors of about `rows` rows spread evenly over the served table at
        `version`, streamed: a million-row table is never held whole for its calibration."""
        table = self._search_at(version)
        total = int(table.count_rows())
        stride = max(1, -(-total // rows))
        parts = []
        seen = 0
        for batch in scan_batches(table, ["pose_vector", "clip_vector"]):
            first = (-seen) % stride
            parts.append(batch.take(pa.array(range(first, batch.num_rows, stride), pa.int64())))
            seen += batch.num_rows
        if not parts:
            empty = np.zeros((0, 0), np.float32)
            return VectorSample(empty, empty, total)
        sample = pa.Table.from_batches(parts)
        return VectorSample(_vectors(sample, "pose_vector"), _vectors(sample, "clip_vector"), total)

    def record_publication(
        self,
        version: int,
        batch_ids: Sequence[str],
        framing_model: str,
        calibration: Calibration,
    ) -> Publication:
        """Record the search table's `version` as published: from now on services serve it.

        The publication names the model ids found in the whole table at that version, not only
        in the batches just written: while a re-index is half done, two pose models show up
        (comma-joined) and the service refuses to mix them.
        """
        models = (
            self._search_at(version).search().select(["keypoint_model", "pose_model", "clip_model"])
        )
        models = models.limit(None).to_arrow()

        def distinct(column: str) -> str | None:
            values = {v for v in models.column(column).to_pylist() if v}
            return ",".join(sorted(values)) if values else None

        publication = Publication(
            version=version,
            tag=publication_tag(version),
            published_at=utc_now(),
            batches=tuple(batch_ids),
            rows=models.num_rows,
            keypoint_model=distinct("keypoint_model") or "",
            pose_model=distinct("pose_model") or "",
            clip_model=distinct("clip_model"),
            framing_model=framing_model,
            pose_scale=calibration.pose.scale,
            pose_offset=calibration.pose.offset,
            clip_scale=calibration.clip.scale,
            clip_offset=calibration.clip.offset,
        )
        pubs = self._table(T_PUBLICATIONS, schemas.PUBLICATIONS)
        pubs.merge_insert(
            "version"
        ).when_matched_update_all().when_not_matched_insert_all().execute(
            pa.Table.from_pylist(
                [{**publication.__dict__, "batches": list(publication.batches)}],
                schema=schemas.PUBLICATIONS,
            )
        )
        return publication

    def publications(self) -> list[Publication]:
        """Every publication, oldest first. Read again only when the publications table has a
        new version: the service asks on every request."""
        try:
            table = self.db.open_table(T_PUBLICATIONS)
        except (ValueError, FileNotFoundError):
            if T_PUBLICATIONS in self._table_names():
                raise
            return []
        version = int(table.version)
        cached = self._publications
        if cached is not None and cached[0] == version:
            return list(cached[1])
        publications = sorted(
            (
                Publication(
                    **{
                        **r,
                        "batches": tuple(r["batches"] or ()),
                        # Versions published before calibration existed: the identity.
                        **{k: 1.0 for k in ("pose_scale", "clip_scale") if r.get(k) is None},
                        **{k: 0.0 for k in ("pose_offset", "clip_offset") if r.get(k) is None},
                    }
                )
                for r in table.to_arrow().to_pylist()
            ),
            key=lambda p: p.version,
        )
        self._publications = (version, tuple(publications))
        return publications

    def resolve_publication(self, version: str | int | None = None) -> Publication:
        """The publication for a version number or tag, or the latest one when None."""
        pubs = self.publications()
        if not pubs:
            raise NothingPublishedError(
                "nothing has been published yet: run `poseframer index DIR`"
            )
        if version is None or version == "":
            return pubs[-1]
        for p in pubs:
            if str(version) in (str(p.version), p.tag):
                return p
        known = ", ".join(f"{p.version} ({p.tag})" for p in pubs[-10:])
        raise VersionNotFoundError(
            f"no published search table version {version!r}; recent versions: {known}"
        )

    def search_table_at(self, version: int, without: Sequence[str] = ()) -> pa.Table:
        """Every row of the served table as it was at `version`, less the columns `without`,
        in scan order (the order the ANN index numbers rows in).

        A version published before the provenance columns existed gets them as nulls, so
        readers see one set of columns whatever the version.
        """
        table = self._search_at(version)
        columns = [n for n in table.schema.names if n not in without]
        rows = table.search().select(columns).limit(None).to_arrow()
        for f in schemas.PROVENANCE:
            if f.name not in rows.schema.names:
                rows = rows.append_column(f, pa.nulls(rows.num_rows, f.type))
        return rows

    def search_column_at(self, version: int, name: str) -> pa.ChunkedArray:
        """One column of the served table at `version`, in scan order."""
        _, batches = self.search_batches_at(version, [name])
        return pa.chunked_array([b.column(0) for b in batches])

    def search_batches_at(
        self, version: int, columns: Sequence[str]
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The served table's schema at `version`, and `columns` of its rows in scan order, a
        batch at a time (large vector columns are never held whole)."""
        table = self._search_at(version)
        return table.schema, scan_batches(table, list(columns))
