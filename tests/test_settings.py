"""The service's settings: POSEFRAMER_* variables, read once, failing fast on bad values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from serving.settings import ServingSettings, describe_settings_error
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
        ServingSettings()
    return describe_settings_error(caught.value)


def test_defaults() -> None:
    settings = ServingSettings()
    assert settings.home == Path(".poseframer")
    assert settings.table_version is None
    assert settings.cors_origins == []
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.max_upload_bytes == 20 * 1024 * 1024
    assert (settings.clip_model, settings.clip_pretrained) == ("ViT-B-32", "laion2b_s34b_b79k")


def test_values_come_from_prefixed_environment(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("POSEFRAMER_HOME", str(tmp_path))
    clean_env.setenv("POSEFRAMER_TABLE_VERSION", "publish-7")
    clean_env.setenv("POSEFRAMER_PORT", "9001")
    clean_env.setenv("POSEFRAMER_MAX_UPLOAD_BYTES", "1000")
    clean_env.setenv("POSEFRAMER_CLIP_MODEL", "poseframer-tiny-clip")
    clean_env.setenv("POSEFRAMER_CLIP_PRETRAINED", "random")
    clean_env.setenv("POSEFRAMER_CLIP_CONFIG", str(TINY_CLIP_CONFIG))
    clean_env.setenv("POSEFRAMER_DEVICE", "cuda:1")
    clean_env.setenv("PORT", "1234")  # unprefixed: not ours
    settings = ServingSettings()
    assert settings.home == tmp_path
    assert settings.table_version == "publish-7"
    assert settings.port == 9001
    assert settings.max_upload_bytes == 1000
    assert settings.clip_model == "poseframer-tiny-clip"
    assert settings.clip_pretrained == "random"
    assert settings.clip_config == str(TINY_CLIP_CONFIG)
    assert settings.device == "cuda:1"


def test_keyword_arguments_override_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("POSEFRAMER_PORT", "9001")
    assert ServingSettings(port=9002).port == 9002


def test_indexing_side_variables_are_tolerated(clean_env: pytest.MonkeyPatch) -> None:
    # The indexer reads more POSEFRAMER_* variables than the service; one environment serves both.
    clean_env.setenv("POSEFRAMER_BATCH_SIZE", "16")
    clean_env.setenv("POSEFRAMER_FRAMING_MODEL", "keypoint-rules-v1")
    assert ServingSettings().port == 8000


def test_misspelt_keyword_is_an_error() -> None:
    with pytest.raises(ValidationError, match="clip_pretrianed"):
        ServingSettings(clip_pretrianed="random")  # type: ignore[call-arg]


def test_empty_variables_mean_unset(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("POSEFRAMER_TABLE_VERSION", "")
    clean_env.setenv("POSEFRAMER_CLIP_CONFIG", " ")
    clean_env.setenv("POSEFRAMER_CORS_ORIGINS", "")
    settings = ServingSettings()
    assert settings.table_version is None
    assert settings.clip_config is None
    assert settings.cors_origins == []


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
    assert ServingSettings().cors_origins == expected


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
    message = settings_error(clean_env, PORT="0", MAX_UPLOAD_BYTES="-1")
    assert "POSEFRAMER_PORT" in message and "POSEFRAMER_MAX_UPLOAD_BYTES" in message


def test_backend_options_come_as_json_on_both_sides(monkeypatch: pytest.MonkeyPatch) -> None:
    from assets.settings import IndexSettings, ModelIds

    monkeypatch.setenv("POSEFRAMER_POSE_MODEL_OPTIONS", '{"min_joints": 6}')
    index = IndexSettings.from_env()
    assert index.pose_options == {"min_joints": 6}
    assert "min_joints=6" in ModelIds.of(index).pose
    assert ServingSettings().pose_model_options == {"min_joints": 6}

    monkeypatch.setenv("POSEFRAMER_POSE_MODEL_OPTIONS", "[1, 2]")
    with pytest.raises(ValueError, match="POSEFRAMER_POSE_MODEL_OPTIONS must be a JSON object"):
        IndexSettings.from_env()


@pytest.mark.parametrize(("device", "accepted"), [("mps", True), ("cuda:1", True), ("gpu", False)])
def test_the_indexer_and_the_service_accept_the_same_devices(
    clean_env: pytest.MonkeyPatch, device: str, accepted: bool
) -> None:
    from assets.settings import IndexSettings

    clean_env.setenv("POSEFRAMER_DEVICE", device)
    if accepted:
        assert ServingSettings().device == device
        assert IndexSettings.from_env().device == device
        return
    with pytest.raises(ValueError, match="auto, cpu, mps, cuda or cuda:N, not 'gpu'"):
        ServingSettings()
    with pytest.raises(ValueError, match="POSEFRAMER_DEVICE: device must be auto, cpu, mps"):
        IndexSettings.from_env()
