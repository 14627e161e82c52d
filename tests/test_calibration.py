"""Calibration: λ weighs comparable quantities, and λ = 1 / 0 still rank by one side."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.retrieval.calibration import Affine, fit_affine, sample_similarities
from pipelines.retrieval.exact import VectorColumns, hybrid_search


def test_fit_maps_the_mean_to_0_and_the_99th_percentile_to_1() -> None:
    sims = np.random.default_rng(0).normal(0.25, 0.03, 10_000)
    cal = fit_affine(sims)
    assert float(cal(np.array([sims.mean()]))[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(cal(np.array([np.percentile(sims, 99)]))[0]) == pytest.approx(1.0, abs=1e-5)
    assert cal.scale > 0


def test_degenerate_samples_give_the_identity() -> None:
    assert fit_affine(np.array([0.3] * 100)) == Affine.identity()
    assert fit_affine(np.array([0.1, 0.2])) == Affine.identity()


def test_sample_similarities_are_pairwise_dot_products() -> None:
    rng = np.random.default_rng(1)
    q = rng.normal(size=(5, 8)).astype(np.float32)
    r = rng.normal(size=(7, 8)).astype(np.float32)
    sims = sample_similarities(q, r)
    assert sims.size == 35
    assert np.allclose(np.sort(sims), np.sort((q @ r.T).ravel()), atol=1e-5)


def _columns(
    pose_sims: np.ndarray, clip_sims: np.ndarray
) -> tuple[VectorColumns, np.ndarray, np.ndarray]:
    """Columns whose similarity to the unit queries e_0 are exactly the given values."""
    n = len(pose_sims)
    pose = np.zeros((n, 2), np.float32)
    pose[:, 0], pose[:, 1] = pose_sims, np.sqrt(1 - pose_sims**2)
    clip = np.zeros((n, 2), np.float32)
    clip[:, 0], clip[:, 1] = clip_sims, np.sqrt(1 - clip_sims**2)
    e0 = np.array([1.0, 0.0], np.float32)
    return VectorColumns(pose, np.ones(n, bool), clip, np.ones(n, bool)), e0, e0


def test_calibration_lets_the_narrow_clip_scale_count_at_lambda_half() -> None:
    # Row 0: an exceptional text match (0.35 where texts sit near 0.22), an ordinary pose.
    # Row 1: a mildly better pose, an ordinary text match.
    rng = np.random.default_rng(2)
    pose = np.array([0.30, 0.50, *rng.uniform(-0.5, 0.45, 98)])
    clip = np.array([0.35, 0.22, *np.clip(rng.normal(0.22, 0.02, 98), 0.0, 0.26)])
    columns, pq, cq = _columns(pose, clip)
    raw = hybrid_search(columns, pq, cq, 0.5, 1)
    assert raw.rows[0] == 1, "without calibration the wide pose scale dominates"
    calibrated = hybrid_search(
        columns, pq, cq, 0.5, 1,
        pose_calibration=fit_affine(pose), clip_calibration=fit_affine(clip),
    )  # fmt: skip
    assert calibrated.rows[0] == 0, "calibrated, the exceptional text match wins"
    assert calibrated.clip_raw[0] == pytest.approx(0.35, abs=1e-5)
    assert calibrated.clip_score[0] > 1.0


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_lambda_0_and_1_rank_by_one_side_with_calibration(lam: float) -> None:
    rng = np.random.default_rng(3)
    pose, clip = rng.uniform(-0.9, 0.9, 50), rng.uniform(0.1, 0.4, 50)
    columns, pq, cq = _columns(pose, clip)
    found = hybrid_search(
        columns,
        pq,
        cq,
        lam,
        50,
        pose_calibration=fit_affine(pose),
        clip_calibration=fit_affine(clip),
    )
    expected = np.argsort(-(pose if lam == 1.0 else clip), kind="stable")
    assert list(found.rows) == list(expected)


@pytest.mark.evalset
def test_each_published_version_carries_its_calibration(indexed_home) -> None:  # type: ignore[no-untyped-def]
    from storage.store import Store

    store = Store.at_home(indexed_home)
    publication = store.resolve_publication()
    # Fitted on the table itself: a random pair of poses maps to 0 on average, so the pose
    # map is no identity; the tiny CLIP model's text vectors calibrate the CLIP side.
    assert publication.pose_scale > 1.0 and publication.pose_offset < 0.0
    assert publication.calibration.clip != Affine.identity()
    # Persisted: a fresh store reads the same calibration back.
    again = Store.at_home(indexed_home).resolve_publication(publication.version)
    assert again.calibration == publication.calibration


def test_the_calibration_queries_are_asked_of_the_index_clip_model_only() -> None:
    from pipelines.catalog import clip_models
    from pipelines.clip.prompts import CALIBRATION_PROMPTS, calibration_queries
    from tests.conftest import TINY_CLIP_SETTINGS

    encoder = clip_models.load(
        "open-clip",
        model=TINY_CLIP_SETTINGS["clip_model"],
        pretrained="random",
        config_path=TINY_CLIP_SETTINGS["clip_config"],
        device="cpu",
    )
    queries = calibration_queries(encoder, encoder.model_id)
    assert queries is not None and queries.shape == (len(CALIBRATION_PROMPTS), encoder.dim)
    # An index of another CLIP model: its image vectors cannot be compared with these texts.
    assert calibration_queries(encoder, "some-other-clip") is None
    assert calibration_queries(encoder, None) is None
