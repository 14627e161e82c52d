"""Asset tier: the Dagster definitions, materialized on temporary instances."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from assets.definitions import INDEX_JOB, build_definitions
from assets.indexing import index_folder
from assets.model_ids import ModelIds
from assets.partitions import ingest_batches
from config.settings import Settings
from pipelines.catalog import pose_models
from pipelines.pose.embedding import GeometricPoseEmbedder
from storage.store import Store

ASSET_NAMES = {
    "source_images",
    "keypoints",
    "framing",
    "pose_embeddings",
    "clip_embeddings",
    "search_index",
}
SAMPLE_PHOTOS = [
    "coco__000000000785.jpg",  # one person, full body
    "h36m__S1_Directions_1.54138969_000001.jpg",
    "neg_ap10k__000000000004.jpg",  # an animal: no person
]


@pose_models.register("geometric-test-variant")
class _VariantPoseEmbedder(GeometricPoseEmbedder):
    """A second pose model (a fake at the registry seam) to change the pose model id."""

    name = "geometric-test-variant"

    def __init__(self) -> None:
        super().__init__(min_score=0.5)


def _batch_folder(root: Path, evalset: Path) -> Path:
    folder = root / "batch"
    (folder / "nested").mkdir(parents=True)
    for name in SAMPLE_PHOTOS[:2]:
        shutil.copyfile(evalset / "images" / name, folder / name)
    shutil.copyfile(evalset / "images" / SAMPLE_PHOTOS[2], folder / "nested" / SAMPLE_PHOTOS[2])
    # Same bytes under another name: one image, one duplicate.
    shutil.copyfile(evalset / "images" / SAMPLE_PHOTOS[0], folder / "nested" / "copy.jpg")
    (folder / "truncated.jpg").write_bytes(
        (evalset / "images" / SAMPLE_PHOTOS[0]).read_bytes()[:600]
    )
    (folder / "notes.jpg").write_text("this is not an image")
    (folder / ".hidden.jpg").write_bytes(b"ignored")
    return folder


def _materialize(settings: Settings, instance: dg.DagsterInstance, batch_id: str):  # type: ignore[no-untyped-def]
    defs = build_definitions(settings)
    instance.add_dynamic_partitions(ingest_batches.name, [batch_id])
    return defs.resolve_job_def(INDEX_JOB).execute_in_process(
        partition_key=batch_id, instance=instance, raise_on_error=False
    )


def _metadata(result, asset: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        if mat.asset_key.to_user_string() == asset:
            return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    raise AssertionError(f"{asset} was not materialized")


def test_definitions_load_with_the_indexing_chain(tmp_path: Path, index_settings_for) -> None:  # type: ignore[no-untyped-def]
    defs = build_definitions(index_settings_for(tmp_path))
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == ASSET_NAMES
    job = defs.resolve_job_def(INDEX_JOB)
    assert job.partitions_def == ingest_batches
    ids = ModelIds.of(index_settings_for(tmp_path))
    by_name = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    assert by_name["keypoints"].code_version == ids.keypoints
    assert by_name["pose_embeddings"].code_version == ids.pose
    assert by_name["clip_embeddings"].code_version == ids.clip
    assert by_name["framing"].code_version == ids.framing
    for name in ("keypoints", "pose_embeddings", "clip_embeddings"):
        assert defs.resolve_assets_def(name).op.pool == "gpu", name
    for name in ASSET_NAMES:
        policy = defs.resolve_assets_def(name).backfill_policy
        assert policy is not None and policy.max_partitions_per_run is None, name


def test_module_definitions_load() -> None:
    """`dagster dev -m assets.definitions` loads the same definitions."""
    from assets.definitions import defs

    assert defs.resolve_job_def(INDEX_JOB) is not None
    dg.Definitions.validate_loadable(defs)


def test_changing_the_pose_model_changes_only_pose_code_version(
    tmp_path: Path, index_settings_for
) -> None:  # type: ignore[no-untyped-def]
    before = build_definitions(index_settings_for(tmp_path))
    after = build_definitions(index_settings_for(tmp_path, pose_model="geometric-test-variant"))

    def versions(defs: dg.Definitions) -> dict[str, str | None]:
        return {s.key.to_user_string(): s.code_version for s in defs.resolve_all_asset_specs()}

    changed = {k for k, v in versions(before).items() if versions(after)[k] != v}
    assert changed == {"pose_embeddings"}


def test_batch_indexes_good_images_and_records_bad_ones(
    tmp_path: Path, evalset: Path, index_settings_for
) -> None:  # type: ignore[no-untyped-def]
    settings = index_settings_for(tmp_path / "home")
    store = Store.at_home(settings.storage.home)
    folder = _batch_folder(tmp_path, evalset)
    store.register_batch("b1", "folder", str(folder))
    instance = dg.DagsterInstance.ephemeral()

    result = _materialize(settings, instance, "b1")

    assert result.success
    ingest = _metadata(result, "source_images")
    assert ingest["new_images"] == 3
    assert ingest["duplicates"] == 1
    assert ingest["failures"] == 2
    failures = {Path(f["source_uri"]).name: f["reason"] for f in store.failures_for_batches(["b1"])}
    assert set(failures) == {"truncated.jpg", "notes.jpg"}
    assert "truncated" in failures["truncated.jpg"] or "corrupt" in failures["truncated.jpg"]
    assert "not an image" in failures["notes.jpg"]

    search = _metadata(result, "search_index")
    publication = store.resolve_publication()
    assert publication.version == search["table_version"]
    assert publication.tag == f"publish-{publication.version}"
    assert publication.clip_model == "open-clip:poseframer-tiny-clip:random-weights"
    assert publication.pose_model.startswith("geometric-v1")
    rows = store.search_table_at(publication.version).to_pylist()
    by_image = {}
    for row in rows:
        by_image.setdefault(Path(row["source_uri"]).name, []).append(row)
    # Every image has rows: people for the photos of people, one no-person row for the animal.
    assert set(by_image) == set(SAMPLE_PHOTOS)
    assert all(r["person_index"] >= 0 for r in by_image[SAMPLE_PHOTOS[0]])
    assert [r["person_index"] for r in by_image[SAMPLE_PHOTOS[2]]] == [-1]
    assert all(r["clip_vector"] is not None for r in rows)
    assert all(len(r["keypoints"]) == 51 for r in rows if r["person_index"] >= 0)

    # Materializing the same batch again is idempotent: same rows, no duplicates.
    again = _materialize(settings, instance, "b1")
    assert again.success
    assert _metadata(again, "source_images")["new_images"] == 0
    assert store.count_rows("search") == len(rows)
    assert store.count_rows("images") == 3


def test_missing_clip_weights_index_without_clip_vectors(
    tmp_path: Path, evalset: Path, index_settings_for
) -> None:  # type: ignore[no-untyped-def]
    settings = index_settings_for(
        tmp_path / "home",
        clip_model="ViT-B-32",
        clip_pretrained=str(tmp_path / "missing" / "open_clip_model.pt"),
        clip_config=None,
    )
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copyfile(evalset / "images" / SAMPLE_PHOTOS[0], folder / SAMPLE_PHOTOS[0])

    report = index_folder(folder, settings, batch_id="b2")

    assert report.success, "a missing CLIP checkpoint must not fail the indexing run"
    assert report.new_images == 1 and report.people == 1
    assert report.clip_problem is not None
    assert "checkpoint file not found" in report.clip_problem
    publication = report.publication
    assert publication is not None and publication.clip_model is None
    rows = Store.at_home(settings.storage.home).search_table_at(publication.version).to_pylist()
    assert rows and all(r["clip_vector"] is None for r in rows)
    assert any(r["pose_vector"] is not None for r in rows)


def test_unregistered_batch_fails_with_a_clear_message(tmp_path: Path, index_settings_for) -> None:  # type: ignore[no-untyped-def]
    settings = index_settings_for(tmp_path / "home")
    result = _materialize(settings, dg.DagsterInstance.ephemeral(), "never-registered")
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "not registered" in str(failure.event_specific_data.error.message)


@pytest.mark.slow
def test_cli_index_twice_adds_no_rows(tmp_path: Path, evalset: Path, tiny_clip_env) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in SAMPLE_PHOTOS:
        shutil.copyfile(evalset / "images" / name, folder / name)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    env = {**os.environ, **tiny_clip_env, "POSEFRAMER_HOME": str(tmp_path / "home")}
    env.pop("DAGSTER_HOME", None)
    cli = [sys.executable, "-m", "poseframer", "index", str(folder)]

    first = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "new images     3" in first.stdout
    assert "failures       1" in first.stdout and "broken.png" in first.stdout
    rows = Store.at_home(tmp_path / "home").count_rows("search")

    second = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    # Nothing new: no batch, no run, no new version, and the known failure is not repeated.
    assert "nothing new" in second.stdout and "no new version" in second.stdout
    assert "already indexed 3 image(s)" in second.stdout
    assert "BetaWarning" not in second.stderr
    assert Store.at_home(tmp_path / "home").count_rows("search") == rows
    assert Store.at_home(tmp_path / "home").count_rows("ingest_failures") == 1
    # The run is recorded in the home's persistent Dagster instance (what `dagster dev` shows).
    instance = dg.DagsterInstance.from_config(str(tmp_path / "home" / "dagster"))
    assert len(instance.get_runs()) == 1
