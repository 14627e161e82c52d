"""A published version of the search table, loaded for querying, and a cache that follows
the latest publication without a restart."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipelines.calibration import Calibration
from pipelines.records import NUM_JOINTS
from pipelines.scoring import VectorColumns
from storage import schemas
from storage.store import Publication, Store

VECTOR_COLUMNS = ("pose_vector", "clip_vector", "hybrid_vector")


def _matrix(column: pa.ChunkedArray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    mask = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    out = np.zeros((len(column), dim), dtype=np.float32)
    if mask.any():
        valid = column.filter(column.is_valid()).combine_chunks()
        out[mask] = valid.flatten().to_numpy().reshape(-1, dim)
    return out, mask


@dataclass(frozen=True)
class SearchSnapshot:
    publication: Publication
    table: pa.Table  # every column but the vectors
    columns: VectorColumns
    keypoints: np.ndarray  # (n, 17, 3) float32; zeros for rows with no person
    people_per_row: np.ndarray  # (n,) how many people the row's image holds
    calibration: Calibration

    @property
    def version(self) -> int:
        return self.publication.version

    def __len__(self) -> int:
        return self.table.num_rows

    @classmethod
    def load(cls, store: Store, publication: Publication) -> SearchSnapshot:
        table = store.search_table_at(publication.version)
        pose_type = table.schema.field("pose_vector").type
        clip_type = table.schema.field("clip_vector").type
        pose, pose_mask = _matrix(table.column("pose_vector"), pose_type.list_size)
        clip, clip_mask = _matrix(table.column("clip_vector"), clip_type.list_size)
        flat, _ = _matrix(table.column("keypoints"), schemas.KEYPOINT_VALUES)
        meta = table.drop_columns([c for c in VECTOR_COLUMNS if c in table.column_names])
        image_ids = np.asarray(table.column("image_id").to_pylist(), dtype=object)
        is_person = np.asarray(table.column("person_index").to_numpy()) >= 0
        _, inverse, counts = np.unique(image_ids, return_inverse=True, return_counts=True)
        people = np.bincount(inverse, weights=is_person, minlength=len(counts))[inverse]
        return cls(
            publication,
            meta,
            VectorColumns(pose, pose_mask, clip, clip_mask),
            flat.reshape(-1, NUM_JOINTS, 3),
            people.astype(np.int64),
            publication.calibration,
        )

    def rows(self, indices: np.ndarray) -> list[dict[str, object]]:
        return self.table.take(pa.array(indices, type=pa.int64())).to_pylist()


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
