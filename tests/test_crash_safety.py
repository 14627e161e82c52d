"""Crash safety: `kill -9` of the indexing process at real points of a run.

The home already serves a published version. A second batch is indexed by the real command
(`python -m assets.indexing DIR`) in a child process, which is killed with SIGKILL when its run
reaches a given point (watched from outside: the Dagster event log of the home's instance, or
the search table's version manifests). Then the served version must still be the previous
one, a running service and a fresh one must keep answering, and running the command again
must publish every image once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from assets.indexing import index_folder, unfinished_folder_batches
from assets.instance import HOST_TAG, PID_TAG, open_instance
from pipelines.images import image_id_of
from serving.app import create_app
from storage.records import Publication
from storage.snapshot import SnapshotCache
from storage.store import Store
from tests.conftest import REPO, make_settings
from tests.hostile import good_image
from tests.synthetic import STANDING

pytestmark = pytest.mark.slow

FIRST_IMAGES = 3
SECOND_IMAGES = 6
RUN_TIMEOUT = 300
QUERY = {"keypoints": [[x, y, 1.0] for x, y in STANDING.values()], "k": 5}


@dataclass
class CrashHome:
    home: Path
    env: dict[str, str]
    folders: list[Path]  # every folder written so far; the last is the one being indexed

    @property
    def store(self) -> Store:
        return Store.at_home(self.home)

    @property
    def folder(self) -> Path:
        return self.folders[-1]

    def new_folder(self, count: int = SECOND_IMAGES) -> Path:
        """A folder of `count` images never seen before, to index next."""
        folder = self.home.parent / f"batch-{len(self.folders)}"
        folder.mkdir()
        for i in range(count):
            name, data = good_image(1000 * len(self.folders) + i)
            (folder / name).write_bytes(data)
        self.folders.append(folder)
        return folder

    def image_ids(self) -> set[str]:
        """The image ids of every file in every folder: what must end up searchable."""
        return {image_id_of(p.read_bytes()) for f in self.folders for p in f.iterdir()}


@pytest.fixture
def crash_home(tmp_path: Path, index_settings_for: Any, tiny_clip_env: dict[str, str]) -> CrashHome:
    """A home serving one published batch, and a folder for the batch that will be killed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSEFRAMER_", "DAGSTER_"))}
    env.update(tiny_clip_env, POSEFRAMER_HOME=str(tmp_path / "home"), POSEFRAMER_DEVICE="cpu")
    ch = CrashHome(tmp_path / "home", env, [])
    first = ch.new_folder(FIRST_IMAGES)
    report = index_folder(first, index_settings_for(ch.home), batch_id="first")
    assert report.success and report.publication is not None
    ch.new_folder()
    return ch


@pytest.fixture
def client(crash_home: CrashHome) -> Iterator[TestClient]:
    """A service over the home, started (and answering) before the crash."""
    with TestClient(create_app(make_settings(crash_home.home))) as c:
        assert c.app.state.search_service.models.clip.wait(120)  # type: ignore[attr-defined]
        assert_answers(c, crash_home.store.resolve_publication().version)
        yield c


