"""`poseframer demo`: its arguments, the hand-off to the indexer and the server, and what it
prints (the real end-to-end run is `python -m benchmarks.demo_bench`)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from poseframer import cli
from serving.schemas import SearchRequest
from tests.synthetic import image_bytes


class Calls:
    def __init__(self, index_code: int = 0) -> None:
        self.index_code = index_code
        self.indexed: list[tuple[Settings, Path]] = []
        self.served: list[Settings] = []


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """The indexer (run in-process) and the server, replaced by recorders."""
    record = Calls()

    def fake_run_index(settings: Settings, folder: Path, **_: Any) -> int:
        record.indexed.append((settings, folder))
        return record.index_code

    def fake_server(settings: Settings) -> int:
        record.served.append(settings)
        return 0

    monkeypatch.setattr(cli, "run_index", fake_run_index)
    monkeypatch.setattr(cli, "_run_server", fake_server)
    for name in ("POSEFRAMER_HOST", "POSEFRAMER_PORT"):
        monkeypatch.delenv(name, raising=False)
    return record


def test_the_default_samples_are_the_committed_corpus() -> None:
    repo = Path(__file__).resolve().parents[1]
    assert repo / "samples" / "corpus" == cli.DEFAULT_SAMPLES
    assert (cli.DEFAULT_SAMPLES / cli.SUGGESTED_UPLOAD).is_file()


def test_demo_indexes_the_corpus_then_serves_and_says_what_to_try(
    calls: Calls, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    assert cli.main(["--home", str(home), "demo", "--port", "8765"]) == 0
    ((indexed_with, folder),) = calls.indexed
    assert folder == cli.DEFAULT_SAMPLES and indexed_with.storage.home == home
    (settings,) = calls.served
    assert settings is indexed_with  # one set of settings: the index and the service agree
    assert (settings.storage.home, settings.service.port) == (home, 8765)
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8765/" in out
    assert cli.SUGGESTED_UPLOAD in out
    curl = next(line for line in out.splitlines() if "curl" in line)
    words = shlex.split(curl)
    assert "http://127.0.0.1:8765/search" in words
    body = json.loads(words[words.index("-d") + 1])
    request = SearchRequest.model_validate(body)  # the example is a valid pose query
    assert request.keypoints is not None and request.text is None


def test_demo_takes_another_folder_and_suggests_one_of_its_images(
    calls: Calls, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "b.jpg").write_bytes(image_bytes((8, 8), "JPEG"))
    (tmp_path / "mine" / "a.png").write_bytes(image_bytes((8, 8), "PNG"))
    (tmp_path / "mine" / ".hidden.png").write_bytes(image_bytes((8, 8), "PNG"))
    code = cli.main(["demo", "--samples", str(tmp_path / "mine"), "--host", "0.0.0.0"])
    assert code == 0
    assert calls.indexed[0][1] == tmp_path / "mine"
    out = capsys.readouterr().out
    assert "mine/a.png" in out
    assert "http://127.0.0.1:8000/" in out  # every interface: the browser uses loopback


def test_demo_refuses_a_missing_folder_before_indexing(
    calls: Calls, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["demo", "--samples", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert calls.indexed == [] and calls.served == []


def test_demo_says_when_the_committed_corpus_is_missing(
    calls: Calls,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cli, "DEFAULT_SAMPLES", tmp_path / "corpus")
    assert cli.main(["demo"]) == 2
    error = capsys.readouterr().err
    assert "sample images" in error and "--samples DIR" in error
    assert calls.indexed == []


def test_demo_refuses_bad_settings_before_indexing(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["demo", "--port", "70000"]) == 2
    assert "port" in capsys.readouterr().err.lower()
    assert calls.indexed == []


def test_demo_does_not_serve_when_indexing_fails(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    calls.index_code = 1
    assert cli.main(["demo"]) == 1
    assert calls.served == []
    assert "indexing" in capsys.readouterr().err
