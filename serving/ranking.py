"""A query's ranking over a snapshot: every row scored exactly, or, with the snapshot's ANN
index (`storage.ann`), a certified candidate pool first.

The pool is the union of each side's best `pool` rows. Pose vectors are in memory, so each
candidate's pose similarity is exact; its CLIP similarity is bounded above by the index's
8-bit estimate (plus `SQ8_MARGIN`), or by the CLIP list's cut-off when the list does not
hold it. Only candidates whose upper bound reaches the k-th best exact score get their CLIP
vector read from disk and are scored exactly (segment 0). The pool starts at `POOL_START`
(a one-sided query: an eighth of it) and doubles until the k-th best exact score reaches
the bound on every row outside the lists (Fagin's threshold: the top k is then exact as far
as the per-side lists are), or until `POOL_MAX`.

Deeper pages continue into pools `DEEPER` times larger, then into every row left, each
segment scored exactly and each row in exactly one segment. Later pages of a query reuse the
first page's pool size and k (the cursor carries them), so every page ranks alike and
paging returns each row once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from pipelines.calibration import Affine
from pipelines.records import FloatArray
from pipelines.scoring import RESCORE_POOL, ScoredRows, VectorColumns, hybrid_search
from storage.ann import SCAN_BATCH as SCAN
from storage.snapshot import SearchSnapshot

POOL_START = 1024  # a hybrid query's first pool per side; a one-sided query's is 1/8 of it
POOL_MAX = 4096
# Past the certified pool, deeper pages take pools DEEPER times larger, up to DEEP_POOL_MAX
# per side, then every row left.
DEEPER = 4
DEEP_POOL_MAX = 16_384
FIRST_READ = 32  # candidates read at once, before the rest are pruned against them
# Above the error of an 8-bit (SQ8) similarity of unit vectors: what an upper bound adds.
SQ8_MARGIN = 0.02

Rescore = Callable[[npt.NDArray[np.int64]], FloatArray]


@dataclass
class Ranking:
    """Exact hybrid scores, best first, in segments.

    Exact scoring ranks every row in segment 0. With an ANN index segment 0 is the certified
    candidate pool; each later segment (computed only when a page reaches it: deep paging, or
    filters and grouping that use the pool up) holds the rows a pool `DEEPER` times larger
    adds, and the last one every row left, so every row is in exactly one segment. `bound`
    is an upper bound on the score of any row after segment 0: a `min_score` above it ends
    the ranking there.
    """

    segments: list[ScoredRows]
    deeper: Callable[[], ScoredRows | None] | None = None  # the next segment, or None
    bound: float = math.inf
    pool: int = 0  # the ANN pool per side; 0 for exact scoring
    want: int = 0  # how many of the best rows the pool was certified for
    more: Callable[[], bool] = field(default=lambda: False)  # rows beyond the segments so far?

    def has(self, index: int) -> bool:
        """Whether segment `index` may exist (without computing it)."""
        return index < len(self.segments) or (
            index == len(self.segments) and self.deeper is not None and self.more()
        )

    def segment(self, index: int) -> ScoredRows | None:
        while index >= len(self.segments) and self.deeper is not None:
            following = self.deeper()
            if following is None:
                self.deeper = None
                break
            self.segments.append(following)
        return self.segments[index] if index < len(self.segments) else None


class _ClipReader:
    """The exact CLIP vectors of a growing candidate pool, each row read from disk once."""

    def __init__(self, snapshot: SearchSnapshot) -> None:
        self.snapshot = snapshot
        self.rows = np.zeros(0, dtype=np.int64)  # sorted
        self.vectors = np.zeros((0, 0), dtype=np.float32)

    def read(self, rows: npt.NDArray[np.int64]) -> None:
        new = np.setdiff1d(rows, self.rows, assume_unique=True)
        if new.size == 0:
            return
        vectors = self.snapshot.clip_vectors(new)
        merged = np.concatenate([self.rows, new])
        order = np.argsort(merged, kind="stable")
        stacked = np.concatenate([self.vectors.reshape(-1, vectors.shape[1]), vectors])
        self.rows, self.vectors = merged[order], stacked[order]

    def __call__(self, rows: npt.NDArray[np.int64]) -> np.ndarray:
        return self.vectors[np.searchsorted(self.rows, rows)]


def _subset(
    allowed: npt.NDArray[np.bool_] | None, rows: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    return np.ones(rows.size, dtype=bool) if allowed is None else allowed[rows]


def _columns(
    snapshot: SearchSnapshot, rows: npt.NDArray[np.int64], clip_of: _ClipReader
) -> VectorColumns:
    return VectorColumns(
        snapshot.pose[rows], snapshot.pose_mask[rows], clip_of(rows), snapshot.clip_mask[rows]
    )


def _worth_reading(
    snapshot: SearchSnapshot,
    candidates: npt.NDArray[np.int64],
    pose_q: FloatArray | None,
    lam: float,
    use_pose: bool,
    use_clip: bool,
    clip_listed: npt.NDArray[np.int64],
    clip_approx: FloatArray,
    clip_cut: float,
    want: int,
    clip_of: _ClipReader,
    allowed: npt.NDArray[np.bool_] | None,
    clip_q: FloatArray | None,
) -> tuple[npt.NDArray[np.int64], float]:
    """The candidates whose exact score could reach the best `want` (only their CLIP vectors
    are read from disk), and the highest upper bound among the others.

    A candidate's pose similarity is exact (pose vectors are in memory). Its CLIP similarity
    is at most the 8-bit estimate plus `SQ8_MARGIN` when the CLIP list holds it, and at most
    the list's cut-off otherwise, so its score has an upper bound. The best upper bounds are
    read first; then every candidate whose bound reaches the `want`-th best exact score.
    """
    if candidates.size == 0:
        return candidates, -math.inf
    cal = snapshot.calibration
    if use_pose:
        assert pose_q is not None
        pose = (snapshot.pose[candidates] @ np.atleast_2d(pose_q).T).max(axis=1)
        pose = np.where(snapshot.pose_mask[candidates], pose, 0.0)
    if use_clip:
        clip = np.full(candidates.size, clip_cut + SQ8_MARGIN, dtype=np.float64)
        clip[np.searchsorted(candidates, clip_listed)] = clip_approx + SQ8_MARGIN
        clip = np.where(snapshot.clip_mask[candidates], clip, 0.0)
    if use_pose and use_clip:
        upper = lam * _at(cal.pose, pose) + (1.0 - lam) * _at(cal.clip, clip)
    elif use_pose:
        upper = _at(cal.pose, pose)
    else:
        upper = _at(cal.clip, clip)
    if allowed is not None:
        upper = np.where(allowed[candidates], upper, -np.inf)
    order = np.argsort(-upper, kind="stable")
    first = candidates[np.sort(order[: max(2 * want, FIRST_READ)])]
    clip_of.read(first)
    exact = _score(snapshot, _columns(snapshot, first, clip_of), first, pose_q, clip_q,
                   lam, _subset(allowed, first), None)  # fmt: skip
    if want == 0 or exact.rows.size < want:
        chosen = first
    else:
        chosen = np.union1d(first, candidates[upper >= float(exact.score[want - 1])])
    left = ~np.isin(candidates, chosen, assume_unique=True)
    return chosen, float(upper[left].max()) if left.any() else -math.inf


def _sides(pose_q: FloatArray | None, clip_q: FloatArray | None, lam: float) -> tuple[bool, bool]:
    """Which similarities carry weight (as in `hybrid_search`)."""
    use_pose = pose_q is not None and (clip_q is None or lam > 0.0)
    use_clip = clip_q is not None and (pose_q is None or lam < 1.0)
    return use_pose, use_clip


def _score(
    snapshot: SearchSnapshot,
    columns: VectorColumns,
    rows: npt.NDArray[np.int64],
    pose_q: FloatArray | None,
    clip_q: FloatArray | None,
    lam: float,
    allowed: npt.NDArray[np.bool_],
    rescore: Rescore | None,
) -> ScoredRows:
    """Every allowed row of `rows` (ascending), scored exactly, best first; `columns` holds
    their vectors."""
    sub_rescore = None if rescore is None else (lambda r: rescore(rows[r]))
    scored = hybrid_search(
        columns,
        pose_q,
        clip_q,
        lam,
        rows.size,
        allowed=allowed,
        pose_rescore=sub_rescore,
        rescore_pool=rows.size,
        pose_calibration=snapshot.calibration.pose,
        clip_calibration=snapshot.calibration.clip,
    )
    return replace(scored, rows=rows[scored.rows])


def _at(affine: Affine, raw: Any) -> Any:
    return affine.scale * raw + affine.offset


def _merge(parts: list[ScoredRows]) -> ScoredRows:
    """One ranking of several, best first, ties by row (as `hybrid_search` orders them)."""
    if not parts:
        empty = np.zeros(0, dtype=np.float32)
        return ScoredRows(np.zeros(0, np.int64), empty, empty, empty, empty, empty,
                          np.zeros(0, np.int64))  # fmt: skip
    fields = {
        name: np.concatenate([getattr(p, name) for p in parts])
        for name in ScoredRows.__dataclass_fields__
    }
    order = np.lexsort((fields["rows"], -fields["score"]))
    return ScoredRows(**{name: values[order] for name, values in fields.items()})


def ann_ranking(
    snapshot: SearchSnapshot,
    pose_q: FloatArray | None,
    clip_q: FloatArray | None,
    lam: float,
    allowed: npt.NDArray[np.bool_] | None,
    rescore: Rescore | None,
    k: int,
    pool: int = 0,
) -> Ranking:
    """The ranking of a query over a snapshot with an ANN index (see the module doc).

    `allowed` (None: every row) is the filter; `pool` > 0 fixes the pool size (a later
    page), 0 lets the first page choose it.
    """
    ann = snapshot.ann
    assert ann is not None
    use_pose, use_clip = _sides(pose_q, clip_q, lam)
    has_side = snapshot.side_mask(use_pose, use_clip)  # rows with a vector that counts
    if allowed is None:
        # No filter: the indexes hold exactly the rows that can match, no selector needed
        # (and no pass over every row of a large table).
        eligible_count = snapshot.side_count(use_pose, use_clip)
        selector = None
    else:
        eligible = allowed & has_side
        eligible_count = int(eligible.sum())
        selector = eligible
    cal = snapshot.calibration
    clip_of = _ClipReader(snapshot)
    want = min(k, eligible_count)
    fixed = pool > 0
    # A query that leaves joints out is re-scored on its joints, which the cut-offs of the
    # full-vector lists do not bound: its pool is the exact path's re-scoring pool, read whole.
    # A hybrid query's best rows are rarely at the top of either side, so it starts deep; a
    # one-sided query's best rows are that side's list.
    start = POOL_START if use_pose and use_clip else max(1, POOL_START // 8)
    size = pool if fixed else (start if rescore is None else max(start, RESCORE_POOL))
    while True:
        found: list[npt.NDArray[np.int64]] = []
        pose_cut = clip_cut = -math.inf
        clip_listed = np.zeros(0, np.int64)
        clip_approx = np.zeros(0, np.float32)
        short = True
        if use_pose:
            assert pose_q is not None
            for hits in ann.search("pose", np.atleast_2d(pose_q), size, selector):
                found.append(hits.rows)
                pose_cut = max(pose_cut, hits.cutoff)
                short &= hits.rows.size < size
        if use_clip:
            assert clip_q is not None
            (hits,) = ann.search("clip", clip_q[None, :], size, selector)
            found.append(hits.rows)
            clip_cut = hits.cutoff
            clip_listed, clip_approx = hits.rows, hits.sims
            short &= hits.rows.size < size
        candidates = np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)
        pruned_bound = -math.inf
        if rescore is None:
            read, pruned_bound = _worth_reading(
                snapshot, candidates, pose_q, lam, use_pose, use_clip, clip_listed, clip_approx,
                clip_cut, want, clip_of, allowed, clip_q,
            )  # fmt: skip
        else:
            read = candidates
        clip_of.read(read)
        scored = _score(snapshot, _columns(snapshot, read, clip_of), read, pose_q, clip_q,
                        lam, _subset(allowed, read), rescore)  # fmt: skip
        if use_pose and use_clip:
            # A row outside both lists is below each cut-off (or lacks that vector: 0).
            bound = float(
                lam * _at(cal.pose, max(pose_cut + SQ8_MARGIN, 0.0))
                + (1.0 - lam) * _at(cal.clip, max(clip_cut + SQ8_MARGIN, 0.0))
            )
        elif use_pose:
            bound = _at(cal.pose, pose_cut + SQ8_MARGIN) if pose_cut > -math.inf else -math.inf
        else:
            bound = _at(cal.clip, clip_cut + SQ8_MARGIN) if clip_cut > -math.inf else -math.inf
        certified = scored.rows.size >= want and (
            want == 0 or float(scored.score[want - 1]) >= bound
        )
        if fixed or certified or short or rescore is not None or size >= POOL_MAX:
            break
        size *= 2
    shown = read  # rows in the segments so far (sorted)
    deep_size = size
    finished = False

    def eligible_in(rows: npt.NDArray[np.int64]) -> int:
        inside = has_side[rows] if allowed is None else has_side[rows] & allowed[rows]
        return int(inside.sum())

    def more() -> bool:
        return not finished and eligible_count > eligible_in(shown)

    def deeper() -> ScoredRows | None:
        """The rows a `DEEPER`-times larger pool adds; past `DEEP_POOL_MAX`, every row left."""
        nonlocal shown, deep_size, finished
        if not more():
            return None
        if deep_size < DEEP_POOL_MAX:
            deep_size *= DEEPER
            found = []
            if use_pose:
                assert pose_q is not None
                found += [
                    h.rows for h in ann.search("pose", np.atleast_2d(pose_q), deep_size, selector)
                ]
            if use_clip:
                assert clip_q is not None
                found += [h.rows for h in ann.search("clip", clip_q[None, :], deep_size, selector)]
            fresh = np.setdiff1d(np.unique(np.concatenate(found)), shown, assume_unique=True)
            clip_of.read(fresh)
            segment = _score(snapshot, _columns(snapshot, fresh, clip_of), fresh, pose_q, clip_q,
                             lam, _subset(allowed, fresh), rescore)  # fmt: skip
        else:
            segment = rest(shown)
            finished = True
        shown = np.union1d(shown, segment.rows)
        return segment

    def rest(done: npt.NDArray[np.int64]) -> ScoredRows:
        """Every eligible row not in `done`, scored exactly (a pass over the whole table)."""
        pooled = np.zeros(len(snapshot), dtype=bool)
        pooled[done] = True
        parts = []
        dim = ann.meta.clip_dim
        if clip_q is not None:
            chunks = ann.clip_chunks()
        else:  # no CLIP side to score: no CLIP vectors to read
            chunks = (
                (
                    lo,
                    np.broadcast_to(
                        np.zeros(dim, np.float32), (min(SCAN, len(snapshot) - lo), dim)
                    ),
                )
                for lo in range(0, len(snapshot), SCAN)
            )
        for lo, clip in chunks:
            hi = lo + len(clip)
            rows = np.arange(lo, hi, dtype=np.int64)
            columns = VectorColumns(
                snapshot.pose[lo:hi],
                snapshot.pose_mask[lo:hi],
                clip,
                snapshot.clip_mask[lo:hi],
            )
            keep = ~pooled[lo:hi] if allowed is None else allowed[lo:hi] & ~pooled[lo:hi]
            if keep.any():
                parts.append(_score(snapshot, columns, rows, pose_q, clip_q, lam, keep, rescore))
        return _merge(parts)

    return Ranking([scored], deeper, max(bound, pruned_bound), size, want, more)
