"""Hybrid scoring: score = λ · pose_similarity + (1 − λ) · clip_similarity.

Exact (brute-force) scoring over the served table's vectors. Rows lacking the vector a query
needs are left out of that query's candidates: a pose query never returns an image with no
person, and a text query never returns a row without a CLIP vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipelines.records import FloatArray


@dataclass(frozen=True)
class VectorColumns:
    """The served table's vectors, row-aligned; missing vectors are zero rows with mask False."""

    pose: FloatArray  # (n, pose_dim)
    pose_mask: npt.NDArray[np.bool_]
    clip: FloatArray  # (n, clip_dim)
    clip_mask: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ScoredRows:
    rows: npt.NDArray[np.int64]  # indices into the columns, best first
    score: FloatArray
    pose_score: FloatArray  # NaN where the query had no pose part
    clip_score: FloatArray  # NaN where the query had no CLIP part


def hybrid_search(
    columns: VectorColumns,
    pose_query: FloatArray | None,
    clip_query: FloatArray | None,
    lam: float,
    k: int,
    allowed: npt.NDArray[np.bool_] | None = None,
) -> ScoredRows:
    """The top `k` rows by the hybrid score.

    With only one of the two queries, ranking uses that similarity alone (as λ = 1 or λ = 0
    would). With both, rows lacking one vector score 0 on that side.
    """
    if pose_query is None and clip_query is None:
        raise ValueError("a search needs a pose query, a CLIP query, or both")
    if not 0.0 <= lam <= 1.0:
        raise ValueError("lambda must lie in [0, 1]")
    n = columns.pose.shape[0]
    candidates = np.ones(n, dtype=bool) if allowed is None else allowed.copy()
    nan = np.full(n, np.nan, dtype=np.float32)
    pose_sim, clip_sim = nan, nan
    if pose_query is not None:
        pose_sim = np.where(columns.pose_mask, columns.pose @ pose_query, 0.0).astype(np.float32)
    if clip_query is not None:
        clip_sim = np.where(columns.clip_mask, columns.clip @ clip_query, 0.0).astype(np.float32)
    if pose_query is not None and clip_query is not None:
        score = lam * pose_sim + (1.0 - lam) * clip_sim
        candidates &= columns.pose_mask | columns.clip_mask
    elif pose_query is not None:
        score = pose_sim
        candidates &= columns.pose_mask
    else:
        score = clip_sim
        candidates &= columns.clip_mask
    index = np.flatnonzero(candidates)
    if index.size == 0:
        empty_i = np.zeros(0, dtype=np.int64)
        empty_f = np.zeros(0, dtype=np.float32)
        return ScoredRows(empty_i, empty_f, empty_f, empty_f)
    k = min(k, index.size)
    top = index[np.argpartition(-score[index], k - 1)[:k]] if k < index.size else index
    # Stable order: by score, then by row position, so equal scores page deterministically.
    order = np.lexsort((top, -score[top]))
    top = top[order]
    return ScoredRows(
        rows=top.astype(np.int64),
        score=score[top].astype(np.float32),
        pose_score=pose_sim[top],
        clip_score=clip_sim[top],
    )
