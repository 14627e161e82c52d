"""Access to the PoseFramer tables in one LanceDB database plus the blob store.

Every write is idempotent: rows are merged on their id (`merge_insert`), and per-batch
derived tables replace exactly the rows of the batches being written, so re-running a step
never duplicates rows and never leaves rows of people a newer model no longer finds.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from pipelines.records import DecodedImage, ImageKeypoints, IngestFailure, Pose
from pipelines.retrieval.ann import ANN_MIN_ROWS
from pipelines.retrieval.calibration import Affine, Calibration
from storage import schemas
from storage.ann_files import scan_batches
from storage.blobs import BlobStore, is_image_id
from storage.location import filesystem_for

log = logging.getLogger(__name__)

_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")

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


def failure_id(stage: str, source_uri: str) -> str:
    """A failure row's id: one row per file and stage, holding the latest reason."""
    return f"{stage}|{source_uri}"


class StoreError(RuntimeError):
    pass


class VersionNotFoundError(StoreError):
    """No published version matches the one asked for."""


class NothingPublishedError(VersionNotFoundError):
    """The search table has never been published."""


def validate_batch_id(batch_id: str) -> str:
    if not _BATCH_ID.match(batch_id):
        raise ValueError(
            f"invalid batch id {batch_id!r}: use letters, digits and _ . : - (at most 128)"
        )
    return batch_id


def _sql_list(values: Iterable[str]) -> str:
    # Only ids we validated ever reach a filter; quoting still doubles quotes defensively.
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _now() -> datetime:
    return datetime.now(UTC)


def _columns(schema: pa.Schema) -> dict[str, pa.DataType]:
    return {f.name: f.type for f in schema}


@dataclass(frozen=True)
class Batch:
    batch_id: str
    source: str  # kind: folder, inbox, urls, crawl, openverse, pinterest
    location: str
    created_at: datetime
    options: dict[str, Any] | None = None  # the source's options; None: a plain folder
    source_name: str | None = None  # the configured source it came from, if any
    source_items: int | None = None  # what its last ingest found (None until it ran)
    new_images: int | None = None
    duplicates: int | None = None
    failures: int | None = None
    ingested_at: datetime | None = None

    def source_options(self) -> dict[str, Any]:
        """Options that rebuild the batch's source (`pipelines.sources.open_source`)."""
        if self.options is not None:
            return dict(self.options)
        return {"folder": self.location}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Batch:
        options = row.get("options")
        return cls(
            batch_id=row["batch_id"],
            source=row["source"],
            location=row["location"],
            created_at=row["created_at"],
            options=None if options is None else json.loads(options),
            source_name=row.get("source_name"),
            source_items=row.get("source_items"),
            new_images=row.get("new_images"),
            duplicates=row.get("duplicates"),
            failures=row.get("failures"),
            ingested_at=row.get("ingested_at"),
        )


@dataclass(frozen=True)
class ImageRecord:
    image_id: str
    batch_id: str
    source: str
    source_uri: str
    width: int
    height: int
    format: str
    media_type: str
    thumbnail: bytes
    page_url: str | None = None
    licence: str | None = None
    attribution: str | None = None
    fetched_at: datetime | None = None
    phash: str | None = None
    near_duplicate_group: str | None = None
    medium: str | None = None


@dataclass(frozen=True)
class PoseVector:
    image_id: str
    person_index: int
    vector: np.ndarray | None


@dataclass(frozen=True)
class FramingRecord:
    image_id: str
    framing: str
    person_framing: tuple[str, ...]


@dataclass(frozen=True)
class Publication:
    version: int
    tag: str
    published_at: datetime
    batches: tuple[str, ...]
    rows: int
    keypoint_model: str
    pose_model: str
    clip_model: str | None
    framing_model: str
    # Calibration of this version's similarities (pipelines.retrieval.calibration); identity by
    # default.
    pose_scale: float = 1.0
    pose_offset: float = 0.0
    clip_scale: float = 1.0
    clip_offset: float = 0.0

    @property
    def calibration(self) -> Calibration:
        return Calibration(
            Affine(self.pose_scale, self.pose_offset), Affine(self.clip_scale, self.clip_offset)
        )

    @property
    def models(self) -> dict[str, str | None]:
        return {
            "keypoint_model": self.keypoint_model,
            "pose_model": self.pose_model,
            "clip_model": self.clip_model,
            "framing_model": self.framing_model,
        }


