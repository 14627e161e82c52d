"""The inbox sensor, the per-source schedules and the sources file, on a persistent instance."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from assets.automation import INBOX_SENSOR, build_inbox_sensor
from assets.definitions import INDEX_JOB, build_definitions
from assets.instance import open_instance
from assets.partitions import INGEST_BATCHES, ingest_batches
from assets.resources import StoreResource
from assets.sources import SOURCE_TAG, SourcesConfigError, load_sources
from config.settings import Settings
from pipelines.records import DecodedImage
from pipelines.sources.base import SourceItem, decode_item
from pipelines.sources.inbox import claim_inbox
from storage.store import Store
from tests.fakes import FIXED_POSE_MODEL
from tests.local_http import textured_image

SOURCES_YAML = """
sources:
  - name: ref-list
    kind: urls
    schedule: "@daily"
    options:
      path: {urls}
      fetch: {{min_interval_s: 0.0}}
  - name: ballet
    kind: openverse
    schedule: "0 3 * * 1"
    schedule_running: false
    description: Openly licensed ballet photos
    options:
      query: ballet
      licences: [cc0, by]
  - name: studio
    kind: crawl
    options:
      seeds: [https://example.org/gallery/]
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def settings(home: Path, tmp_path: Path, index_settings_for) -> Settings:  # type: ignore[no-untyped-def]
    urls = tmp_path / "urls.txt"
    urls.write_text("https://example.org/a.png\n")
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES_YAML.format(urls=urls))
    built: Settings = index_settings_for(
        home,
        keypoint_model=FIXED_POSE_MODEL,
        sources=sources,
        inbox_settle_seconds=0.0,
    )
    return built


def _store_resource(home: Path) -> StoreResource:
    return StoreResource(home=str(home))


def sensor_tick(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, home: Path, defs: dg.Definitions
) -> Any:
    """One evaluation, as the daemon makes it: the context holds a persistent instance (by
    reference), and is closed after the tick."""
    with dg.build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        resources={"store": _store_resource(home)},
        definitions=defs,
    ) as context:
        return sensor.evaluate_tick(context)


def schedule_tick(
    schedule: dg.ScheduleDefinition,
    instance: dg.DagsterInstance,
    home: Path,
    defs: dg.Definitions,
    when: datetime,
) -> Any:
    with dg.build_schedule_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        scheduled_execution_time=when,
        resources={"store": _store_resource(home)},
        repository_def=defs.get_repository_def(),
    ) as context:
        return schedule.evaluate_tick(context)


def _defs_with(sensor: dg.SensorDefinition) -> dg.Definitions:
    """The sensor beside a stand-in for the indexing job, partitioned by batch like it."""

    @dg.asset(partitions_def=ingest_batches)
    def stand_in() -> None:
        return None

    job = dg.define_asset_job(INDEX_JOB, selection=[stand_in])
    return dg.Definitions(assets=[stand_in], jobs=[job], sensors=[sensor])


def _drop(folder: Path, files: dict[str, bytes], age_s: float = 60.0) -> None:
    """Write files into the inbox, aged as if dropped `age_s` ago."""
    then = time.time() - age_s
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (then, then))


# ---------------------------------------------------------------- the inbox sensor


