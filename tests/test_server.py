"""The `poseframer` command: a real server process over HTTP, and the `index` hand-off."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.live_server import LiveServer, ServerError
from benchmarks.live_server import live_server as running_server
from config.settings import Settings
from poseframer import cli
from storage.store import Store

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def live_server(home: Path, env_extra: dict[str, str], workdir: Path) -> Iterator[LiveServer]:
    """`poseframer serve` as a real process over `home`; stopped with SIGINT afterwards
    (and the test fails if it does not stop cleanly)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSEFRAMER_")}
    env.update(env_extra, POSEFRAMER_HOME=str(home), POSEFRAMER_DEVICE="cpu")
    log = workdir / "server.log"
    try:
        with running_server(env, log, timeout=60) as server:
            yield server
    except ServerError as exc:
        pytest.fail(str(exc))
    if not server.stopped_cleanly:
        pytest.fail("the server did not stop within 20 s of SIGINT")
    assert server.process.returncode == 0, log.read_text()[-3000:]


@pytest.mark.slow
@pytest.mark.evalset
def test_served_over_http(
    indexed_home: Path, tiny_clip_env: dict[str, str], tmp_path: Path
) -> None:
    with live_server(indexed_home, tiny_clip_env, tmp_path) as server:
        base, health = server.base, server.health
        publication = Store.at_home(indexed_home).resolve_publication()
        assert health["table_version"] == publication.version

        table = Store.at_home(indexed_home).search_table_at(publication.version)
        row = next(r for r in table.to_pylist() if r["pose_vector"] is not None)
        keypoints = [row["keypoints"][i : i + 3] for i in range(0, 51, 3)]
        response = httpx.post(f"{base}/search", json={"keypoints": keypoints, "k": 3}, timeout=30)
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert results[0]["id"] == row["id"]

        thumbnail = httpx.get(f"{base}{results[0]['thumbnail_url']}", timeout=10)
        assert thumbnail.status_code == 200
        assert thumbnail.headers["content-type"] == "image/jpeg"

        # CLIP loads in the background; text search becomes available without a restart.
        deadline = time.monotonic() + 60
        while not httpx.get(f"{base}/health").json()["text_search"]["available"]:
            assert time.monotonic() < deadline, "text search never became available"
            time.sleep(0.5)
        response = httpx.post(f"{base}/search", json={"text": "a dancer", "k": 3}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["clip_score"] is not None

    assert f"{server.base}/" in server.log.read_text()


def test_serve_refuses_bad_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSEFRAMER_MAX_UPLOAD_BYTES", "lots")
    assert cli.main(["serve", "--port", "8123"]) == 2
    error = capsys.readouterr().err
    assert "POSEFRAMER_MAX_UPLOAD_BYTES" in error


def test_index_refuses_a_missing_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["index", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "passed"),
    [
        ([], {}),
        (["--batch-id", "spring-2026"], {"batch_id": "spring-2026"}),
        (["--new-batch"], {"new_batch": True}),
    ],
)
def test_index_runs_the_indexer_in_process_and_returns_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, options: list[str], passed: dict[str, Any]
) -> None:
    calls: list[tuple[Settings, dict[str, Any]]] = []

    def fake_run_index(settings: Settings, **kwargs: Any) -> int:
        calls.append((settings, kwargs))
        return 3

    monkeypatch.setattr(cli, "run_index", fake_run_index)
    home = tmp_path / "home"
    code = cli.main(["--home", str(home), "index", str(tmp_path), *options])
    assert code == 3
    ((settings, kwargs),) = calls
    assert settings.storage.home == home
    assert kwargs["folder"] == tmp_path
    expected = {"batch_id": None, "new_batch": False, **passed}
    assert {k: kwargs[k] for k in expected} == expected


@pytest.mark.slow
@pytest.mark.evalset
def test_index_command_runs_the_indexer_end_to_end(
    evalset: Path, tiny_clip_env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("mpii__005808361.jpg", "neg_locust__630.jpg"):
        (folder / name).write_bytes((evalset / "images" / name).read_bytes())
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSEFRAMER_")}
    env.update(tiny_clip_env, POSEFRAMER_DEVICE="cpu")
    done = subprocess.run(
        [sys.executable, "-m", "poseframer", "--home", str(home), "index", str(folder)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    store = Store.at_home(home)
    publication = store.resolve_publication()
    rows = store.search_table_at(publication.version).to_pylist()
    by_file: dict[str, list[int]] = {}
    for row in rows:
        by_file.setdefault(Path(row["source_uri"]).name, []).append(row["person_index"])
    # People rows for the photo (the detector may find the bystander too), one no-person row
    # for the insect.
    assert by_file["neg_locust__630.jpg"] == [-1]
    assert by_file["mpii__005808361.jpg"] and min(by_file["mpii__005808361.jpg"]) >= 0
    assert publication.rows == len(rows)
    assert publication.clip_model is not None and "random-weights" in publication.clip_model