CALIBRATION_ROWS = 20_000


def _vectors(table: pa.Table, column: str) -> np.ndarray:
    values = table.column(column)
    valid = values.filter(values.is_valid()).combine_chunks()
    if len(valid) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return valid.flatten().to_numpy().reshape(len(valid), -1).astype(np.float32)


class Store:
    """The PoseFramer database: LanceDB tables under `db_uri` and originals under `blob_root`."""

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
        search table of at least `ann_min_rows` rows gets an ANN index."""
        self.db_uri = str(db_uri)
        self.ann_min_rows = ann_min_rows
        self.storage_options = dict(storage_options or {})
        self.db = lancedb.connect(self.db_uri, storage_options=self.storage_options or None)
        self.blobs = BlobStore(blob_root)
        self._lock = threading.Lock()
        self._publications: tuple[int, tuple[Publication, ...]] | None = None

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
        condition = f"batch_id IN ({_sql_list(batch_ids)})"
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
        query = table.search().where(f"batch_id IN ({_sql_list(batch_ids)})", prefilter=True)
        if columns:
            query = query.select(columns)
        return query.limit(None).to_arrow()

    def version_of(self, name: str) -> int | None:
        table = self._open(name)
        return None if table is None else int(table.version)

    def count_rows(self, name: str) -> int:
        table = self._open(name)
        return 0 if table is None else int(table.count_rows())

    # ---------------------------------------------------------------- batches

    def register_batch(
        self,
        batch_id: str,
        source: str,
        location: str,
        options: dict[str, Any] | None = None,
        source_name: str | None = None,
    ) -> Batch:
        """Record a new ingest batch (a batch id already registered keeps its first record)."""
        validate_batch_id(batch_id)
        table = self._table(T_BATCHES, schemas.BATCHES)
        rows = pa.Table.from_pylist(
            [
                {
                    "batch_id": batch_id,
                    "source": source,
                    "location": location,
                    "created_at": _now(),
                    "options": None if options is None else json.dumps(options, sort_keys=True),
                    "source_name": source_name,
                }
            ],
            schema=schemas.BATCHES,
        )
        table.merge_insert("batch_id").when_not_matched_insert_all().execute(rows)
        found = self.get_batch(batch_id)
        assert found is not None
        return found

    def record_batch_ingest(
        self, batch_id: str, source_items: int, new_images: int, duplicates: int, failures: int
    ) -> None:
        """What the latest ingest of a batch found, for the UI and the asset checks."""
        validate_batch_id(batch_id)
        table = self._table(T_BATCHES, schemas.BATCHES)
        table.update(
            where=f"batch_id = '{batch_id}'",
            values={
                "source_items": source_items,
                "new_images": new_images,
                "duplicates": duplicates,
                "failures": failures,
                "ingested_at": _now(),
            },
        )

    def get_batch(self, batch_id: str) -> Batch | None:
        rows = self._rows_for_batches(T_BATCHES, [batch_id])
        if rows is None or rows.num_rows == 0:
            return None
        return Batch.from_row(rows.to_pylist()[0])

    def list_batches(self) -> list[Batch]:
        table = self._open(T_BATCHES)
        if table is None:
            return []
        rows = table.to_arrow().to_pylist()
        return sorted((Batch.from_row(r) for r in rows), key=lambda b: b.created_at)

    # ---------------------------------------------------------------- images

    def known_image_ids(self, image_ids: Iterable[str]) -> set[str]:
        ids = [i for i in set(image_ids) if is_image_id(i)]
        table = self._open(T_IMAGES)
        if table is None or not ids:
            return set()
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = (
                table.search()
                .where(f"image_id IN ({_sql_list(chunk)})", prefilter=True)
                .select(["image_id"])
                .limit(None)
                .to_arrow()
            )
            found.update(rows.column("image_id").to_pylist())
        return found

    def add_images(
        self,
        batch_id: str,
        source: str,
        images: Sequence[DecodedImage],
        groups: Mapping[str, str] | None = None,
    ) -> list[ImageRecord]:
        """Store originals and image rows; bytes already indexed (by sha256) are left alone.

        `groups` maps an image id to its near-duplicate group (default: a group of its own).
        Returns the records of the images this call added (not those already indexed, which
        keep their row and batch).
        """
        validate_batch_id(batch_id)
        records: list[ImageRecord] = []
        seen: set[str] = self.known_image_ids(im.image_id for im in images)
        for im in images:
            if im.image_id in seen:
                continue
            seen.add(im.image_id)
            self.blobs.put(im.image_id, im.data)
            records.append(
                ImageRecord(
                    image_id=im.image_id,
                    batch_id=batch_id,
                    source=source,
                    source_uri=im.source_uri,
                    width=im.width,
                    height=im.height,
                    format=im.format,
                    media_type=im.media_type,
                    thumbnail=im.thumbnail,
                    page_url=im.page_url,
                    licence=im.licence,
                    attribution=im.attribution,
                    fetched_at=im.fetched_at,
                    phash=im.phash,
                    near_duplicate_group=(groups or {}).get(im.image_id, im.image_id),
                    medium=im.medium,
                )
            )
        if records:
            now = _now()
            table = self._table(T_IMAGES, schemas.IMAGES)
            rows = pa.Table.from_pylist(
                [{**r.__dict__, "ingested_at": now} for r in records], schema=schemas.IMAGES
            )
            table.merge_insert("image_id").when_not_matched_insert_all().execute(rows)
        return records

    def images_for_batches(self, batch_ids: Sequence[str]) -> list[ImageRecord]:
        rows = self._rows_for_batches(T_IMAGES, batch_ids)
        if rows is None:
            return []
        fields = ImageRecord.__dataclass_fields__
        return [
            ImageRecord(**{k: v for k, v in r.items() if k in fields})
            for r in sorted(rows.to_pylist(), key=lambda r: r["source_uri"])
        ]

    def perceptual_hashes(self) -> list[tuple[str, str, str]]:
        """`(image_id, phash, near_duplicate_group)` of every image that has a hash, in the
        order they were ingested (so the first of a group comes first)."""
        table = self._open(T_IMAGES)
        if table is None or "phash" not in table.schema.names:
            return []
        rows = (
            table.search()
            .where("phash IS NOT NULL", prefilter=True)
            .select(["image_id", "phash", "near_duplicate_group", "ingested_at"])
            .limit(None)
            .to_arrow()
            .to_pylist()
        )
        rows.sort(key=lambda r: (r["ingested_at"], r["image_id"]))
        return [
            (r["image_id"], r["phash"], r["near_duplicate_group"] or r["image_id"]) for r in rows
        ]

    def get_image(self, image_id: str) -> ImageRecord | None:
        if not is_image_id(image_id):
            return None
        table = self._open(T_IMAGES)
        if table is None:
            return None
        rows = table.search().where(f"image_id = '{image_id}'", prefilter=True).limit(1).to_arrow()
        if rows.num_rows == 0:
            return None
        fields = ImageRecord.__dataclass_fields__
        return ImageRecord(**{k: v for k, v in rows.to_pylist()[0].items() if k in fields})

    def record_failures(self, batch_id: str, stage: str, failures: Sequence[IngestFailure]) -> None:
        if not failures:
            return
        validate_batch_id(batch_id)
        now = _now()
        rows = pa.Table.from_pylist(
            [
                {
                    # One row per file, whichever batch saw it fail last: re-indexing a folder
                    # does not pile up copies of the same failure.
                    "failure_id": failure_id(stage, f.source_uri),
                    "batch_id": batch_id,
                    "stage": stage,
                    "source_uri": f.source_uri,
                    "reason": f.reason,
                    "recorded_at": now,
                }
                for f in {f.source_uri: f for f in failures}.values()
            ],
            schema=schemas.INGEST_FAILURES,
        )
        table = self._table(T_FAILURES, schemas.INGEST_FAILURES)
        table.merge_insert(
            "failure_id"
        ).when_matched_update_all().when_not_matched_insert_all().execute(rows)

    def latest_failures(self, source_uris: Iterable[str]) -> dict[str, tuple[datetime, str]]:
        """When each of these files last failed to be indexed, and why (files that never
        failed are left out)."""
        uris = sorted(set(source_uris))
        table = self._open(T_FAILURES)
        found: dict[str, tuple[datetime, str]] = {}
        if table is None or not uris:
            return found
        for start in range(0, len(uris), 500):
            rows = (
                table.search()
                .where(f"source_uri IN ({_sql_list(uris[start : start + 500])})", prefilter=True)
                .select(["source_uri", "recorded_at", "reason"])
                .limit(None)
                .to_arrow()
                .to_pylist()
            )
            for row in rows:
                uri, at = row["source_uri"], row["recorded_at"]
                if uri not in found or at > found[uri][0]:
                    found[uri] = (at, row["reason"])
        return found

    def failures_for_batches(self, batch_ids: Sequence[str]) -> list[dict[str, Any]]:
        rows = self._rows_for_batches(T_FAILURES, batch_ids)
        return [] if rows is None else sorted(rows.to_pylist(), key=lambda r: r["source_uri"])

    # ---------------------------------------------------------------- keypoints

    def replace_keypoints(self, batch_ids: Sequence[str], results: Sequence[ImageKeypoints]) -> int:
        image_batch = self._image_batches(batch_ids)
        rows = pa.Table.from_pylist(
            [
                {
                    "image_id": r.image_id,
                    "batch_id": image_batch[r.image_id],
                    "keypoint_model": r.model_id,
                    "people": [
                        {
                            "keypoints": p.flat(),
                            "extras": json.dumps([list(e) for e in p.extras]),
                            "score": p.score,
                        }
                        for p in r.people
                    ],
                }
                for r in results
            ],
            schema=schemas.KEYPOINTS,
        )
        return self._replace_batches(T_KEYPOINTS, schemas.KEYPOINTS, "image_id", batch_ids, rows)

    def keypoints_for_batches(self, batch_ids: Sequence[str]) -> list[ImageKeypoints]:
        rows = self._rows_for_batches(T_KEYPOINTS, batch_ids)
        if rows is None:
            return []
        out = []
        for r in rows.to_pylist():
            people = tuple(
                Pose.from_array(
                    np.asarray(p["keypoints"], dtype=np.float64).reshape(-1, 3),
                    extras=tuple(tuple(e) for e in json.loads(p["extras"] or "[]")),
                    score=p["score"],
                )
                for p in r["people"] or []
            )
            out.append(ImageKeypoints(r["image_id"], r["keypoint_model"], people))
        return sorted(out, key=lambda k: k.image_id)

    def _image_batches(self, batch_ids: Sequence[str]) -> dict[str, str]:
        rows = self._rows_for_batches(T_IMAGES, batch_ids, ["image_id", "batch_id"])
        if rows is None:
            return {}
        return dict(
            zip(
                rows.column("image_id").to_pylist(),
                rows.column("batch_id").to_pylist(),
                strict=True,
            )
        )

    # ---------------------------------------------------------------- framing

    def replace_framing(
        self, batch_ids: Sequence[str], model_id: str, records: Sequence[FramingRecord]
    ) -> int:
        image_batch = self._image_batches(batch_ids)
        rows = pa.Table.from_pylist(
            [
                {
                    "image_id": r.image_id,
                    "batch_id": image_batch[r.image_id],
                    "framing_model": model_id,
                    "framing": r.framing,
                    "person_framing": list(r.person_framing),
                }
                for r in records
            ],
            schema=schemas.FRAMING,
        )
        return self._replace_batches(T_FRAMING, schemas.FRAMING, "image_id", batch_ids, rows)

    def framing_for_batches(self, batch_ids: Sequence[str]) -> dict[str, FramingRecord]:
        rows = self._rows_for_batches(T_FRAMING, batch_ids)
        if rows is None:
            return {}
        return {
            r["image_id"]: FramingRecord(r["image_id"], r["framing"], tuple(r["person_framing"]))
            for r in rows.to_pylist()
        }

    def framing_model_for_batches(self, batch_ids: Sequence[str]) -> str | None:
        rows = self._rows_for_batches(T_FRAMING, batch_ids, ["framing_model"])
        if rows is None or rows.num_rows == 0:
            return None
        return str(rows.column("framing_model")[0].as_py())

    # ---------------------------------------------------------------- embeddings

    def replace_pose_embeddings(
        self, batch_ids: Sequence[str], model_id: str, dim: int, vectors: Sequence[PoseVector]
    ) -> int:
        image_batch = self._image_batches(batch_ids)
        schema = schemas.pose_embeddings(dim)
        rows = pa.Table.from_pylist(
            [
                {
                    "id": f"{v.image_id}:{v.person_index}",
                    "image_id": v.image_id,
                    "batch_id": image_batch[v.image_id],
                    "person_index": v.person_index,
                    "pose_model": model_id,
                    "vector": None if v.vector is None else v.vector.astype(np.float32).tolist(),
                }
                for v in vectors
            ],
            schema=schema,
        )
        return self._replace_batches(T_POSE, schema, "id", batch_ids, rows)

    def pose_embeddings_for_batches(
        self, batch_ids: Sequence[str]
    ) -> tuple[str | None, dict[tuple[str, int], np.ndarray | None]]:
        rows = self._rows_for_batches(T_POSE, batch_ids)
        if rows is None or rows.num_rows == 0:
            return None, {}
        models = set(rows.column("pose_model").to_pylist())
        out = {
            (r["image_id"], r["person_index"]): (
                None if r["vector"] is None else np.asarray(r["vector"], dtype=np.float32)
            )
            for r in rows.to_pylist()
        }
        return ",".join(sorted(models)), out

    def replace_clip_embeddings(
        self,
        batch_ids: Sequence[str],
        model_id: str,
        dim: int,
        image_ids: Sequence[str],
        vectors: np.ndarray,
    ) -> int:
        image_batch = self._image_batches(batch_ids)
        schema = schemas.clip_embeddings(dim)
        rows = pa.Table.from_pylist(
            [
                {
                    "image_id": image_id,
                    "batch_id": image_batch[image_id],
                    "clip_model": model_id,
                    "vector": vector.astype(np.float32).tolist(),
                }
                for image_id, vector in zip(image_ids, vectors, strict=True)
            ],
            schema=schema,
        )
        return self._replace_batches(T_CLIP, schema, "image_id", batch_ids, rows)

    def clip_embeddings_for_batches(
        self, batch_ids: Sequence[str]
    ) -> tuple[str | None, dict[str, np.ndarray]]:
        rows = self._rows_for_batches(T_CLIP, batch_ids)
        if rows is None or rows.num_rows == 0:
            return None, {}
        models = set(rows.column("clip_model").to_pylist())
        vectors = {
            r["image_id"]: np.asarray(r["vector"], dtype=np.float32) for r in rows.to_pylist()
        }
        return ",".join(sorted(models)), vectors

    # ---------------------------------------------------------------- search table

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
        tag = f"publish-{version}"
        if tag not in table.tags.list():
            table.tags.create(tag, version)
        return version

    def search_vector_sample(
        self, version: int, rows: int = CALIBRATION_ROWS
    ) -> tuple[np.ndarray, np.ndarray]:
        """The pose and CLIP vectors (rows that have one) of about `rows` rows spread evenly
        over the served table at `version`, streamed: a million-row table is never held whole
        for its calibration."""
        table = self.db.open_table(T_SEARCH)
        table.checkout(version)
        stride = max(1, -(-int(table.count_rows()) // rows))
        parts = []
        seen = 0
        for batch in scan_batches(table, ["pose_vector", "clip_vector"]):
            first = (-seen) % stride
            parts.append(batch.take(pa.array(range(first, batch.num_rows, stride), pa.int64())))
            seen += batch.num_rows
        if not parts:
            return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
        sample = pa.Table.from_batches(parts)
        return _vectors(sample, "pose_vector"), _vectors(sample, "clip_vector")

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
        table = self.db.open_table(T_SEARCH)
        table.checkout(version)
        models = table.search().select(["keypoint_model", "pose_model", "clip_model"])
        models = models.limit(None).to_arrow()

        def distinct(column: str) -> str | None:
            values = {v for v in models.column(column).to_pylist() if v}
            return ",".join(sorted(values)) if values else None

        publication = Publication(
            version=version,
            tag=f"publish-{version}",
            published_at=_now(),
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
        table = self.db.open_table(T_SEARCH)
        table.checkout(version)
        columns = [n for n in table.schema.names if n not in without]
        rows = table.search().select(columns).limit(None).to_arrow()
        for f in schemas.PROVENANCE:
            if f.name not in rows.schema.names:
                rows = rows.append_column(f, pa.nulls(rows.num_rows, f.type))
        return rows

    def search_row_count(self, version: int) -> int:
        table = self.db.open_table(T_SEARCH)
        table.checkout(version)
        return int(table.count_rows())

    def search_column_at(self, version: int, name: str) -> pa.ChunkedArray:
        """One column of the served table at `version`, in scan order."""
        _, batches = self.search_batches_at(version, [name])
        return pa.chunked_array([b.column(0) for b in batches])

    def search_batches_at(
        self, version: int, columns: Sequence[str]
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The served table's schema at `version`, and `columns` of its rows in scan order, a
        batch at a time (large vector columns are never held whole)."""
        table = self.db.open_table(T_SEARCH)
        table.checkout(version)
        return table.schema, scan_batches(table, list(columns))

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
