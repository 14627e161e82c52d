"""The served table's hybrid vector and its ANN index.

Each search row carries `hybrid_vector = [pose_vector, clip_vector]` (zeros for a missing
side). A hybrid query is then one vector search: with query `[w_p · p, w_c · c]` under the dot
product, a row scores `w_p · p·p' + w_c · c·c'`, which is the (calibrated) hybrid score up to a
constant when `w_p = λ · a_pose` and `w_c = (1 − λ) · a_clip` (see pipelines.calibration).
The ANN pass only proposes candidates; the service re-ranks them exactly.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

log = logging.getLogger(__name__)

HYBRID = "hybrid_vector"
# Below this many rows an exact scan is fast enough and an index would only cost time.
ANN_MIN_ROWS = 20_000


def hybrid_vector(
    pose: list[float] | np.ndarray | None,
    clip: list[float] | np.ndarray | None,
    pose_dim: int,
    clip_dim: int,
) -> list[float]:
    out = np.zeros(pose_dim + clip_dim, dtype=np.float32)
    if pose is not None:
        out[:pose_dim] = pose
    if clip is not None:
        out[pose_dim:] = clip
    return out.tolist()


def _sub_vectors(dim: int) -> int:
    """A PQ sub-vector count dividing `dim`, aiming at ~8 dimensions per sub-vector."""
    best = 1
    for n in range(1, dim + 1):
        if dim % n == 0 and dim / n >= 4:
            best = n if abs(dim / n - 8) < abs(dim / best - 8) else best
    return best


@dataclass(frozen=True)
class IndexReport:
    indexed: bool
    rows: int
    seconds: float
    kind: str


def build_ann_index(table: Any, dim: int) -> IndexReport:
    """Index the hybrid column (IVF-PQ, dot product) once the table is large enough."""
    rows = int(table.count_rows())
    if rows < ANN_MIN_ROWS:
        return IndexReport(False, rows, 0.0, "exact scan")
    from lancedb.index import IvfPq

    start = time.perf_counter()
    partitions = max(16, int(math.sqrt(rows)))
    table.create_index(
        HYBRID,
        config=IvfPq(
            distance_type="dot",
            num_partitions=partitions,
            num_sub_vectors=_sub_vectors(dim),
        ),
        replace=True,
    )
    seconds = time.perf_counter() - start
    log.info("built IVF-PQ index over %d rows in %.1f s", rows, seconds)
    return IndexReport(True, rows, seconds, f"IVF_PQ({partitions} partitions)")


def nearest(
    table: Any,
    query: np.ndarray,
    limit: int,
    where: str | None = None,
    columns: list[str] | None = None,
    nprobes: int = 24,
    refine_factor: int = 5,
) -> pa.Table:
    """The `limit` rows with the largest dot product with `query` (approximate when indexed)."""
    builder = (
        table.search(query.astype(np.float32), vector_column_name=HYBRID)
        .distance_type("dot")
        .limit(limit)
        .nprobes(nprobes)
        .refine_factor(refine_factor)
    )
    if where:
        builder = builder.where(where, prefilter=True)
    if columns:
        builder = builder.select(columns)
    return builder.to_arrow()
