"""The ANN index of the served table: built on publish, used by the service, exact where it
must be (λ = 1 and λ = 0, scores, paging), measured against brute force."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from benchmarks.search_bench import CLIP_DIM, POSE_DIM, synthetic_rows
from pipelines.retrieval import ranking
from pipelines.retrieval.ann import FILES
from pipelines.retrieval.exact import hybrid_search
from pipelines.retrieval.paging import Cursor, page
from pipelines.retrieval.ranking import RankQuery, rank
from serving.search_service import SearchQuery
from storage.ann_files import version_dir
from storage.publishing import publish_search_rows
from storage.records import Publication
from storage.snapshot import SearchSnapshot, SnapshotCache
from storage.store import Store

ROWS = 4000


def publish_synthetic(store: Store, rows: int = ROWS, seed: int = 3) -> Publication:
    # As many rows per cluster as the benchmark's million rows have per 25 clusters.
    clusters = max(2, rows // 1000)
    table = pa.concat_tables(
        t for t, *_ in synthetic_rows(rows, seed, pose_clusters=clusters, clip_clusters=clusters)
    )
    return publish_search_rows(store, ["bench"], table, POSE_DIM, CLIP_DIM, "bench-framing")


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, SearchSnapshot]:
    store = Store(
        tmp_path_factory.mktemp("ann") / "lancedb",
        tmp_path_factory.mktemp("blobs"),
        ann_min_rows=1000,
    )
    publication = publish_synthetic(store)
    return store, SnapshotCache(store).get(publication.version)


def queries(snapshot: SearchSnapshot, n: int, seed: int = 7) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pose queries near stored people, CLIP queries equal to other rows' vectors."""
    rng = np.random.default_rng(seed)
    posed = np.flatnonzero(snapshot.pose_mask)
    out = []
    for _ in range(n):
        pose = snapshot.pose[rng.choice(posed)] + 0.05 * rng.normal(size=POSE_DIM)
        pose = (pose / np.linalg.norm(pose)).astype(np.float32)
        clip = snapshot.clip_vectors(np.array([rng.integers(len(snapshot))]))[0].copy()
        out.append((pose, clip))
    return out


def exact_top(snapshot: SearchSnapshot, pose: np.ndarray | None, clip: np.ndarray | None,
              lam: float, k: int = 10) -> np.ndarray:  # fmt: skip
    cal = snapshot.calibration
    return hybrid_search(
        snapshot.columns, None if pose is None else pose[None, :], clip, lam, k,
        pose_calibration=cal.pose, clip_calibration=cal.clip,
    ).rows  # fmt: skip


def everything(snapshot: SearchSnapshot) -> np.ndarray:
    return np.ones(len(snapshot), dtype=bool)


def test_publishing_a_large_table_builds_the_index_the_service_loads(
    indexed: tuple[Store, SearchSnapshot],
) -> None:
    store, snapshot = indexed
    folder = Path(version_dir(store.files()[1], snapshot.version))
    assert {p.name for p in folder.iterdir()} == set(FILES)
    assert snapshot.ann is not None and snapshot.clip is None  # CLIP vectors stay on disk
    assert snapshot.ann.meta.rows == len(snapshot) == ROWS
    # The vectors read back from disk are the table's own, row for row.
    table = store.search_table_at(snapshot.version)
    rows = np.array([0, 17, 1234, ROWS - 1])
    stored = np.array([table.column("clip_vector")[int(r)].as_py() for r in rows])
    np.testing.assert_array_equal(snapshot.clip_vectors(rows), stored.astype(np.float32))
    assert snapshot.clip_mask.all() and 0 < (~snapshot.pose_mask).sum() < ROWS // 10


def test_a_small_table_is_scored_exactly_without_an_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "lancedb", tmp_path / "blobs")
    publication = publish_synthetic(store, rows=500)  # below the default ANN_MIN_ROWS
    snapshot = SnapshotCache(store).get()
    assert snapshot.ann is None and snapshot.clip is not None
    assert not Path(version_dir(store.files()[1], publication.version)).exists()


def test_a_version_whose_index_was_not_finished_is_scored_exactly(
    indexed: tuple[Store, SearchSnapshot], tmp_path: Path
) -> None:
    store, snapshot = indexed
    folder = Path(version_dir(store.files()[1], snapshot.version))
    (folder / "meta.json").rename(tmp_path / "meta.json")  # as if killed while building
    try:
        fresh = SearchSnapshot.load(store, snapshot.publication)
        assert fresh.ann is None and fresh.clip is not None
    finally:
        (tmp_path / "meta.json").rename(folder / "meta.json")


