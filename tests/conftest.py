"""Shared fixtures: the evalset location, the tiny test CLIP model and an indexed home."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.paths import evalset_dir
from config.settings import Settings

REPO = Path(__file__).resolve().parents[1]
EVALSET = evalset_dir()
TINY_CLIP_CONFIG = REPO / "tests" / "fixtures" / "poseframer-tiny-clip.json"
TINY_CLIP_MODEL = "poseframer-tiny-clip"
# Settings (indexing and serving alike) for the tiny random-weight CLIP, on the CPU.
TINY_CLIP_SETTINGS: dict[str, Any] = {
    "clip_model": TINY_CLIP_MODEL,
    "clip_pretrained": "random",
    "clip_config": str(TINY_CLIP_CONFIG),
    "device": "cpu",
}


def make_settings(home: Path, **overrides: Any) -> Settings:
    """Settings from keyword values only, with the tiny CLIP: a developer's exported
    POSEFRAMER_* variables must not change what these tests run against."""
    values: dict[str, Any] = {"home": home, **TINY_CLIP_SETTINGS}
    values.update(overrides)
    return Settings.of(**values)


def evalset_or_skip() -> Path:
    if not (EVALSET / "annotations.json").is_file():
        pytest.skip(
            f"evalset not found at {EVALSET} (set POSEFRAMER_EVALSET; default "
            "../shared/data/evalset beside the repo)"
        )
    return EVALSET


@pytest.fixture(scope="session")
def evalset() -> Path:
    return evalset_or_skip()


@pytest.fixture(scope="session")
def tiny_clip_env() -> dict[str, str]:
    """POSEFRAMER_* variables selecting the tiny random-weight CLIP (plumbing only)."""
    return {
        "POSEFRAMER_CLIP_MODEL": TINY_CLIP_MODEL,
        "POSEFRAMER_CLIP_PRETRAINED": "random",
        "POSEFRAMER_CLIP_CONFIG": str(TINY_CLIP_CONFIG),
    }


@pytest.fixture(scope="session")
def index_settings_for(tiny_clip_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """A function building settings for a home with the tiny CLIP model (what the indexing
    tests use; the same as `make_settings`)."""
    return make_settings


@pytest.fixture(scope="session")
def indexed_home(
    tmp_path_factory: pytest.TempPathFactory, evalset: Path, index_settings_for
) -> Path:  # type: ignore[no-untyped-def]
    """A POSEFRAMER_HOME with the evalset images indexed through the real Dagster job."""
    from assets.indexing import index_folder

    home = tmp_path_factory.mktemp("indexed-home")
    report = index_folder(evalset / "images", index_settings_for(home), batch_id="evalset")
    assert report.success, "indexing the evalset failed"
    assert report.publication is not None
    return home
