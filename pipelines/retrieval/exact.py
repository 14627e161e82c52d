"""Hybrid scoring: score = λ · pose_similarity + (1 − λ) · clip_similarity.

Exact (brute-force) scoring over the served table's vectors. Rows lacking the vector a query
needs are left out of that query's candidates: a pose query never returns an image with no
person, and a text query never returns a row without a CLIP vector.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipelines.records import FloatArray
from pipelines.retrieval.calibration import Affine

# How many of a vector pass's best rows a query with don't-care joints re-scores exactly.
RESCORE_POOL = 2000


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
    pose_score: FloatArray  # calibrated; NaN where the query had no pose part
    clip_score: FloatArray  # calibrated; NaN where the query had no CLIP part
    pose_raw: FloatArray  # the raw cosine behind pose_score
    clip_raw: FloatArray  # the raw cosine behind clip_score
    pose_variant: npt.NDArray[np.int64]  # which pose query variant matched best (0: the first)


def weighted_sides(has_pose: bool, has_clip: bool, lam: float) -> tuple[bool, bool]:
    """Which similarities carry weight in a query with a pose (`has_pose`), a CLIP vector
    (`has_clip`) or both, at λ: with both, λ = 1 leaves CLIP out and λ = 0 the pose."""
    use_pose = has_pose and (not has_clip or lam > 0.0)
    use_clip = has_clip and (not has_pose or lam < 1.0)
    return use_pose, use_clip


def hybrid_search(
    columns: VectorColumns,
    pose_query: FloatArray | None,
    clip_query: FloatArray | None,
    lam: float,
    k: int,
    allowed: npt.NDArray[np.bool_] | None = None,
    pose_rescore: Callable[[npt.NDArray[np.int64]], FloatArray] | None = None,
    rescore_pool: int = RESCORE_POOL,
    pose_calibration: Affine | None = None,
    clip_calibration: Affine | None = None,
) -> ScoredRows:
    """The top `k` rows by the hybrid score.

    With only one of the two queries, ranking uses that similarity alone (as λ = 1 or λ = 0
    would), and so does a λ of exactly 1 or 0 with both. With both queries and 0 < λ < 1,
    rows lacking one vector score 0 on that side.

    `pose_query` may hold several variants of the pose, `(m, dim)` (e.g. the pose and its
    mirror image): each row takes the similarity of its best-matching variant, and
    `pose_variant` says which one that was.

    Each similarity goes through its calibration (an affine map, see
    `pipelines.retrieval.calibration`) before the weighted sum; λ = 1 and λ = 0 still rank
    purely by one side, since an affine map with a positive scale keeps the order.

    `pose_rescore(rows)` gives exact pose similarities for some rows, `(m, len(rows))` or
    `(len(rows),)` (e.g. ignoring a query's don't-care joints); it re-scores the best
    `rescore_pool` candidates of the vector pass, and the ranking is taken among those.
    """
    if pose_query is None and clip_query is None:
        raise ValueError("a search needs a pose query, a CLIP query, or both")
    if not 0.0 <= lam <= 1.0:
        raise ValueError("lambda must lie in [0, 1]")
    n = columns.pose.shape[0]
    candidates = np.ones(n, dtype=bool) if allowed is None else allowed.copy()
    nan = np.full(n, np.nan, dtype=np.float32)
    pose_sim, clip_sim = nan, nan
    variant = np.zeros(n, dtype=np.int64)
    if pose_query is not None:
        per_variant = np.atleast_2d(pose_query) @ columns.pose.T
        variant = per_variant.argmax(axis=0).astype(np.int64)
        pose_sim = np.where(columns.pose_mask, per_variant.max(axis=0), 0.0).astype(np.float32)
    if clip_query is not None:
        clip_sim = np.where(columns.clip_mask, columns.clip @ clip_query, 0.0).astype(np.float32)
    # At λ = 1 (or 0) the other side has no weight: a row lacking the weighted vector has no
    # similarity to rank by, so it is no candidate (rather than scoring 0 above negatives).
    use_pose, use_clip = weighted_sides(pose_query is not None, clip_query is not None, lam)
    if use_pose and use_clip:
        candidates &= columns.pose_mask | columns.clip_mask
    elif use_pose:
        candidates &= columns.pose_mask
    else:
        candidates &= columns.clip_mask

    pose_cal = pose_calibration or Affine.identity()
    clip_cal = clip_calibration or Affine.identity()

    def combine() -> FloatArray:
        pose_c, clip_c = pose_cal(pose_sim), clip_cal(clip_sim)
        if use_pose and use_clip:
            return (lam * pose_c + (1.0 - lam) * clip_c).astype(np.float32)
        return pose_c if use_pose else clip_c

    score = combine()
    index = np.flatnonzero(candidates)
    if pose_rescore is not None and use_pose and index.size:
        pool = _top(index, score, rescore_pool)
        exact = np.atleast_2d(pose_rescore(pool))
        pose_sim = pose_sim.copy()
        pose_sim[pool] = np.where(columns.pose_mask[pool], exact.max(axis=0), 0.0)
        variant[pool] = exact.argmax(axis=0)
        score = combine()
        index = np.sort(pool)
    top = _top(index, score, k)
    return ScoredRows(
        rows=top.astype(np.int64),
        score=score[top].astype(np.float32),
        pose_score=pose_cal(pose_sim[top]),
        clip_score=clip_cal(clip_sim[top]),
        pose_raw=pose_sim[top],
        clip_raw=clip_sim[top],
        pose_variant=variant[top],
    )


def _top(index: npt.NDArray[np.intp], score: FloatArray, k: int) -> npt.NDArray[np.intp]:
    """The best `k` of `index` by `score`, best first; ties by row position, so equal scores
    page deterministically and top-k is always a prefix of top-(k + 1)."""
    k = min(k, index.size)
    if k <= 0:
        return np.zeros(0, dtype=np.intp)
    top = index
    if k < index.size:
        # argpartition picks arbitrarily among rows tied at the cut-off: keep all of them and
        # let the stable order below choose.
        cutoff = score[index[np.argpartition(-score[index], k - 1)[k - 1]]]
        top = index[score[index] >= cutoff]
    order = np.lexsort((top, -score[top]))
    return top[order][:k]
