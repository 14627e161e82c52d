"""What the ranking and the paging read of a served version: `Searchable`."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pyarrow as pa

from pipelines.retrieval.ann import AnnIndex
from pipelines.retrieval.calibration import Calibration
from pipelines.retrieval.exact import VectorColumns


class Searchable(Protocol):
    """A served version loaded for querying (`storage.snapshot.SearchSnapshot`), row-aligned:
    what the ranking and the paging read."""

    @property
    def version(self) -> int: ...
    @property
    def table(self) -> pa.Table: ...  # every column but the vectors
    @property
    def pose(self) -> np.ndarray: ...  # (n, pose_dim); zeros where a row has no pose
    @property
    def pose_mask(self) -> np.ndarray: ...
    @property
    def clip_mask(self) -> np.ndarray: ...
    @property
    def keypoints(self) -> np.ndarray: ...  # (n, 17, 3)
    @property
    def people_per_row(self) -> np.ndarray: ...
    @property
    def visible_joints(self) -> np.ndarray: ...
    @property
    def calibration(self) -> Calibration: ...
    @property
    def ann(self) -> AnnIndex | None: ...
    @property
    def columns(self) -> VectorColumns: ...  # every row's vectors
    def __len__(self) -> int: ...
    def side_mask(self, pose: bool, clip: bool) -> np.ndarray: ...
    def side_count(self, pose: bool, clip: bool) -> int: ...
    def clip_vectors(self, rows: np.ndarray) -> np.ndarray: ...
    def rows(self, indices: np.ndarray) -> list[dict[str, object]]: ...
