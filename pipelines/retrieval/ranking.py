"""A query's ranking over a served version: every row scored exactly, or, with the version's
ANN index (`pipelines.retrieval.ann`), a certified candidate pool first.

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

from pipelines.records import FloatArray
from pipelines.retrieval.ann import SCAN_BATCH as SCAN
from pipelines.retrieval.calibration import Affine
from pipelines.retrieval.exact import (
    RESCORE_POOL,
    ScoredRows,
    VectorColumns,
    hybrid_search,
    weighted_sides,
)
from pipelines.retrieval.searchable import Searchable

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
Rows = npt.NDArray[np.int64]


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

    def __init__(self, snapshot: Searchable) -> None:
        self.snapshot = snapshot
        self.rows = np.zeros(0, dtype=np.int64)  # sorted
        self.vectors = np.zeros((0, 0), dtype=np.float32)

    def read(self, rows: Rows) -> None:
        new = np.setdiff1d(rows, self.rows, assume_unique=True)
        if new.size == 0:
            return
        vectors = self.snapshot.clip_vectors(new)
        merged = np.concatenate([self.rows, new])
        order = np.argsort(merged, kind="stable")
        stacked = np.concatenate([self.vectors.reshape(-1, vectors.shape[1]), vectors])
        self.rows, self.vectors = merged[order], stacked[order]

    def __call__(self, rows: Rows) -> np.ndarray:
        return self.vectors[np.searchsorted(self.rows, rows)]


@dataclass(frozen=True)
class RankQuery:
    """What a ranking ranks by: the query's vectors, λ, the filter and the re-scoring."""

    pose: FloatArray | None  # (variants, pose_dim): the pose and e.g. its mirror
    clip: FloatArray | None  # (clip_dim,)
    lam: float
    allowed: npt.NDArray[np.bool_] | None = None  # None: every row
    rescore: Rescore | None = None  # a query with don't-care joints: exact pose similarities

    @property
    def sides(self) -> tuple[bool, bool]:
        """Which similarities carry weight (`weighted_sides`, as `hybrid_search` decides)."""
        return weighted_sides(self.pose is not None, self.clip is not None, self.lam)

    def allowed_of(self, rows: Rows) -> npt.NDArray[np.bool_]:
        return np.ones(rows.size, dtype=bool) if self.allowed is None else self.allowed[rows]


def rank(snapshot: Searchable, query: RankQuery, k: int, pool: int = 0) -> Ranking:
    """The ranking of `query` over `snapshot`: every row scored exactly, or through its ANN
    index (module doc) when it has one. `pool` > 0 fixes the ANN pool size (a later page
    ranks the first page's pool), 0 lets the first page choose it for the best `k`."""
    if snapshot.ann is None:
        scored = hybrid_search(
            snapshot.columns,
            query.pose,
            query.clip,
            query.lam,
            len(snapshot),
            allowed=query.allowed,
            pose_rescore=query.rescore,
            pose_calibration=snapshot.calibration.pose,
            clip_calibration=snapshot.calibration.clip,
        )
        return Ranking([scored])
    return _AnnRanker(snapshot, query).ranking(k, pool)


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


@dataclass
class _Pool:
    """One pool of candidates: the union of each side's list, and what bounds the rest."""

    candidates: Rows
    pose_cut: float = -math.inf  # the smallest similarity in the pose lists
    clip_cut: float = -math.inf  # ... in the CLIP list
    clip_listed: Rows = field(default_factory=lambda: np.zeros(0, np.int64))
    clip_approx: FloatArray = field(default_factory=lambda: np.zeros(0, np.float32))
    short: bool = True  # every list ran short: together they hold every row that can match