@pytest.mark.parametrize("lam", [0.3, 0.5, 0.7])
def test_hybrid_queries_find_the_exact_top_10(
    indexed: tuple[Store, SearchSnapshot], lam: float
) -> None:
    _, snapshot = indexed
    recalls = []
    for pose, clip in queries(snapshot, 25):
        got = rank(snapshot, RankQuery(pose[None, :], clip, lam, everything(snapshot), None), 10)
        top = got.segments[0]
        want = exact_top(snapshot, pose, clip, lam)
        recalls.append(len(set(top.rows[:10]) & set(want)) / 10)
        # Whatever the pool holds is scored exactly: the scores are the formula's.
        exact = exact_top(snapshot, pose, clip, lam, k=len(snapshot))
        exact_score = {int(r): i for i, r in enumerate(exact)}
        assert [exact_score[int(r)] for r in top.rows[:10]] == sorted(
            exact_score[int(r)] for r in top.rows[:10]
        )
    assert np.mean(recalls) >= 0.95


def test_lambda_one_ranks_by_pose_and_zero_by_clip(indexed: tuple[Store, SearchSnapshot]) -> None:
    _, snapshot = indexed
    asked = queries(snapshot, 10, seed=11)
    recalls = []
    for (pose, clip), (other_pose, other_clip) in zip(asked, asked[::-1], strict=True):
        by_pose = rank(
            snapshot, RankQuery(pose[None, :], clip, 1.0, everything(snapshot), None), 10
        )
        top = by_pose.segments[0].rows[:10]
        pose_sim = snapshot.pose[top] @ pose
        assert np.all(np.diff(pose_sim) <= 1e-6)  # purely by pose ...
        again = rank(
            snapshot, RankQuery(pose[None, :], other_clip, 1.0, everything(snapshot), None), 10
        )
        np.testing.assert_array_equal(again.segments[0].rows[:10], top)  # ... whatever the text
        recalls.append(len(set(top) & set(exact_top(snapshot, pose, None, 1.0))) / 10)

        by_clip = rank(
            snapshot, RankQuery(pose[None, :], clip, 0.0, everything(snapshot), None), 10
        )
        top = by_clip.segments[0].rows[:10]
        clip_sim = snapshot.clip_vectors(top) @ clip
        assert np.all(np.diff(clip_sim) <= 1e-6)  # purely by CLIP ...
        again = rank(
            snapshot, RankQuery(other_pose[None, :], clip, 0.0, everything(snapshot), None), 10
        )
        np.testing.assert_array_equal(again.segments[0].rows[:10], top)  # ... whatever the pose
        recalls.append(len(set(top) & set(exact_top(snapshot, None, clip, 0.0))) / 10)
    assert np.mean(recalls) >= 0.95


def test_filters_reach_the_index(indexed: tuple[Store, SearchSnapshot]) -> None:
    _, snapshot = indexed
    allowed = np.zeros(len(snapshot), dtype=bool)
    allowed[::7] = True  # e.g. one licence in seven
    pose, clip = queries(snapshot, 1, seed=5)[0]
    got = rank(snapshot, RankQuery(pose[None, :], clip, 0.5, allowed, None), 10).segments[0]
    assert got.rows.size >= 10 and allowed[got.rows].all()
    cal = snapshot.calibration
    want = hybrid_search(
        snapshot.columns, pose[None, :], clip, 0.5, 10, allowed=allowed,
        pose_calibration=cal.pose, clip_calibration=cal.clip,
    ).rows  # fmt: skip
    assert len(set(got.rows[:10]) & set(want)) >= 9


def test_paging_past_the_pool_returns_every_row_once(
    indexed: tuple[Store, SearchSnapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages walk the pool, then deeper pools, then the rest of the table, each row once, in
    score order within each segment; the cursor pins the pool, so every page ranks alike."""
    _, snapshot = indexed
    monkeypatch.setattr(ranking, "POOL_START", 16)
    monkeypatch.setattr(ranking, "DEEP_POOL_MAX", 512)  # a deeper pool, then the rest
    allowed = np.zeros(len(snapshot), dtype=bool)
    allowed[::2] = True  # 2,000 rows to page through
    pose, clip = queries(snapshot, 1, seed=9)[0]
    query = SearchQuery(k=20, collapse_duplicates=True)
    seen: list[int] = []
    segments: list[int] = []
    cursor: Cursor | None = None
    for _ in range(200):
        order = rank(
            snapshot,
            RankQuery(pose[None, :], clip, 0.5, allowed),
            query.k if cursor is None else cursor.want,
            0 if cursor is None else cursor.pool,
        )
        hits, token = page(snapshot, order, query.page_rules, cursor, True)
        ids = [str(h.row["id"]) for h in hits]
        index = {row_id: i for i, row_id in enumerate(snapshot.table.column("id").to_pylist())}
        seen += [index[i] for i in ids]
        if token is None:
            break
        cursor = Cursor.decode(token)
        segments.append(cursor.segment)
    else:
        raise AssertionError("paging did not end")
    assert sorted(seen) == np.flatnonzero(allowed).tolist()  # every row once
    # It ran past the pool, through a deeper pool, into the rest of the table.
    assert len(order.segments) == 3 and {1, 2} <= set(segments)