def test_new_inbox_files_become_one_batch_indexed_by_the_job(
    settings: Settings, home: Path
) -> None:
    defs = build_definitions(settings)
    instance = open_instance(home)
    sensor = defs.resolve_sensor_def(INBOX_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    inbox = settings.storage.inbox
    _drop(inbox, {"upload-1/a.png": textured_image(1), "upload-1/b.png": textured_image(2)})
    _drop(inbox, {"loose.jpg": textured_image(3, fmt="JPEG"), "notes.txt": b"not an image"})
    _drop(inbox, {".part-123": b"half an upload"})

    tick = sensor_tick(sensor, instance, home, defs)

    (request,) = tick.run_requests
    batch_id = request.partition_key
    assert batch_id is not None and batch_id.startswith("inbox-")
    assert request.run_key == batch_id
    assert request.tags[SOURCE_TAG] == "inbox"
    (partitions,) = tick.dynamic_partitions_requests
    assert list(partitions.partition_keys) == [batch_id]
    batch = Store.at_home(home).get_batch(batch_id)
    assert batch is not None and batch.source == "inbox" and batch.source_name == "inbox"
    claimed = Path(batch.location)
    assert claimed == home / "inbox-batches" / batch_id
    assert sorted(p.relative_to(claimed).as_posix() for p in claimed.rglob("*") if p.is_file()) == [
        "loose.jpg",
        "notes.txt",
        "upload-1/a.png",
        "upload-1/b.png",
    ]
    assert sorted(p.name for p in inbox.rglob("*")) == [".part-123"]  # partial files wait

    # What the daemon does with the result: add the partition, then run the job for it.
    instance.add_dynamic_partitions(INGEST_BATCHES, [batch_id])
    result = defs.resolve_job_def(INDEX_JOB).execute_in_process(
        partition_key=batch_id, instance=instance, tags=request.tags
    )
    assert result.success
    store = Store.at_home(home)
    images = store.images_for_batches([batch_id])
    assert sorted(Path(i.source_uri).name for i in images) == ["a.png", "b.png", "loose.jpg"]
    assert all(i.source == "inbox" for i in images)
    (failure,) = store.failures_for_batches([batch_id])
    assert Path(failure["source_uri"]).name == "notes.txt"

    # Nothing new: no batch. The same bytes dropped again: removed, no batch either.
    again = sensor_tick(sensor, instance, home, defs)
    assert again.run_requests == [] and "no new files" in (again.skip_message or "")
    _drop(inbox, {"again/a-copy.png": textured_image(1)})
    again = sensor_tick(sensor, instance, home, defs)
    assert again.run_requests == []
    assert not (inbox / "again" / "a-copy.png").exists()
    assert len(store.list_batches()) == 1


def test_files_still_being_written_wait_for_a_later_tick(home: Path) -> None:
    instance = open_instance(home)
    sensor = build_inbox_sensor(INDEX_JOB, settle_seconds=30.0)
    _drop(home / "inbox", {"fresh.png": textured_image(1)}, age_s=0.0)
    tick = sensor_tick(sensor, instance, home, _defs_with(sensor))
    assert tick.run_requests == []
    assert "1 still being written" in (tick.skip_message or "")
    assert (home / "inbox" / "fresh.png").exists()


def test_a_claimed_batch_whose_partition_was_lost_is_requested_again(home: Path) -> None:
    instance = open_instance(home)
    store = Store.at_home(home)
    store.register_batch("inbox-lost", "inbox", "/x", {"folder": "/x"}, source_name="inbox")
    sensor = build_inbox_sensor(INDEX_JOB, settle_seconds=0.0)
    tick = sensor_tick(sensor, instance, home, _defs_with(sensor))
    assert [r.partition_key for r in tick.run_requests] == ["inbox-lost"]
    instance.add_dynamic_partitions(INGEST_BATCHES, ["inbox-lost"])
    assert sensor_tick(sensor, instance, home, _defs_with(sensor)).run_requests == []


def test_claiming_stops_at_the_batch_limits(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    _drop(inbox, {f"{n}.png": textured_image(n) for n in range(5)})
    claim = claim_inbox(inbox, tmp_path / "batch", lambda ids: set(), settle_s=0.0, max_files=3)
    assert claim.files == ["0.png", "1.png", "2.png"] and claim.waiting == 2
    assert sorted(p.name for p in inbox.iterdir()) == ["3.png", "4.png"]


# ---------------------------------------------------------------- schedules


def test_each_scheduled_source_has_a_schedule_that_makes_a_new_batch(
    settings: Settings, home: Path
) -> None:
    defs = build_definitions(settings)
    schedules = {s.name: defs.resolve_schedule_def(s.name) for s in defs.schedules or []}
    assert set(schedules) == {"ref_list_schedule", "ballet_schedule"}  # studio has none
    daily, weekly = schedules["ref_list_schedule"], schedules["ballet_schedule"]
    assert daily.cron_schedule == "@daily" and daily.job_name == INDEX_JOB
    assert daily.default_status == dg.DefaultScheduleStatus.RUNNING
    assert weekly.default_status == dg.DefaultScheduleStatus.STOPPED
    assert weekly.description == "Openly licensed ballet photos"

    instance = open_instance(home)
    store = Store.at_home(home)
    when = datetime(2025, 3, 4, 0, 0, tzinfo=UTC)
    tick = schedule_tick(daily, instance, home, defs, when)
    (request,) = tick.run_requests or []
    assert request.partition_key == "ref-list-20250304-000000"
    assert request.run_key == request.partition_key
    assert request.tags[SOURCE_TAG] == "ref-list"
    assert instance.has_dynamic_partition(INGEST_BATCHES, "ref-list-20250304-000000")
    batch = store.get_batch("ref-list-20250304-000000")
    assert batch is not None
    assert (batch.source, batch.source_name) == ("urls", "ref-list")
    assert batch.source_options()["fetch"] == {"min_interval_s": 0.0}
    assert batch.location.startswith("URL list ")

    # The same tick again (a daemon retry) names the same batch; the next day, a new one.
    again = schedule_tick(daily, instance, home, defs, when)
    assert [r.partition_key for r in again.run_requests or []] == ["ref-list-20250304-000000"]
    next_day = schedule_tick(daily, instance, home, defs, datetime(2025, 3, 5, tzinfo=UTC))
    assert [r.partition_key for r in next_day.run_requests or []] == ["ref-list-20250305-000000"]
    assert sorted(b.batch_id for b in store.list_batches()) == [
        "ref-list-20250304-000000",
        "ref-list-20250305-000000",
    ]
    assert set(instance.get_dynamic_partitions(INGEST_BATCHES)) == {
        "ref-list-20250304-000000",
        "ref-list-20250305-000000",
    }


def test_definitions_load_sensors_schedules_and_the_reindex_automation(
    settings: Settings,
) -> None:
    defs = build_definitions(settings)
    dg.Definitions.validate_loadable(defs)
    sensors = {s.name for s in defs.sensors or []}
    assert sensors == {INBOX_SENSOR, "reindex_on_model_change"}
    reindex = defs.resolve_sensor_def("reindex_on_model_change")
    assert reindex.default_status == dg.DefaultSensorStatus.RUNNING
    for name in ("keypoints", "framing", "pose_embeddings", "clip_embeddings", "search_index"):
        assert defs.resolve_assets_def(name).automation_conditions_by_key[dg.AssetKey(name)]
    assert not defs.resolve_assets_def("source_images").automation_conditions_by_key.get(
        dg.AssetKey("source_images")
    )


# ---------------------------------------------------------------- the sources file


def test_a_bad_sources_file_names_the_source_and_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    cases = {
        "sources:\n  - {name: x, kind: ftp}\n": "source x: unknown source kind 'ftp'",
        "sources:\n  - {name: x, kind: openverse, options: {query: q, colour: red}}\n": (
            "source x: openverse source: unknown option(s) colour"
        ),
        (
            "sources:\n  - {name: x, kind: crawl, schedule: every day, "
            "options: {seeds: [https://a.org/]}}\n"
        ): "is not a cron string",
        "sources:\n  - {name: Bad Name, kind: folder, options: {folder: /x}}\n": "lower-case",
        (
            "sources:\n  - {name: x, kind: folder, options: {folder: /x}}\n"
            "  - {name: x, kind: folder, options: {folder: /y}}\n"
        ): "must be unique",
        "sources: {name: x}\n": "must be a list",
        "sources: [\n": "not valid YAML",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(
            SourcesConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
        ):
            load_sources(path)
    assert load_sources(None) == []
    with pytest.raises(SourcesConfigError, match="not found"):
        load_sources(tmp_path / "missing.yaml")


def test_the_sources_file_defaults_to_the_home(tmp_path: Path) -> None:
    settings = Settings.of(home=tmp_path)
    assert settings.sources_path is None
    (tmp_path / "sources.yaml").write_text("sources: []\n")
    assert settings.sources_path == tmp_path / "sources.yaml"


def test_a_known_image_dropped_alone_is_removed_without_a_batch(tmp_path: Path) -> None:
    store = Store.at_home(tmp_path)
    decoded = decode_item(SourceItem("/x.png", textured_image(9)))
    assert isinstance(decoded, DecodedImage)
    store.register_batch("b", "folder", "/x")
    store.add_images("b", "folder", [decoded])
    inbox = tmp_path / "inbox"
    _drop(inbox, {"dup.png": textured_image(9)})
    claim = claim_inbox(inbox, tmp_path / "new", store.known_image_ids, settle_s=0.0)
    assert claim.folder is None and claim.already_indexed == ["dup.png"]
    assert not (tmp_path / "new").exists()


def test_running_a_configured_source_by_name_needs_a_known_name(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from assets.indexing import index_source, main

    with pytest.raises(KeyError, match=r"no source named 'nope'.*configured: ballet, ref-list"):
        index_source("nope", settings)
    with pytest.raises(SystemExit):
        main([])  # neither a folder nor --source
    assert "either a folder or --source" in capsys.readouterr().err
    monkeypatch.setenv("POSEFRAMER_HOME", str(settings.storage.home))
    monkeypatch.setenv("POSEFRAMER_SOURCES", str(settings.indexing.sources))
    assert main(["--source", "nope"]) == 2
    assert "no source named 'nope'" in capsys.readouterr().err


def test_the_device_reaches_keypoint_backends_that_take_one() -> None:
    from assets.resources import KeypointModelResource
    from tests.fakes import DEVICE_AWARE_MODEL, DeviceAwareDetector

    on_gpu = KeypointModelResource(name=DEVICE_AWARE_MODEL, device="cuda").get()
    assert isinstance(on_gpu, DeviceAwareDetector) and on_gpu.device == "cuda"
    default = KeypointModelResource(name=DEVICE_AWARE_MODEL, device="auto").get()
    assert isinstance(default, DeviceAwareDetector) and default.device == "cpu"
    # A backend without a device option (MediaPipe's) is built as it is.
    plain = KeypointModelResource(name=FIXED_POSE_MODEL, device="cuda").get()
    assert plain.model_id.startswith(FIXED_POSE_MODEL)