def assert_answers(client: TestClient, version: int) -> None:
    """Pose and text searches succeed, against published `version`."""
    for body in (QUERY, {"text": "a red circle", "k": 5}):
        response = client.post("/search", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["table_version"] == version
    assert client.post("/search", json={"text": "a red circle", "k": 5}).json()["results"]
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["table_version"] == version


def start_indexer(ch: CrashHome, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`python -m assets.indexing` on the home's latest folder."""
    command = [sys.executable, "-m", "assets.indexing", str(ch.folder), "--no-progress"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*command, *extra], cwd=REPO, env=ch.env, stdout=out, stderr=subprocess.STDOUT
        )


def run_indexer(ch: CrashHome, log: Path, *extra: str) -> None:
    process = start_indexer(ch, log, *extra)
    try:
        assert process.wait(timeout=RUN_TIMEOUT) == 0, log.read_text()[-4000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def kill_when(
    process: subprocess.Popen[bytes], reached: Callable[[], str | None], log: Path
) -> str:
    """SIGKILL `process` as soon as `reached()` describes the point; that description."""
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while time.monotonic() < deadline:
            point = reached()
            if point is not None:
                process.send_signal(signal.SIGKILL)
                process.wait()
                assert process.returncode == -signal.SIGKILL, "it had already finished"
                return point
            if process.poll() is not None:
                pytest.fail(f"the indexer ended before the kill point:\n{log.read_text()[-4000:]}")
            time.sleep(0.002)
        pytest.fail(f"the kill point was never reached:\n{log.read_text()[-4000:]}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


class RunWatcher:
    """The steps started by runs that began after it was made, from the instance's event log."""

    def __init__(self, home: Path) -> None:
        self.instance = open_instance(home)
        self.known = {r.run_id for r in self.instance.get_runs()}

    def new_runs(self) -> list[dg.DagsterRun]:
        return [r for r in self.instance.get_runs(limit=5) if r.run_id not in self.known]

    def started(self, step: str) -> Callable[[], str | None]:
        def reached() -> str | None:
            for run in self.new_runs():
                records = self.instance.get_records_for_run(
                    run.run_id, of_type=dg.DagsterEventType.STEP_START
                ).records
                steps = {r.event_log_entry.step_key for r in records}
                if step in steps:
                    return f"run {run.run_id[:8]}: step {step} started"
            return None

        return reached


def search_manifests(home: Path) -> int:
    return len(list((home / "lancedb" / "search.lance" / "_versions").glob("*.manifest")))


def search_committed(home: Path) -> Callable[[], str | None]:
    """Reached when the search table has a new committed version (before it is recorded)."""
    before = search_manifests(home)

    def reached() -> str | None:
        return "search table committed" if search_manifests(home) > before else None

    return reached


def expected_rows(store: Store, batches: list[str]) -> int:
    """One row per person found, or one for an image with nobody in it."""
    keypoints = store.keypoints_for_batches(batches)
    assert len(keypoints) == len(store.images_for_batches(batches))
    return sum(max(1, len(k.people)) for k in keypoints)


def assert_previous_version_served(
    ch: CrashHome, client: TestClient, previous: list[Publication]
) -> None:
    """After the kill: the publications are those before it, and services serve the last."""
    store = ch.store
    assert store.publications() == previous
    snapshot = SnapshotCache(store).get()
    assert snapshot.version == previous[-1].version and len(snapshot) == previous[-1].rows
    assert_answers(client, previous[-1].version)  # the running service
    with TestClient(create_app(make_settings(ch.home))) as fresh:  # a service started now
        assert fresh.app.state.search_service.models.clip.wait(120)  # type: ignore[attr-defined]
        assert_answers(fresh, previous[-1].version)


def assert_everything_published_once(
    ch: CrashHome, client: TestClient, previous: list[Publication]
) -> None:
    """After the re-run: a new version with every image of every folder, each row once."""
    store = ch.store
    publication = store.resolve_publication()
    assert publication.version > previous[-1].version
    rows = store.search_table_at(publication.version).to_pylist()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate rows after the re-run"
    served = {r["image_id"] for r in rows}
    missing = ch.image_ids() - served
    assert not missing, f"{len(missing)} images missing from the served table"
    assert served == ch.image_ids()
    batches = [b.batch_id for b in store.list_batches()]
    assert len(rows) == expected_rows(store, batches)
    assert_answers(client, publication.version)  # the running service follows the new version


@pytest.mark.parametrize("point", ["search_index step started", "search table committed"])
def test_kill_during_publishing_keeps_serving_the_previous_version(
    crash_home: CrashHome, client: TestClient, tmp_path: Path, point: str
) -> None:
    log = tmp_path / "indexer.log"
    # The window between the search table's commit and the publication's record is tens of
    # milliseconds; a kill that lands after it (a busy machine) is retried on a new batch.
    for attempt in range(3):
        previous = crash_home.store.publications()
        batch_id = f"killed-{attempt}"
        watcher = RunWatcher(crash_home.home)
        reached = (
            watcher.started("search_index")
            if point.startswith("search_index")
            else search_committed(crash_home.home)
        )
        killed_at = kill_when(start_indexer(crash_home, log, "--batch-id", batch_id), reached, log)
        if crash_home.store.publications() == previous:
            break
        print(f"\nattempt {attempt}: the kill came after the publication was recorded")
        crash_home.new_folder()
    else:
        pytest.fail("three kills all came after the publication was recorded")
    print(f"\nkilled at: {killed_at}")
    if point == "search table committed":
        # Really in the middle: the new version exists but was never recorded as published.
        assert (crash_home.store.version_of("search") or 0) > previous[-1].version
    assert_previous_version_served(crash_home, client, previous)

    run_indexer(crash_home, log, "--batch-id", batch_id)
    assert_everything_published_once(crash_home, client, previous)


def test_rerun_after_a_kill_in_a_gpu_step_completes(
    crash_home: CrashHome, client: TestClient, tmp_path: Path
) -> None:
    log = tmp_path / "indexer.log"
    previous = crash_home.store.publications()
    watcher = RunWatcher(crash_home.home)
    kill_when(
        start_indexer(crash_home, log, "--batch-id", "second"), watcher.started("image_models"), log
    )
    (killed,) = watcher.new_runs()
    assert_previous_version_served(crash_home, client, previous)

    rerun = start_indexer(crash_home, log, "--batch-id", "second")
    blocked_since: float | None = None
    try:
        while rerun.poll() is None:
            gpu = watcher.instance.event_log_storage.get_concurrency_info("gpu")
            held_by_dead = any(s.run_id == killed.run_id for s in gpu.claimed_slots)
            waiting = any(
                p.run_id != killed.run_id and p.assigned_timestamp is None
                for p in gpu.pending_steps
            )
            if held_by_dead and waiting:
                blocked_since = blocked_since or time.monotonic()
                if time.monotonic() - blocked_since > 20:
                    pytest.fail(
                        f"the re-run is blocked: killed run {killed.run_id[:8]} still holds the "
                        f"gpu pool slot ({gpu.claimed_slots})"
                    )
            else:
                blocked_since = None
            time.sleep(0.5)
    finally:
        if rerun.poll() is None:
            rerun.kill()
            rerun.wait()
    assert rerun.returncode == 0, log.read_text()[-4000:]
    assert_everything_published_once(crash_home, client, previous)


def test_running_the_same_command_again_after_a_kill_publishes_every_image(
    crash_home: CrashHome, client: TestClient, tmp_path: Path
) -> None:
    log = tmp_path / "indexer.log"
    previous = crash_home.store.publications()
    watcher = RunWatcher(crash_home.home)
    # Killed once the images are stored and the models have started on them: a point every run
    # reaches well before it publishes (a kill at the search step's start could land after a
    # small batch's publication on a loaded machine, between two polls of the event log).
    kill_when(start_indexer(crash_home, log), watcher.started("image_models"), log)
    assert_previous_version_served(crash_home, client, previous)
    (killed,) = [
        b for b in crash_home.store.list_batches() if b.location == str(crash_home.folder.resolve())
    ]
    killed_log = log.read_text()

    run_indexer(crash_home, log)  # exactly what the user ran, no --batch-id
    rerun_log = log.read_text()[len(killed_log) :]
    assert f"resuming batch {killed.batch_id}" in rerun_log
    assert f"batch          {killed.batch_id} (resumed)" in rerun_log
    # The killed run stored the images, so the resumed batch counts them as its own.
    assert f"new images     {SECOND_IMAGES}" in rerun_log
    assert "duplicates     0" in rerun_log
    assert [b.batch_id for b in crash_home.store.list_batches()] == ["first", killed.batch_id]
    assert_everything_published_once(crash_home, client, previous)
    assert crash_home.store.publications()[-1].batches == (killed.batch_id,)

    # Published now: the same command once more finds nothing new, and neither resumes nor
    # starts a batch.
    run_indexer(crash_home, log)
    last_log = log.read_text()[len(killed_log) + len(rerun_log) :]
    assert "resuming" not in last_log and "nothing new" in last_log
    assert len(crash_home.store.list_batches()) == 2


def test_a_folder_batch_is_resumed_only_when_unpublished_and_idle(
    crash_home: CrashHome, index_settings_for: Any
) -> None:
    """`unfinished_folder_batches`: a batch no publication lists, of the same folder, with no
    run in progress; a run of a process that died does not count as in progress."""
    store = crash_home.store
    folder = crash_home.folder.resolve()
    instance = open_instance(crash_home.home)
    assert unfinished_folder_batches(store, instance, folder) == []
    assert unfinished_folder_batches(store, instance, crash_home.folders[0].resolve()) == []

    store.register_batch("stale", "folder", str(folder))
    store.register_batch("other-folder", "folder", str(crash_home.home))
    assert unfinished_folder_batches(store, instance, folder) == ["stale"]

    # A run of the batch still in progress (its process alive): left alone.
    live = _started_run(instance, "stale", os.getpid())
    assert unfinished_folder_batches(store, instance, folder) == []
    instance.report_run_failed(live)
    # A run whose process died: failed, and the batch can be resumed.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = _started_run(instance, "stale", dead.pid)
    assert unfinished_folder_batches(store, instance, folder) == ["stale"]
    orphan_run = instance.get_run_by_id(orphan.run_id)
    assert orphan_run is not None and orphan_run.status == dg.DagsterRunStatus.FAILURE

    messages: list[str] = []
    report = index_folder(folder, index_settings_for(crash_home.home), announce=messages.append)
    assert report.success and report.resumed and report.batch_id == "stale"
    assert messages and "resuming batch stale" in messages[0]
    assert report.new_images == SECOND_IMAGES and report.duplicates == 0
    assert report.publication is not None and report.publication.batches == ("stale",)
    assert unfinished_folder_batches(store, instance, folder) == []


def _started_run(instance: dg.DagsterInstance, batch_id: str, pid: int) -> dg.DagsterRun:
    """A STARTED run of `batch_id`'s partition, tagged as `index_batch` tags it, by `pid`."""
    return instance.add_run(
        dg.DagsterRun(
            job_name="index_batches",
            status=dg.DagsterRunStatus.STARTED,
            tags={
                "dagster/partition": batch_id,
                PID_TAG: str(pid),
                HOST_TAG: socket.gethostname(),
            },
        )
    )
