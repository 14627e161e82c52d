"""PoseFramer's settings: one model of POSEFRAMER_* variables, read once, failing fast on bad
values, shared by the indexer (Dagster) and the service."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from config.settings import Settings, describe_settings_error
from tests.conftest import TINY_CLIP_CONFIG


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No POSEFRAMER_* variable of the developer's shell leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("POSEFRAMER_"):
            monkeypatch.delenv(name)
    return monkeypatch


def settings_error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(f"POSEFRAMER_{name}", value)
    with pytest.raises(ValidationError) as caught:
        Settings.from_env()
    return describe_settings_error(caught.value)


def test_defaults() -> None:
    settings = Settings.from_env()
    assert settings.storage.home == Path(".poseframer").resolve()
    assert settings.service.table_version is None
    assert settings.service.cors_origins == []
    assert (settings.service.host, settings.service.port) == ("127.0.0.1", 8000)
    assert settings.service.max_upload_bytes == 20 * 1024 * 1024
    models = settings.models
    assert (models.clip_model, models.clip_pretrained) == ("ViT-B-32", "laion2b_s34b_b79k")
    assert (models.batch_size, settings.indexing.inbox_settle_seconds) == (32, 10.0)
    assert settings.sources_path is None


def test_values_come_from_prefixed_environment(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sources = tmp_path / "my-sources.yaml"
    for name, value in {
        "HOME": str(tmp_path),
        "TABLE_VERSION": "publish-7",
        "PORT": "9001",
        "MAX_UPLOAD_BYTES": "1000",
        "CLIP_MODEL": "poseframer-tiny-clip",
        "CLIP_PRETRAINED": "random",
        "CLIP_CONFIG": str(TINY_CLIP_CONFIG),
        "DEVICE": "cuda:1",
        "BATCH_SIZE": "8",
        "INBOX_SETTLE_SECONDS": "2.5",
        "SOURCES": str(sources),
    }.items():
        clean_env.setenv(f"POSEFRAMER_{name}", value)
    clean_env.setenv("PORT", "1234")  # unprefixed: not ours
    settings = Settings.from_env()
    assert settings.storage.home == tmp_path
    assert settings.service.table_version == "publish-7"
    assert settings.service.port == 9001
    assert settings.service.max_upload_bytes == 1000
    models = settings.models
    assert models.clip_model == "poseframer-tiny-clip"
    assert models.clip_pretrained == "random"
    assert models.clip_config == str(TINY_CLIP_CONFIG)
    assert models.device == "cuda:1"
    assert models.batch_size == 8
    assert settings.indexing.inbox_settle_seconds == 2.5
    assert settings.sources_path == sources


def test_keyword_arguments_override_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("POSEFRAMER_PORT", "9001")
    assert Settings.from_env().service.port == 9001
    assert Settings.from_env(port=9002).service.port == 9002
    assert Settings.of().service.port == 8000  # keyword values only: the environment unread


def test_other_poseframer_variables_are_left_to_their_tools(clean_env: pytest.MonkeyPatch) -> None:
    # POSEFRAMER_EVALSET (benchmarks), POSEFRAMER_DAGSTER_POSTGRES_URL (the instance), …
    clean_env.setenv("POSEFRAMER_EVALSET", "/data/evalset")
    clean_env.setenv("POSEFRAMER_DAGSTER_POSTGRES_URL", "postgresql://x")
    assert Settings.from_env().service.port == 8000


def test_misspelt_keyword_is_an_error() -> None:
    with pytest.raises(ValueError, match="clip_pretrianed"):
        Settings.of(clip_pretrianed="random")


def test_empty_variables_mean_unset(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("POSEFRAMER_TABLE_VERSION", "")
    clean_env.setenv("POSEFRAMER_CLIP_CONFIG", " ")
    clean_env.setenv("POSEFRAMER_CORS_ORIGINS", "")
    clean_env.setenv("POSEFRAMER_BATCH_SIZE", "")
    settings = Settings.from_env()
    assert settings.service.table_version is None
    assert settings.models.clip_config is None
    assert settings.service.cors_origins == []
    assert settings.models.batch_size == 32


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://localhost:3000", ["http://localhost:3000"]),
        (
            "http://localhost:3000, https://art.example.com ,",
            ["http://localhost:3000", "https://art.example.com"],
        ),
        (
            '["http://a.example", "https://b.example:8443"]',
            ["http://a.example", "https://b.example:8443"],
        ),
        ("*", ["*"]),
    ],
)
def test_cors_origins_accept_a_comma_list(
    clean_env: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    clean_env.setenv("POSEFRAMER_CORS_ORIGINS", value)
    assert Settings.from_env().service.cors_origins == expected


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("MAX_UPLOAD_BYTES", "abc", "valid integer"),
        ("MAX_UPLOAD_BYTES", "0", "greater than 0"),
        ("PORT", "70000", "less than or equal to 65535"),
        ("PORT", "eighty", "valid integer"),
        ("DEVICE", "gpu", "auto, cpu"),
        ("POSE_MODEL", "openpose", "geometric-v1"),
        ("KEYPOINT_MODEL", "nope", "mediapipe"),
        ("CORS_ORIGINS", "http://localhost:3000/", "no trailing slash"),
        ("CORS_ORIGINS", "localhost:3000", "http://host"),
        ("CLIP_CONFIG", "/nonexistent/model.json", "not found"),
        ("FRAMING_MODEL", "nope", "keypoint-rules-v1"),
        ("BATCH_SIZE", "0", "greater than 0"),
        ("BATCH_SIZE", "many", "valid integer"),
        ("INBOX_SETTLE_SECONDS", "-1", "greater than or equal to 0"),
        ("CLIP_RETRY_AFTER", "soon", "valid number"),
        ("POSE_MODEL_OPTIONS", "[1, 2]", "must be a JSON object"),
        ("LANCEDB_URI", "ftp://example.org/db", "unsupported scheme"),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(
    clean_env: pytest.MonkeyPatch, name: str, value: str, words: str
) -> None:
    message = settings_error(clean_env, **{name: value})
    assert f"POSEFRAMER_{name}" in message
    assert words in message
    assert repr(value) in message or value in message


def test_every_bad_value_is_reported_at_once(clean_env: pytest.MonkeyPatch) -> None:
    # Across concerns too: the service's port, the indexer's batch size, the device.
    message = settings_error(clean_env, PORT="0", MAX_UPLOAD_BYTES="-1", BATCH_SIZE="0", DEVICE="x")
    for name in ("PORT", "MAX_UPLOAD_BYTES", "BATCH_SIZE", "DEVICE"):
        assert f"POSEFRAMER_{name}" in message


def test_backend_options_come_as_json_and_name_the_model(clean_env: pytest.MonkeyPatch) -> None:
    from assets.model_ids import ModelIds

    clean_env.setenv("POSEFRAMER_POSE_MODEL_OPTIONS", '{"min_joints": 6}')
    settings = Settings.from_env()
    assert settings.models.pose_model_options == {"min_joints": 6}
    assert "min_joints=6" in ModelIds.of(settings).pose  # the indexer's code version
    assert "min_joints=6" in settings.models.pose().model_id  # the service's embedder


@pytest.mark.parametrize(("device", "accepted"), [("mps", True), ("cuda:1", True), ("gpu", False)])
def test_devices(clean_env: pytest.MonkeyPatch, device: str, accepted: bool) -> None:
    clean_env.setenv("POSEFRAMER_DEVICE", device)
    if accepted:
        assert Settings.from_env().models.device == device
        return
    message = settings_error(clean_env)
    assert "POSEFRAMER_DEVICE" in message
    assert "auto, cpu, mps, cuda or cuda:N, not 'gpu'" in message


def test_the_readme_documents_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    missing = [name for name in Settings.variables() if f"`{name}`" not in readme]
    assert not missing, f"README's configuration table lacks {missing}"
