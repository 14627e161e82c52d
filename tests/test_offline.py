"""Whole on an offline machine: no CLIP weights, any client, nothing leaked.

Indexing and serving with CLIP weights that cannot be had (a checkpoint file that is not
there, or a hub tag whose host cannot be reached): the failure is known fast and remembered,
a re-index with nothing new does nothing, text beside a pose is answered by pose with a
warning, the seed frontend's exact request works, models load at startup, and no response
shows a server path. The keypoint model is the fake fixed-pose detector (fast, one person per
image); everything else is real.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from assets.indexing import index_folder
from pipelines.clip import encoder as clip_module
from pipelines.clip.encoder import ClipUnavailableError, OpenClipEncoder
from pipelines.clip.weights import FailureMemo, unreachable
from pipelines.pose.keypoints import KeypointDetector
from pipelines.records import Pose
from serving.app import create_app
from serving.clip_loader import BackgroundLoad
from serving.errors import redact_paths
from serving.search_service import SearchService
from storage.store import Store
from storage.tables import T_FAILURES
from tests.conftest import TINY_CLIP_CONFIG, TINY_CLIP_MODEL, make_settings
from tests.fakes import FIXED_POSE_MODEL
from tests.jobs import run_folder_batch
from tests.local_http import textured_image

KP17 = [[100.0 + 5 * i, 40.0 + 15 * i, 1.0] for i in range(17)]
# Exactly what the seed project's Next.js client sends (its search box left empty).
SEED_TEXT = "similar pose"


def _folder(root: Path) -> Path:
    folder = root / "photos"
    (folder / "poses").mkdir(parents=True)
    for n in range(3):
        (folder / f"{n}.png").write_bytes(textured_image(n, size=(120, 200)))
    (folder / "poses" / "deep.png").write_bytes(textured_image(7, size=(120, 200)))
    (folder / "broken.jpg").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def missing_weights(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("weights") / "clip-vit-b-32.pt")


@pytest.fixture(scope="module")
def offline_home(
    tmp_path_factory: pytest.TempPathFactory, index_settings_for: Any, missing_weights: str
) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("offline")
    folder = _folder(root)
    settings = index_settings_for(
        root / "home", keypoint_model=FIXED_POSE_MODEL, clip_pretrained=missing_weights
    )
    report = index_folder(folder, settings)
    assert report.success and report.publication is not None
    assert report.clip_problem is not None and "checkpoint file not found" in report.clip_problem
    return settings.storage.home, folder


@pytest.fixture(scope="module")
def offline_client(offline_home: tuple[Path, Path], missing_weights: str) -> Iterator[TestClient]:
    home, _ = offline_home
    app = create_app(
        make_settings(home, keypoint_model=FIXED_POSE_MODEL, clip_pretrained=missing_weights)
    )
    with TestClient(app) as client:
        service: SearchService = app.state.search_service
        assert service.models.clip.wait(60) and service.models.pose_loader.wait(60)
        yield client


def _png(size: tuple[int, int] = (120, 200)) -> str:
    return base64.b64encode(textured_image(11, size=size)).decode()


def _no_server_paths(text: str, *paths: Path | str) -> None:
    for path in paths:
        assert str(path) not in text, f"{path} leaked into {text[:300]}"
    assert "/tmp/" not in text


# ---------------------------------------------------------------------- indexing


def test_a_no_op_reindex_publishes_nothing_and_records_no_duplicates(
    tmp_path: Path, index_settings_for: Any
) -> None:
    folder = _folder(tmp_path)
    settings = index_settings_for(tmp_path / "home", keypoint_model=FIXED_POSE_MODEL)
    first = index_folder(folder, settings)
    assert first.success and first.publication is not None
    store = Store.at_home(settings.storage.home)
    batches = len(store.list_batches())

    started = time.perf_counter()
    again = index_folder(folder, settings)
    seconds = time.perf_counter() - started
    assert again.unchanged and again.success
    assert again.publication is not None
    assert again.publication.version == first.publication.version
    assert again.new_images == 0 and again.duplicates == 4
    assert [uri for uri, _ in again.failures] == [str(folder / "broken.jpg")]
    assert len(store.list_batches()) == batches, "a no-op re-index registered a batch"
    assert seconds < 10, f"a no-op re-index took {seconds:.1f} s"

    # News in the folder: a new batch indexes the new image, and the file that failed
    # before is still one failure row, not two.
    (folder / "new.png").write_bytes(textured_image(21, size=(120, 200)))
    third = index_folder(folder, settings)
    assert not third.unchanged and third.new_images == 1
    assert third.publication is not None
    assert third.publication.version > first.publication.version
    failures = store.db.open_table(T_FAILURES).to_arrow().to_pylist()
    assert [f["source_uri"] for f in failures] == [str(folder / "broken.jpg")]

    # A failed file that changed since is tried again.
    time.sleep(0.01)
    (folder / "broken.jpg").write_bytes(textured_image(22, size=(120, 200)))
    fourth = index_folder(folder, settings)
    assert not fourth.unchanged and fourth.new_images == 1


def test_a_batch_without_clip_vectors_warns_in_its_checks(
    tmp_path: Path, index_settings_for: Any, missing_weights: str
) -> None:
    folder = _folder(tmp_path)
    settings = index_settings_for(
        tmp_path / "home", keypoint_model=FIXED_POSE_MODEL, clip_pretrained=missing_weights
    )
    result = run_folder_batch(settings, folder, raise_on_error=False)
    assert result.success  # pose search is published all the same
    check = {c.check_name: c for c in result.get_asset_check_evaluations()}["clip_vectors_present"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["images_without_clip"].value == 4
    assert "checkpoint file not found" in str(check.metadata["reason"].value)
    assert "POSEFRAMER_CLIP_PRETRAINED" in str(check.metadata["how_to_fix"].value)


def test_a_batch_with_clip_vectors_passes_that_check(
    tmp_path: Path, index_settings_for: Any
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "0.png").write_bytes(textured_image(0, size=(120, 200)))
    settings = index_settings_for(tmp_path / "home", keypoint_model=FIXED_POSE_MODEL)
    result = run_folder_batch(settings, folder)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["clip_vectors_present"].passed


# ---------------------------------------------------------------------- CLIP weights


def test_unreachable_weights_fail_within_a_second_and_are_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = tmp_path / "clip-status.json"
    probes: list[str] = []

    def probe(host: str, port: int = 443, timeout: float = 1.0) -> str | None:
        probes.append(host)
        return unreachable("poseframer-test.invalid", timeout=timeout)

    monkeypatch.setattr(clip_module, "unreachable", probe)
    encoder = OpenClipEncoder(
        model="ViT-B-32", pretrained="laion2b_s34b_b79k", status_file=str(status)
    )
    started = time.perf_counter()
    with pytest.raises(ClipUnavailableError) as info:
        encoder.load()
    assert time.perf_counter() - started < 2.0
    assert "cannot be reached" in info.value.reason
    assert "POSEFRAMER_CLIP_PRETRAINED" in str(info.value)  # the fix comes with it
    assert len(probes) == 1
    remembered = json.loads(status.read_text())
    assert remembered["key"] == "ViT-B-32|laion2b_s34b_b79k|"
    assert "cannot be reached" in remembered["reason"]

    # Another process (a new encoder) with the same settings does not try again.
    again = OpenClipEncoder(
        model="ViT-B-32", pretrained="laion2b_s34b_b79k", status_file=str(status)
    )
    with pytest.raises(ClipUnavailableError, match="remembered"):
        again.load()
    assert len(probes) == 1

    # Changed settings are tried at once.
    other = OpenClipEncoder(
        model="ViT-B-16", pretrained="laion2b_s34b_b88k", status_file=str(status)
    )
    with pytest.raises(ClipUnavailableError):
        other.load()
    assert len(probes) == 2

    # So is a failure older than the retry interval.
    stale = OpenClipEncoder(
        model="ViT-B-16",
        pretrained="laion2b_s34b_b88k",
        status_file=str(status),
        retry_after_s=0.0,
    )
    with pytest.raises(ClipUnavailableError):
        stale.load()
    assert len(probes) == 3


def test_the_memo_expires_and_follows_the_settings(tmp_path: Path) -> None:
    memo = FailureMemo(tmp_path / "status.json", retry_after_s=60)
    assert memo.recall("a") is None
    memo.remember("a", "hub unreachable", now=1000.0)
    found = memo.recall("a", now=1030.0)
    assert found is not None and found.reason == "hub unreachable"
    assert memo.recall("a", now=1061.0) is None  # old enough to try again
    assert memo.recall("b", now=1030.0) is None  # other settings
    memo.forget()
    assert memo.recall("a", now=1030.0) is None
    (tmp_path / "status.json").write_text("{not json")
    assert memo.recall("a") is None  # a damaged file means: try again


def test_a_missing_host_is_told_quickly() -> None:
    started = time.perf_counter()
    assert unreachable("poseframer-test.invalid", timeout=1.0) is not None
    assert time.perf_counter() - started < 2.0


# ---------------------------------------------------------------------- serving offline


def test_text_beside_a_pose_is_answered_by_pose_with_a_warning(
    offline_client: TestClient,
) -> None:
    pose_only = offline_client.post("/search", json={"keypoints": KP17, "k": 10})
    assert pose_only.status_code == 200
    response = offline_client.post(
        "/search", json={"keypoints": KP17, "text": "a dancer", "lambda": 0.3, "k": 10}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [w["code"] for w in body["warnings"]] == ["text_ignored"]
    assert "ranked by pose" in body["warnings"][0]["message"]
    assert [r["id"] for r in body["results"]] == [r["id"] for r in pose_only.json()["results"]]
    assert all(r["clip_score"] is None for r in body["results"])
    assert pose_only.json()["warnings"] == []


def test_only_a_text_only_query_is_refused_with_retry_after(offline_client: TestClient) -> None:
    response = offline_client.post("/search", json={"text": "a dancer"})
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    detail = response.json()["detail"]
    assert "POSEFRAMER_CLIP_PRETRAINED" in detail
    _no_server_paths(detail)
    assert "clip-vit-b-32.pt" in detail  # the file's name, not where it is


def test_the_seed_clients_exact_request_works_offline(
    offline_client: TestClient, offline_home: tuple[Path, Path]
) -> None:
    home, folder = offline_home
    payload = {
        "sketch": f"data:image/png;base64,{_png()}",
        "text": SEED_TEXT,
        "k": 4,
        "lambda": 0.95,
        "filter_portraits": False,
    }
    response = offline_client.post("/search_similar_images", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["error"] is None
    assert 1 <= len(body["results"]) <= 4
    assert [w["code"] for w in body["warnings"]] == ["text_ignored"]
    paths = {r["path"] for r in body["results"]}
    assert paths <= {"0.png", "1.png", "2.png", "poses/deep.png"}
    _no_server_paths(response.text, home, folder)
    # Text alone is the one thing it cannot answer; the seed's error shape says why.
    alone = offline_client.post("/search_similar_images", json={"text": SEED_TEXT, "k": 4})
    assert alone.status_code == 503
    assert alone.json()["success"] is False and "Retry-After" in alone.headers
    _no_server_paths(alone.text, home, folder)


def test_results_name_their_source_inside_the_folder_never_the_server_path(
    offline_client: TestClient, offline_home: tuple[Path, Path]
) -> None:
    home, folder = offline_home
    response = offline_client.post("/search", json={"keypoints": KP17, "k": 10})
    results = response.json()["results"]
    assert {r["source_uri"] for r in results} == {"0.png", "1.png", "2.png", "poses/deep.png"}
    assert {r["source"] for r in results} == {"folder"}
    for path in ("/health", "/openapi.json"):
        _no_server_paths(offline_client.get(path).text, home, folder)
    _no_server_paths(response.text, home, folder)


def test_health_says_ready_with_a_one_sentence_text_note(offline_client: TestClient) -> None:
    body = offline_client.get("/health").json()
    assert body["status"] == "ready"
    text = body["text_search"]
    assert text["available"] is False
    assert text["summary"] and len(text["summary"]) < 120 and text["summary"].count(".") == 1
    assert body["pose_search"]["available"] is True


def test_messages_lose_server_paths_but_keep_api_routes() -> None:
    message = "file /tmp/x/weights/clip.pt missing; see /images/abc/thumbnail and /docs"
    assert redact_paths(message) == ("file …/clip.pt missing; see /images/abc/thumbnail and /docs")
    assert redact_paths("https://example.org/a/b.png") == "https://example.org/a/b.png"


# ---------------------------------------------------------------------- loading at startup


class SlowDetector(KeypointDetector):
    """The fixed-pose detector, whose models take until `gate` opens to load."""

    name = "slow"

    def __init__(self, inner: KeypointDetector, gate: threading.Event) -> None:
        self.inner = inner
        self.gate = gate

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def load(self) -> None:
        self.gate.wait(60)

    def detect(self, image: Image.Image) -> list[Pose]:
        return self.inner.detect(image)


def _gated_app(home: Path, missing_weights: str, wait: float) -> tuple[Any, threading.Event]:
    app = create_app(
        make_settings(
            home,
            keypoint_model=FIXED_POSE_MODEL,
            clip_pretrained=missing_weights,
            model_wait=wait,
        )
    )
    service: SearchService = app.state.search_service
    gate = threading.Event()
    service.models.detector = SlowDetector(service.models.detector, gate)
    service.models.query_reader = service.models.detector
    service.models.pose_loader = BackgroundLoad("the keypoint model", service.models.detector.load)
    return app, gate


def test_models_load_at_startup_and_a_query_waits_for_them(
    offline_home: tuple[Path, Path], missing_weights: str
) -> None:
    home, _ = offline_home
    app, gate = _gated_app(home, missing_weights, wait=30.0)
    with TestClient(app) as client:
        assert client.get("/health").json()["status"] == "loading"
        # Pose search by keypoints needs no keypoint model: it answers at once.
        assert client.post("/search", json={"keypoints": KP17}).status_code == 200
        threading.Timer(1.0, gate.set).start()
        started = time.perf_counter()
        response = client.post("/search", json={"image": _png()})
        assert response.status_code == 200, response.text
        assert time.perf_counter() - started >= 0.5  # it waited for the model
        assert client.get("/health").json()["status"] == "ready"


def test_a_query_refused_while_loading_says_when_to_retry(
    offline_home: tuple[Path, Path], missing_weights: str
) -> None:
    home, _ = offline_home
    app, gate = _gated_app(home, missing_weights, wait=0.2)
    try:
        with TestClient(app) as client:
            response = client.post("/search", json={"image": _png()})
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "5"
            assert "still loading" in response.json()["detail"]
            seed = client.post("/search_similar_images", json={"sketch": _png(), "k": 4})
            assert seed.status_code == 503 and seed.headers["Retry-After"] == "5"
            assert seed.json()["success"] is False
    finally:
        gate.set()


def test_tiny_clip_still_serves_text_when_it_loads(offline_home: tuple[Path, Path]) -> None:
    # The same home served with CLIP weights that load: no warning, text counts. (The index
    # has no CLIP vectors, so text is still ignored there, and the warning says why.)
    home, _ = offline_home
    app = create_app(
        make_settings(
            home,
            keypoint_model=FIXED_POSE_MODEL,
            clip_model=TINY_CLIP_MODEL,
            clip_config=str(TINY_CLIP_CONFIG),
        )
    )
    with TestClient(app) as client:
        assert app.state.search_service.models.clip.wait(60)
        body = client.post("/search", json={"keypoints": KP17, "text": "a dancer"}).json()
        assert [w["code"] for w in body["warnings"]] == ["text_ignored"]
        assert "without CLIP vectors" in body["warnings"][0]["message"]
        summary = client.get("/health").json()["text_search"]["summary"]
        assert "indexed without" in summary


# ---------------------------------------------------------------------- the demo, for real


def test_the_dagster_instance_skips_the_first_visit_pop_up(tmp_path: Path) -> None:
    from assets.instance import open_instance

    assert open_instance(tmp_path / "home").nux_enabled is False


@pytest.mark.slow
def test_poseframer_demo_indexes_prints_what_to_try_and_serves(tmp_path: Path) -> None:
    import os
    import re
    import subprocess
    import sys

    import httpx

    from benchmarks.live_server import REPO, free_port, stop, wait_healthy

    samples = tmp_path / "samples"
    samples.mkdir()
    corpus = REPO / "samples" / "corpus"
    names = ("stickman-arms-up.png", "kid-arms-out.png", "apple.png")
    for name in names:
        (samples / name).write_bytes((corpus / name).read_bytes())
    header, *lines = (corpus / "CREDITS.tsv").read_text(encoding="utf-8").splitlines()
    credited = [line for line in lines if line.split("\t", 1)[0] in names]
    (samples / "CREDITS.tsv").write_text("\n".join([header, *credited]) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "POSEFRAMER_"))}
    # As offline: a hub tag whose host cannot be reached (the probe fails at once).
    env |= {"POSEFRAMER_HOME": str(tmp_path / "home"), "HF_ENDPOINT": "https://hub.invalid"}
    port, log = free_port(), tmp_path / "demo.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "poseframer",
                "demo",
                "--samples",
                str(samples),
                "--port",
                str(port),
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, process, log, timeout=300)
        printed = log.read_text(errors="replace")
        assert f"{base}/" in printed
        assert "stickman-arms-up.png" in printed  # 1. what to upload
        curl = re.search(r"-d '(\{.*\})'", printed)  # 2. a query to paste
        assert curl is not None, printed[-2000:]
        query = json.loads(curl.group(1)) | {"text": SEED_TEXT}
        response = httpx.post(f"{base}/search", json=query, timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["results"][0]["source_uri"] == "kid-arms-out.png"
        assert body["results"][0]["attribution"]  # from the corpus's CREDITS.tsv
        assert [w["code"] for w in body["warnings"]] == ["text_ignored"]
        assert "text search is off" in printed.lower() or "without clip" in printed.lower()
    finally:
        stop(process)
