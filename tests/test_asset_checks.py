"""Asset checks and materialization metadata: what the Dagster UI shows about each batch."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np

from assets.checks import vector_check
from storage.store import Store
from tests.fakes import BROKEN_POSE_MODEL, FIXED_POSE_MODEL
from tests.jobs import run_folder_batch
from tests.local_http import textured_image


def _unit(rows: int, dim: int, seed: int = 0) -> list[np.ndarray]:
    v = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return list(v / np.linalg.norm(v, axis=1, keepdims=True))


def test_vector_check_passes_unit_vectors_and_names_what_is_wrong() -> None:
    good = vector_check(_unit(5, 8), 8)
    assert good.passed
    assert good.metadata["vectors"].value == 5
    bad = _unit(4, 8)
    bad[0] = bad[0] * 2  # not unit norm
    bad[1] = np.full(8, np.nan, dtype=np.float32)
    bad.append(np.ones(7, dtype=np.float32) / np.sqrt(7))  # wrong dimension
    result = vector_check(bad, 8)
    assert not result.passed
    meta = {k: v.value for k, v in result.metadata.items()}
    assert (meta["wrong_dim"], meta["with_nan_or_inf"], meta["not_unit_norm"]) == (1, 1, 1)
    assert meta["max_norm_error"] > 0.9
    assert vector_check([], 8).passed  # no people, no vectors: nothing wrong


def test_a_run_shows_checks_failures_and_a_thumbnail_preview(
    tmp_path: Path, index_settings_for
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in range(2):
        (folder / f"{n}.png").write_bytes(textured_image(n, size=(120, 200)))
    for n in range(3):
        (folder / f"bad-{n}.jpg").write_text("not an image")
    settings = index_settings_for(
        tmp_path / "home", keypoint_model=FIXED_POSE_MODEL, pose_model=BROKEN_POSE_MODEL
    )
    result = run_folder_batch(settings, folder, raise_on_error=False)

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["source_rows_accounted"].passed
    assert checks["clip_vectors_valid"].passed
    rate = checks["ingest_failure_rate"]
    assert not rate.passed and rate.severity == dg.AssetCheckSeverity.WARN
    assert rate.metadata["failure_rate"].value == 0.6
    pose = checks["pose_vectors_valid"]
    assert not pose.passed
    assert pose.metadata["not_unit_norm"].value == 2
    # The pose check is blocking: a batch with broken vectors is not published.
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "pose_embeddings" in materialized and "search_index" not in materialized
    assert "search_rows_cover_images" not in checks

    ingest = next(
        e.step_materialization_data.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("source_images")
    )
    preview = ingest.metadata["preview"].value
    assert isinstance(preview, str)
    assert preview.count("](data:image/jpeg;base64,") == 2
    failures = ingest.metadata["failure_reasons"].value
    assert isinstance(failures, str) and failures.count("not an image") == 3
    assert ingest.metadata["images_table_version"].value >= 1
    batch = Store.at_home(settings.storage.home).get_batch("b1")
    assert batch is not None
    assert (batch.source_items, batch.new_images, batch.duplicates, batch.failures) == (5, 2, 0, 3)
