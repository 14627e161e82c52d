"""From a ranking to what a person sees: filters, grouping, the relevance floor, pages.

Grouping looks at every row ranked before the page (earlier pages included), so a later page
never shows an image or a near-duplicate an earlier page already showed. The cursor pins the
version searched, the last result's place in the ranking and, with an ANN index, the first
page's pool, so later pages rank alike and paging returns each row once.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import QueryError
from pipelines.retrieval.ranking import Ranking
from pipelines.retrieval.searchable import Searchable

MAX_SEGMENTS = 16  # more than a ranking has (see pipelines.retrieval.ranking)


@dataclass(frozen=True)
class Hit:
    row: dict[str, object]  # the search table row (see storage.schemas.search), no vectors
    score: float
    pose_score: float | None  # None when the query had no pose part
    clip_score: float | None  # None when the query had no text part
    mirrored: bool = False  # the mirrored query pose matched best
    pose_raw: float | None = None  # the uncalibrated cosines behind the scores
    clip_raw: float | None = None


@dataclass(frozen=True)
class Cursor:
    """A page boundary: the version searched and the last result's place in the ranking.

    Pinning the version keeps later pages on the same table even when a new version is
    published meanwhile, so paging never repeats or skips a row. With an ANN index the
    ranking has segments (the candidate pool, deeper pools, every other row), and the cursor
    also pins the pool's size, so every page ranks the same pool.
    """

    version: int
    score: float
    row: int
    segment: int = 0
    pool: int = 0  # the ANN pool per side; 0 with exact scoring
    want: int = 0  # how many best rows the first page's pool was certified for

    def encode(self) -> str:
        fields = [self.version, self.score, self.row, self.segment, self.pool, self.want]
        return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            values = json.loads(raw)
            if not isinstance(values, list) or len(values) not in (3, 6):
                raise ValueError(values)
            version, score, row, *rest = values
            segment, pool, want = (int(v) for v in rest) if rest else (0, 0, 0)
            if not 0 <= segment <= MAX_SEGMENTS or pool < 0 or want < 0:
                raise ValueError(values)
            return cls(int(version), float(score), int(row), segment, pool, want)
        except (ValueError, TypeError, binascii.Error):
            raise QueryError("cursor: not a cursor this service issued") from None

    def before(self, segment: int, score: float, row: int) -> bool:
        """Whether a result at (segment, score, row) was on this page or an earlier one."""
        if segment != self.segment:
            return segment < self.segment
        return (score, -row) >= (self.score, -self.row)


@dataclass(frozen=True)
class RowFilter:
    """Which rows a query may return."""

    columns: tuple[tuple[str, frozenset[str]], ...] = ()  # (column, allowed values)
    min_visible_joints: int | None = None  # leave out people with fewer joints in view
    min_people: int | None = None  # images with at least this many people
    max_people: int | None = None

    def mask(self, snapshot: Searchable) -> npt.NDArray[np.bool_] | None:
        """The rows the filter lets through; None when it filters nothing."""
        if not (
            self.columns
            or self.min_visible_joints
            or self.min_people is not None
            or self.max_people is not None
        ):
            return None
        table = snapshot.table
        mask = np.ones(len(snapshot), dtype=bool)
        for column, values in self.columns:
            if column not in table.column_names:
                raise QueryError(f"this index has no {column!r} to filter on")
            chosen = pc.is_in(table.column(column), value_set=pa.array(sorted(values)))
            mask &= np.asarray(chosen.to_numpy(zero_copy_only=False), dtype=bool)
        if self.min_visible_joints:
            mask &= snapshot.visible_joints >= self.min_visible_joints
        if self.min_people is not None:
            mask &= snapshot.people_per_row >= self.min_people
        if self.max_people is not None:
            mask &= snapshot.people_per_row <= self.max_people
        return mask


@dataclass(frozen=True)
class PageRules:
    """How a ranking becomes pages."""

    k: int = 10
    one_per_image: bool = False  # keep only the best person of each image
    collapse_duplicates: bool = True  # one result per near-duplicate group
    min_score: float | None = None  # relevance floor on the hybrid score


def _finite(value: float) -> float | None:
    # Scoring marks "not queried" with NaN; JSON has no NaN, and null says it better.
    return None if math.isnan(value) else float(value)


def _chosen(
    snapshot: Searchable, ranking: Ranking, rules: PageRules, cursor: Cursor | None
) -> tuple[list[tuple[int, int]], bool]:
    """The page's places in the ranking, (segment, position in it), and whether more follow."""
    image_ids = snapshot.table.column("image_id")
    groups = (
        snapshot.table.column("near_duplicate_group")
        if rules.collapse_duplicates and "near_duplicate_group" in snapshot.table.column_names
        else None
    )
    seen_images: set[object] = set()
    group_owner: dict[object, object] = {}  # near-duplicate group → the image shown for it
    page: list[tuple[int, int]] = []
    more = False
    segment = 0
    while not more:
        scored = ranking.segment(segment)
        if scored is None:
            break
        for i in range(scored.rows.size):
            score = float(scored.score[i])
            if rules.min_score is not None and score < rules.min_score:
                break  # best first: nothing after this in the segment clears the floor
            row = int(scored.rows[i])
            image_id = image_ids[row].as_py()
            # Grouping looks at every row ranked so far (pages included).
            if rules.one_per_image:
                if image_id in seen_images:
                    continue
                seen_images.add(image_id)
            if groups is not None and groups[row].is_valid:
                owner = group_owner.setdefault(groups[row].as_py(), image_id)
                if owner != image_id:
                    continue  # a near-duplicate of an image already shown
            if cursor is not None and cursor.before(segment, score, row):
                continue  # on an earlier page
            if len(page) == rules.k:
                more = True
                break
            page.append((segment, i))
        if rules.min_score is not None and ranking.bound < rules.min_score:
            break  # no row outside the pool clears the floor
        segment += 1
        if len(page) == rules.k and not more:
            # Full at a segment's end: say whether rows remain without scoring them.
            more = ranking.has(segment)
            break
    return page, more


def page(
    snapshot: Searchable,
    ranking: Ranking,
    rules: PageRules,
    cursor: Cursor | None,
    has_pose: bool,
) -> tuple[list[Hit], str | None]:
    """One page of the ranking: grouped, floored, after the cursor, `k` long; and the cursor
    of the next page (None on the last)."""
    places, more = _chosen(snapshot, ranking, rules, cursor)
    chosen = [(ranking.segments[seg], i) for seg, i in places]
    rows = snapshot.rows(np.array([int(sc.rows[i]) for sc, i in chosen], dtype=np.int64))
    hits = [
        Hit(
            row=row,
            score=float(sc.score[i]),
            pose_score=_finite(float(sc.pose_score[i])),
            clip_score=_finite(float(sc.clip_score[i])),
            mirrored=bool(has_pose and sc.pose_variant[i] == 1),
            pose_raw=_finite(float(sc.pose_raw[i])),
            clip_raw=_finite(float(sc.clip_raw[i])),
        )
        for (sc, i), row in zip(chosen, rows, strict=True)
    ]
    next_cursor = None
    if more and places:
        seg, last = places[-1]
        sc = ranking.segments[seg]
        next_cursor = Cursor(
            snapshot.version,
            float(sc.score[last]),
            int(sc.rows[last]),
            seg,
            ranking.pool,
            ranking.want,
        ).encode()
    return hits, next_cursor
