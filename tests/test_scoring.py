"""Hybrid scoring: score = λ · pose_similarity + (1 − λ) · clip_similarity, exact search."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.retrieval.exact import VectorColumns, hybrid_search


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


N = 40


@pytest.fixture
def columns() -> VectorColumns:
    """40 rows; rows 0–7 have no pose vector (no person), every fifth row no CLIP vector."""
    rng = np.random.default_rng(11)
    pose_mask = np.ones(N, dtype=bool)
    pose_mask[:8] = False
    clip_mask = np.ones(N, dtype=bool)
    clip_mask[::5] = False
    pose = unit_rows(rng, N, 6)  # low dim: plenty of negative similarities
    clip = unit_rows(rng, N, 5)
    pose[~pose_mask] = 0.0
    clip[~clip_mask] = 0.0
    return VectorColumns(pose, pose_mask, clip, clip_mask)


@pytest.fixture
def queries() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    return unit_rows(rng, 1, 6)[0], unit_rows(rng, 1, 5)[0]


def expected_order(score: np.ndarray, rows: np.ndarray) -> list[int]:
    return sorted(rows.tolist(), key=lambda r: (-float(score[r]), r))


def test_lambda_one_ranks_exactly_by_pose_similarity(
    columns: VectorColumns, queries: tuple[np.ndarray, np.ndarray]
) -> None:
    pose_q, clip_q = queries
    pose_sim = columns.pose @ pose_q
    assert (pose_sim[columns.pose_mask] < 0).sum() > 5  # negative similarities exist
    result = hybrid_search(columns, pose_q, clip_q, lam=1.0, k=N)
    # Rows with no pose vector have no pose similarity: they are not candidates (not 0).
    assert result.rows.tolist() == expected_order(pose_sim, np.flatnonzero(columns.pose_mask))
    np.testing.assert_allclose(result.score, pose_sim[result.rows], atol=1e-6)
    np.testing.assert_allclose(result.pose_score, pose_sim[result.rows], atol=1e-6)


def test_lambda_zero_ranks_exactly_by_clip_similarity(
    columns: VectorColumns, queries: tuple[np.ndarray, np.ndarray]
) -> None:
    pose_q, clip_q = queries
    clip_sim = columns.clip @ clip_q
    result = hybrid_search(columns, pose_q, clip_q, lam=0.0, k=N)
    assert result.rows.tolist() == expected_order(clip_sim, np.flatnonzero(columns.clip_mask))
    np.testing.assert_allclose(result.score, clip_sim[result.rows], atol=1e-6)


def test_a_single_query_ignores_lambda_and_needs_its_own_vector(
    columns: VectorColumns, queries: tuple[np.ndarray, np.ndarray]
) -> None:
    pose_q, clip_q = queries
    pose_sim, clip_sim = columns.pose @ pose_q, columns.clip @ clip_q
    for lam in (0.0, 0.3, 1.0):
        by_pose = hybrid_search(columns, pose_q, None, lam=lam, k=N)
        assert by_pose.rows.tolist() == expected_order(pose_sim, np.flatnonzero(columns.pose_mask))
        assert np.isnan(by_pose.clip_score).all()
        by_text = hybrid_search(columns, None, clip_q, lam=lam, k=N)
        assert by_text.rows.tolist() == expected_order(clip_sim, np.flatnonzero(columns.clip_mask))
        assert np.isnan(by_text.pose_score).all()


def test_hybrid_score_mixes_both_similarities(
    columns: VectorColumns, queries: tuple[np.ndarray, np.ndarray]
) -> None:
    pose_q, clip_q = queries
    lam = 0.3
    pose_sim = np.where(columns.pose_mask, columns.pose @ pose_q, 0.0)
    clip_sim = np.where(columns.clip_mask, columns.clip @ clip_q, 0.0)
    mixed = lam * pose_sim + (1 - lam) * clip_sim
    result = hybrid_search(columns, pose_q, clip_q, lam=lam, k=N)
    # A row lacking one vector scores 0 on that side; a row lacking both is no candidate.
    either = np.flatnonzero(columns.pose_mask | columns.clip_mask)
    assert either.size == N - 2
    assert result.rows.tolist() == expected_order(mixed, either)
    np.testing.assert_allclose(result.score, mixed[result.rows], atol=1e-6)
    np.testing.assert_allclose(result.pose_score, pose_sim[result.rows], atol=1e-6)
    np.testing.assert_allclose(result.clip_score, clip_sim[result.rows], atol=1e-6)


def test_a_row_with_neither_vector_is_never_returned(
    queries: tuple[np.ndarray, np.ndarray],
) -> None:
    pose_q, clip_q = queries
    cols = VectorColumns(
        pose=np.zeros((3, 6), np.float32),
        pose_mask=np.array([False, True, False]),
        clip=np.zeros((3, 5), np.float32),
        clip_mask=np.array([False, False, True]),
    )
    cols.pose[1] = pose_q
    cols.clip[2] = clip_q
    result = hybrid_search(cols, pose_q, clip_q, lam=0.5, k=10)
    assert sorted(result.rows.tolist()) == [1, 2]


def test_allowed_mask_is_respected(
    columns: VectorColumns, queries: tuple[np.ndarray, np.ndarray]
) -> None:
    pose_q, clip_q = queries
    allowed = np.zeros(N, dtype=bool)
    allowed[[3, 9, 10, 17, 25, 33]] = True
    before = allowed.copy()
    result = hybrid_search(columns, pose_q, None, lam=1.0, k=N, allowed=allowed)
    # Row 3 is allowed but has no pose vector.
    assert set(result.rows.tolist()) == {9, 10, 17, 25, 33}
    np.testing.assert_array_equal(allowed, before)  # the caller's mask is not modified
    nothing = hybrid_search(columns, pose_q, clip_q, lam=0.5, k=5, allowed=np.zeros(N, bool))
    assert nothing.rows.size == 0 and nothing.score.size == 0


def test_k_limits_and_may_exceed_the_candidates(
    columns: VectorColumns, queries: tuple[np.ndarray, np.ndarray]
) -> None:
    pose_q, _ = queries
    everything = hybrid_search(columns, pose_q, None, lam=1.0, k=1000)
    assert everything.rows.size == int(columns.pose_mask.sum())
    top5 = hybrid_search(columns, pose_q, None, lam=1.0, k=5)
    assert top5.rows.tolist() == everything.rows[:5].tolist()
    assert np.all(np.diff(top5.score) <= 0)
    assert hybrid_search(columns, pose_q, None, lam=1.0, k=0).rows.size == 0


def test_ties_come_in_row_order_and_pages_are_prefixes() -> None:
    n = 20
    pose = np.tile(np.array([[1.0, 0.0]], np.float32), (n, 1))
    pose[8] = (0.0, 1.0)  # one lower-scoring row among equal ones
    cols = VectorColumns(pose, np.ones(n, bool), np.zeros((n, 2), np.float32), np.zeros(n, bool))
    q = np.array([1.0, 0.0], np.float32)
    full = hybrid_search(cols, q, None, lam=1.0, k=n).rows.tolist()
    assert full == [i for i in range(n) if i != 8] + [8]
    for k in range(1, n + 1):
        page = hybrid_search(cols, q, None, lam=1.0, k=k).rows.tolist()
        assert page == full[:k], f"top-{k} is not the first {k} of the full ranking: {page}"


def test_results_are_deterministic(
    columns: VectorColumns, queries: tuple[np.ndarray, np.ndarray]
) -> None:
    pose_q, clip_q = queries
    a = hybrid_search(columns, pose_q, clip_q, lam=0.6, k=7)
    b = hybrid_search(columns, pose_q, clip_q, lam=0.6, k=7)
    np.testing.assert_array_equal(a.rows, b.rows)
    np.testing.assert_array_equal(a.score, b.score)
    assert a.score.dtype == np.float32 and a.rows.dtype == np.int64


@pytest.mark.parametrize("lam", [-0.1, 1.01, float("nan"), float("inf")])
def test_invalid_lambda_raises(
    columns: VectorColumns, queries: tuple[np.ndarray, np.ndarray], lam: float
) -> None:
    pose_q, clip_q = queries
    with pytest.raises(ValueError, match="lambda"):
        hybrid_search(columns, pose_q, clip_q, lam=lam, k=5)


def test_a_search_needs_a_query(columns: VectorColumns) -> None:
    with pytest.raises(ValueError, match="needs a pose query, a CLIP query, or both"):
        hybrid_search(columns, None, None, lam=0.5, k=5)