class _AnnRanker:
    """One query's ranking through a snapshot's ANN index (module doc): the certified first
    pool, then deeper pools, then every row left."""

    def __init__(self, snapshot: Searchable, query: RankQuery) -> None:
        assert snapshot.ann is not None
        self.snapshot, self.query, self.ann = snapshot, query, snapshot.ann
        self.use_pose, self.use_clip = query.sides
        self.has_side = snapshot.side_mask(self.use_pose, self.use_clip)  # a vector that counts
        self.selector: npt.NDArray[np.bool_] | None
        if query.allowed is None:
            # No filter: the indexes hold exactly the rows that can match, no selector needed
            # (and no pass over every row of a large table).
            self.eligible = snapshot.side_count(self.use_pose, self.use_clip)
            self.selector = None
        else:
            self.selector = query.allowed & self.has_side
            self.eligible = int(self.selector.sum())
        self.clip_of = _ClipReader(snapshot)
        self.shown = np.zeros(0, np.int64)  # rows in the segments so far (sorted)
        self.deep_size = 0
        self.finished = False

    # ------------------------------------------------------------ the first segment

    def ranking(self, k: int, fixed_pool: int) -> Ranking:
        """Segment 0 is the smallest pool (doubling from the start size) that certifies the
        best `k`, unless `fixed_pool` sets its size; later segments come on demand."""
        q = self.query
        want = min(k, self.eligible)
        # A query that leaves joints out is re-scored on its joints, which the cut-offs of the
        # full-vector lists do not bound: its pool is the exact path's re-scoring pool, read
        # whole. A hybrid query's best rows are rarely at the top of either side, so it starts
        # deep; a one-sided query's best rows are that side's list.
        start = POOL_START if self.use_pose and self.use_clip else max(1, POOL_START // 8)
        size = fixed_pool or (start if q.rescore is None else max(start, RESCORE_POOL))
        while True:
            pool = self.pool(size)
            pruned_bound = -math.inf
            if q.rescore is None:
                read, pruned_bound = self.worth_reading(pool, want)
            else:
                read = pool.candidates
            scored = self.score(read)
            bound = self.bound(pool)
            certified = scored.rows.size >= want and (
                want == 0 or float(scored.score[want - 1]) >= bound
            )
            if fixed_pool or certified or pool.short or q.rescore is not None:
                break
            if size >= POOL_MAX:
                break
            size *= 2
        self.shown, self.deep_size = read, size
        return Ranking([scored], self.deeper, max(bound, pruned_bound), size, want, self.more)

    def pool(self, size: int) -> _Pool:
        """The union of each side's best `size` rows, and each side's cut-off."""
        q = self.query
        pool = _Pool(np.zeros(0, np.int64))
        found: list[Rows] = []
        if self.use_pose:
            assert q.pose is not None
            for hits in self.ann.search("pose", np.atleast_2d(q.pose), size, self.selector):
                found.append(hits.rows)
                pool.pose_cut = max(pool.pose_cut, hits.cutoff)
                pool.short &= hits.rows.size < size
        if self.use_clip:
            assert q.clip is not None
            (hits,) = self.ann.search("clip", q.clip[None, :], size, self.selector)
            found.append(hits.rows)
            pool.clip_cut = hits.cutoff
            pool.clip_listed, pool.clip_approx = hits.rows, hits.sims
            pool.short &= hits.rows.size < size
        if found:
            pool.candidates = np.unique(np.concatenate(found))
        return pool

    def upper_bounds(self, pool: _Pool) -> FloatArray:
        """Each candidate's highest possible score: its pose similarity is exact (pose vectors
        are in memory); its CLIP similarity is at most the 8-bit estimate plus `SQ8_MARGIN`
        when the CLIP list holds it, and at most the list's cut-off otherwise."""
        snapshot, q, rows = self.snapshot, self.query, pool.candidates
        cal = snapshot.calibration
        if self.use_pose:
            assert q.pose is not None
            pose = (snapshot.pose[rows] @ np.atleast_2d(q.pose).T).max(axis=1)
            pose = np.where(snapshot.pose_mask[rows], pose, 0.0)
        if self.use_clip:
            clip = np.full(rows.size, pool.clip_cut + SQ8_MARGIN, dtype=np.float64)
            clip[np.searchsorted(rows, pool.clip_listed)] = pool.clip_approx + SQ8_MARGIN
            clip = np.where(snapshot.clip_mask[rows], clip, 0.0)
        if self.use_pose and self.use_clip:
            upper = q.lam * _at(cal.pose, pose) + (1.0 - q.lam) * _at(cal.clip, clip)
        elif self.use_pose:
            upper = _at(cal.pose, pose)
        else:
            upper = _at(cal.clip, clip)
        if q.allowed is not None:
            upper = np.where(q.allowed[rows], upper, -np.inf)
        return np.asarray(upper)

    def worth_reading(self, pool: _Pool, want: int) -> tuple[Rows, float]:
        """The candidates whose exact score could reach the best `want` (only their CLIP
        vectors are read from disk), and the highest upper bound among the others: the best
        upper bounds are read first, then every candidate whose bound reaches the `want`-th
        best exact score among them."""
        candidates = pool.candidates
        if candidates.size == 0:
            return candidates, -math.inf
        upper = self.upper_bounds(pool)
        order = np.argsort(-upper, kind="stable")
        first = candidates[np.sort(order[: max(2 * want, FIRST_READ)])]
        exact = self.score(first, rescore=False)
        if want == 0 or exact.rows.size < want:
            chosen = first
        else:
            chosen = np.union1d(first, candidates[upper >= float(exact.score[want - 1])])
        left = ~np.isin(candidates, chosen, assume_unique=True)
        return chosen, float(upper[left].max()) if left.any() else -math.inf

    def bound(self, pool: _Pool) -> float:
        """The highest score a row outside the pool can have: below each side's cut-off (or
        lacking that vector: 0)."""
        cal, lam = self.snapshot.calibration, self.query.lam
        if self.use_pose and self.use_clip:
            return float(
                lam * _at(cal.pose, max(pool.pose_cut + SQ8_MARGIN, 0.0))
                + (1.0 - lam) * _at(cal.clip, max(pool.clip_cut + SQ8_MARGIN, 0.0))
            )
        cut, affine = (pool.pose_cut, cal.pose) if self.use_pose else (pool.clip_cut, cal.clip)
        return float(_at(affine, cut + SQ8_MARGIN)) if cut > -math.inf else -math.inf

    def score(self, rows: Rows, rescore: bool = True) -> ScoredRows:
        """`rows` (ascending), their CLIP vectors read, scored exactly, best first."""
        self.clip_of.read(rows)
        columns = VectorColumns(
            self.snapshot.pose[rows],
            self.snapshot.pose_mask[rows],
            self.clip_of(rows),
            self.snapshot.clip_mask[rows],
        )
        return self._scored(columns, rows, self.query.allowed_of(rows), rescore)

    def _scored(
        self, columns: VectorColumns, rows: Rows, allowed: npt.NDArray[np.bool_], rescore: bool
    ) -> ScoredRows:
        q = self.query
        whole = q.rescore if rescore else None
        sub_rescore = None if whole is None else (lambda r: whole(rows[r]))
        scored = hybrid_search(
            columns,
            q.pose,
            q.clip,
            q.lam,
            rows.size,
            allowed=allowed,
            pose_rescore=sub_rescore,
            rescore_pool=rows.size,
            pose_calibration=self.snapshot.calibration.pose,
            clip_calibration=self.snapshot.calibration.clip,
        )
        return replace(scored, rows=rows[scored.rows])

    # ------------------------------------------------------------ deeper segments

    def more(self) -> bool:
        """Rows beyond the segments so far?"""
        shown = self.shown
        inside = self.has_side[shown]
        if self.query.allowed is not None:
            inside = inside & self.query.allowed[shown]
        return not self.finished and self.eligible > int(inside.sum())

    def deeper(self) -> ScoredRows | None:
        """The rows a `DEEPER`-times larger pool adds; past `DEEP_POOL_MAX`, every row left."""
        if not self.more():
            return None
        if self.deep_size < DEEP_POOL_MAX:
            self.deep_size *= DEEPER
            pool = self.pool(self.deep_size)
            segment = self.score(np.setdiff1d(pool.candidates, self.shown, assume_unique=True))
        else:
            segment = self.rest()
            self.finished = True
        self.shown = np.union1d(self.shown, segment.rows)
        return segment

    def rest(self) -> ScoredRows:
        """Every eligible row not shown yet, scored exactly (a pass over the whole table)."""
        snapshot, q, n = self.snapshot, self.query, len(self.snapshot)
        pooled = np.zeros(n, dtype=bool)
        pooled[self.shown] = True
        dim = self.ann.meta.clip_dim
        if q.clip is not None:
            chunks = self.ann.clip_chunks()
        else:  # no CLIP side to score: no CLIP vectors to read
            zeros = np.zeros(dim, np.float32)
            chunks = (
                (lo, np.broadcast_to(zeros, (min(SCAN, n - lo), dim))) for lo in range(0, n, SCAN)
            )
        parts = []
        for lo, clip in chunks:
            hi = lo + len(clip)
            keep = ~pooled[lo:hi] if q.allowed is None else q.allowed[lo:hi] & ~pooled[lo:hi]
            if keep.any():
                columns = VectorColumns(
                    snapshot.pose[lo:hi], snapshot.pose_mask[lo:hi], clip, snapshot.clip_mask[lo:hi]
                )
                rows = np.arange(lo, hi, dtype=np.int64)
                parts.append(self._scored(columns, rows, keep, rescore=True))
        return _merge(parts)
