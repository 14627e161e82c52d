"""A published version of the search table, loaded for querying, and a cache that follows
the latest publication without a restart."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pipelines.records import NUM_JOINTS, VISIBLE_SCORE
from pipelines.retrieval.ann import AnnIndex
from pipelines.retrieval.calibration import Calibration
from pipelines.retrieval.exact import VectorColumns
from storage.ann_files import open_index
from storage.records import Publication
from storage.store import Store

VECTOR_COLUMNS = ("pose_vector", "clip_vector")


def _matrices(
    batches: Iterable[pa.RecordBatch], rows: int, schema: pa.Schema, names: Sequence[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fixed-size-list columns as float32 matrices (zero rows where null) with their masks,
    filled a batch at a time in one pass (no column is ever held whole)."""
    out = {
        name: (
            np.zeros((rows, schema.field(name).type.list_size), dtype=np.float32),
            np.zeros(rows, dtype=bool),
        )
        for name in names
    }
    start = 0
    for batch in batches:
        n = batch.num_rows
        for name in names:
            matrix, mask = out[name]
            chunk = batch.column(name)
            valid = np.asarray(chunk.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            mask[start : start + n] = valid
            if valid.any():
                values = chunk.filter(chunk.is_valid()).flatten().to_numpy(zero_copy_only=False)
                matrix[start : start + n][valid] = values.reshape(-1, matrix.shape[1])
        start += n
    if start != rows:
        raise RuntimeError(f"the vector columns have {start} rows where the table has {rows}")
    return out


@dataclass(frozen=True)
class SearchSnapshot:
    """A published version, loaded for querying.

    Pose vectors, keypoints and the non-vector columns sit in memory. CLIP vectors do too for a
    small table; a large one has an ANN index (`pipelines.retrieval.ann`, built when it was
    published) and its CLIP vectors stay on disk, read for the rows a query re-scores. It is
    the `pipelines.retrieval.searchable.Searchable` the ranking and paging work on.
    """

    publication: Publication
    table: pa.Table  # every column but the vectors
    pose: np.ndarray  # (n, pose_dim) float32; zeros where a row has no pose
    pose_mask: np.ndarray  # (n,) bool
    clip_mask: np.ndarray  # (n,) bool
    keypoints: np.ndarray  # (n, 17, 3) float32; zeros for rows with no person
    keypoints_mask: np.ndarray  # (n,) bool: the row has keypoints
    people_per_row: np.ndarray  # (n,) how many people the row's image holds
    visible_joints: np.ndarray  # (n,) how many joints of the row's person are in view
    calibration: Calibration
    clip: np.ndarray | None = None  # (n, clip_dim) in memory when there is no ANN index
    ann: AnnIndex | None = None
    _side_masks: dict[tuple[bool, bool], np.ndarray] = field(
        default_factory=dict, repr=False, compare=False
    )
    _side_counts: dict[tuple[bool, bool], int] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def version(self) -> int:
        return self.publication.version

    def __len__(self) -> int:
        return self.table.num_rows

    @classmethod
    def load(cls, store: Store, publication: Publication) -> SearchSnapshot:
        version = publication.version
        # One chunk per column: taking rows from a many-chunk column copies it whole. The
        # vectors and keypoints are read a chunk at a time into arrays.
        without = (*VECTOR_COLUMNS, "keypoints")
        table = store.search_table_at(version, without=without).combine_chunks()
        pa.default_memory_pool().release_unused()
        rows = table.num_rows
        ann = None
        try:
            fs, root = store.files()
        except ValueError:
            fs = None  # an object store the sidecar files do not support: exact scoring
        if fs is not None:
            ann = open_index(fs, root, version, table.column("id"))
        names = ["pose_vector", "keypoints"] + (["clip_vector"] if ann is None else [])
        schema, batches = store.search_batches_at(version, names)
        columns = _matrices(batches, rows, schema, names)
        pose, pose_mask = columns["pose_vector"]
        flat, keypoints_mask = columns["keypoints"]
        clip, clip_mask = columns["clip_vector"] if ann is None else (None, ann.clip_mask)
        pa.default_memory_pool().release_unused()
        image = table.column("image_id").dictionary_encode().combine_chunks().indices
        image_index = np.asarray(image.to_numpy(zero_copy_only=False), dtype=np.int64)
        is_person = np.asarray(table.column("person_index").to_numpy()) >= 0
        people = np.bincount(image_index, weights=is_person)[image_index]
        return cls(
            publication=publication,
            table=table,
            pose=pose,
            pose_mask=pose_mask,
            clip_mask=clip_mask,
            keypoints=flat.reshape(-1, NUM_JOINTS, 3),
            keypoints_mask=keypoints_mask,
            people_per_row=people.astype(np.int64),
            visible_joints=(flat.reshape(-1, NUM_JOINTS, 3)[:, :, 2] > VISIBLE_SCORE).sum(axis=1),
            calibration=publication.calibration,
            clip=clip,
            ann=ann,
        )

    def side_mask(self, pose: bool, clip: bool) -> np.ndarray:
        """The rows with a vector on a side that counts (a pose, a CLIP vector, or either)."""
        key = (pose, clip)
        cached = self._side_masks.get(key)
        if cached is None:
            if pose and clip:
                cached = self.pose_mask | self.clip_mask
            else:
                cached = self.pose_mask if pose else self.clip_mask
            self._side_masks[key] = cached
        return cached

    def side_count(self, pose: bool, clip: bool) -> int:
        key = (pose, clip)
        if key not in self._side_counts:
            self._side_counts[key] = int(self.side_mask(pose, clip).sum())
        return self._side_counts[key]

    def clip_vectors(self, rows: np.ndarray) -> np.ndarray:
        """The exact CLIP vectors of `rows` (zeros for rows without one)."""
        if self.clip is not None:
            return self.clip[rows]
        assert self.ann is not None
        return self.ann.clip_vectors(np.asarray(rows, dtype=np.int64))

    @property
    def columns(self) -> VectorColumns:
        """Every row's vectors (for a table with an ANN index this reads all CLIP vectors)."""
        clip = self.clip if self.clip is not None else self.clip_vectors(np.arange(len(self)))
        return VectorColumns(self.pose, self.pose_mask, clip, self.clip_mask)

    def rows(self, indices: np.ndarray) -> list[dict[str, object]]:
        """The rows at `indices`, every column but the vectors (keypoints included)."""
        rows = self.table.take(pa.array(indices, type=pa.int64())).to_pylist()
        for row, i in zip(rows, indices, strict=True):
            row["keypoints"] = (
                self.keypoints[i].ravel().tolist() if self.keypoints_mask[i] else None
            )
        return rows


class SnapshotCache:
    """Serves a pinned version, or follows the latest publication (checked on each use)."""

    def __init__(self, store: Store, pinned: str | None = None) -> None:
        self.store = store
        self.pinned = pinned or None
        self._snapshots: dict[int, SearchSnapshot] = {}
        self._lock = threading.Lock()

    def get(self, version: str | int | None = None) -> SearchSnapshot:
        publication = self.store.resolve_publication(
            version if version not in (None, "") else self.pinned
        )
        with self._lock:
            snapshot = self._snapshots.get(publication.version)
            if snapshot is None:
                snapshot = SearchSnapshot.load(self.store, publication)
                # Keep the latest few versions: pinned queries and the current one.
                while len(self._snapshots) >= 3:
                    self._snapshots.pop(min(self._snapshots))
                self._snapshots[publication.version] = snapshot
            return snapshot
