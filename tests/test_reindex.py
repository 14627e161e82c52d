"""Incremental re-indexing, judged by Dagster's own staleness and automation conditions.

Two batches are indexed from URL lists (served on 127.0.0.1) into a persistent instance.
Switching the pose model then marks exactly `pose_embeddings` and `search_index` stale, the
automation condition requests exactly those, and one backfill-style run over both batches
recomputes the pose vectors from the stored keypoints: the CLIP vectors stay byte-identical,
and no image is downloaded, no keypoint detected and no CLIP vector computed. Switching the
keypoint model marks keypoints, framing, pose and the search table stale, never CLIP.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import (
    CachingStaleStatusResolver,
    StaleCauseCategory,
    StaleStatus,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._time import get_current_datetime
from PIL import Image

from assets.definitions import INDEX_JOB, build_definitions
from assets.instance import open_instance
from assets.partitions import INGEST_BATCHES
from assets.resources import ClipModelResource
from config.settings import Settings
from storage.store import Store
from tests.fakes import (
    FIXED_POSE_MODEL,
    FIXED_POSE_MODEL_V2,
    REWEIGHTED_POSE_MODEL,
    FixedPoseDetector,
)
from tests.local_http import LocalSite, jpeg_reply, png_reply, serve, textured_image
from tests.test_assets import ASSET_NAMES

BATCHES = ("alpha", "beta")
ALL_ASSETS = ASSET_NAMES


def _jpeg_copy(data: bytes) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(out, format="JPEG", quality=60)
    return out.getvalue()


def stale_assets(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict[str, set[str]]:
    """Per batch, the assets Dagster itself calls stale (what the UI shows), each for the
    reason that its code version (its model id) changed."""
    graph = defs.resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    resolver = CachingStaleStatusResolver(instance, graph, loading_context=view)
    out: dict[str, set[str]] = {}
    for batch in BATCHES:
        out[batch] = set()
        for key in graph.get_all_asset_keys():
            if resolver.get_status(key, batch) == StaleStatus.STALE:
                causes = resolver.get_stale_causes(key, batch)
                assert [c.category for c in causes] == [StaleCauseCategory.CODE], causes
                out[batch].add(key.to_user_string())
    return out


def with_downstream(defs: dg.Definitions, names: set[str]) -> set[str]:
    """The assets and everything downstream of them: what must be recomputed."""
    graph = defs.resolve_asset_graph()
    keys = {dg.AssetKey(n) for n in names}
    keys |= {d for k in keys for d in graph.get(k).child_keys}
    while True:
        more = {d for k in keys for d in graph.get(k).child_keys} - keys
        if not more:
            return {k.to_user_string() for k in keys}
        keys |= more


def requested(result: Any) -> dict[str, set[str]]:
    return {
        name: set(result.get_requested_partitions(dg.AssetKey(name)))
        for name in ALL_ASSETS
        if result.get_num_requested(dg.AssetKey(name))
    }


@pytest.fixture(scope="module")
def site() -> Iterator[LocalSite]:
    a1 = textured_image(101, size=(170, 220))
    routes = {
        "/a1.png": png_reply(a1),
        "/a2.png": png_reply(textured_image(102, size=(200, 200))),
        "/b1.png": png_reply(textured_image(103, size=(240, 180))),
        "/b2.jpg": jpeg_reply(_jpeg_copy(a1)),  # a near-duplicate of a1, from another batch
    }
    with serve(routes) as s:  # type: ignore[arg-type]
        yield s


def _register(store: Store, tmp_path: Path, site: LocalSite) -> None:
    (tmp_path / "alpha.csv").write_text(
        "url,page_url,licence,attribution\n"
        f"{site.url('/a1.png')},https://example.org/a1,CC BY 4.0,Ada\n"
        f"{site.url('/a2.png')},,CC0 1.0,\n"
    )
    (tmp_path / "beta.txt").write_text(f"{site.url('/b1.png')}\n{site.url('/b2.jpg')}\n")
    fetch = {"min_interval_s": 0.0}
    store.register_batch(
        "alpha", "urls", "alpha.csv", {"path": str(tmp_path / "alpha.csv"), "fetch": fetch}
    )
    store.register_batch(
        "beta", "urls", "beta.txt", {"path": str(tmp_path / "beta.txt"), "fetch": fetch}
    )


def test_a_pose_model_change_reindexes_only_pose_and_search(
    tmp_path: Path, site: LocalSite, index_settings_for, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    settings: Settings = index_settings_for(home, keypoint_model=FIXED_POSE_MODEL)
    store = Store.at_home(home)
    _register(store, tmp_path, site)
    instance = open_instance(home)  # persistent: SQLite under home/dagster
    instance.add_dynamic_partitions(INGEST_BATCHES, list(BATCHES))

    before = build_definitions(settings)
    for batch in BATCHES:
        result = before.resolve_job_def(INDEX_JOB).execute_in_process(
            partition_key=batch, instance=instance
        )
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert len(checks) == 6 and all(c.passed for c in checks), checks
    assert stale_assets(before, instance) == {b: set() for b in BATCHES}
    tick = dg.evaluate_automation_conditions(defs=before, instance=instance)
    assert tick.total_requested == 0  # a plain indexing run leaves nothing to re-index

    # The CLIP encoder the resource builds (the registry caches it): count its calls.
    encoder = ClipModelResource(
        model=settings.models.clip_model,
        pretrained=settings.models.clip_pretrained,
        config_path=settings.models.clip_config,
        device=settings.models.device,
        batch_size=settings.models.batch_size,
    ).get()
    clip_calls: list[int] = []
    original_encode = encoder.encode_images

    def counting_encode(images: list[Image.Image]) -> Any:
        clip_calls.append(len(images))
        return original_encode(images)

    monkeypatch.setattr(encoder, "encode_images", counting_encode)
    clip_before = store.db.open_table("clip_embeddings").to_arrow().sort_by("image_id")
    clip_version = store.version_of("clip_embeddings")
    pose_before = store.pose_embeddings_for_batches(list(BATCHES))
    downloads, detections = len(site.hits), FixedPoseDetector.calls

    after = build_definitions(
        index_settings_for(home, keypoint_model=FIXED_POSE_MODEL, pose_model=REWEIGHTED_POSE_MODEL)
    )
    # Dagster marks the pose embeddings stale (their code version, the model id, changed);
    # the search table depends on them, so it is what follows, and what automation requests.
    assert stale_assets(after, instance) == {b: {"pose_embeddings"} for b in BATCHES}
    assert with_downstream(after, {"pose_embeddings"}) == {"pose_embeddings", "search_index"}
    tick = dg.evaluate_automation_conditions(defs=after, instance=instance, cursor=tick.cursor)
    assert requested(tick) == {
        "pose_embeddings": set(BATCHES),
        "search_index": set(BATCHES),
    }

    # What a single-run backfill of the stale assets over both batches launches.
    backfill = after.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey("pose_embeddings"), dg.AssetKey("search_index")],
        tags={ASSET_PARTITION_RANGE_START_TAG: "alpha", ASSET_PARTITION_RANGE_END_TAG: "beta"},
    )
    assert backfill.success
    materialized = {
        (e.asset_key.to_user_string(), e.partition)
        for e in backfill.get_asset_materialization_events()
    }
    assert materialized == {(a, b) for a in ("pose_embeddings", "search_index") for b in BATCHES}
    assert all(c.passed for c in backfill.get_asset_check_evaluations())

    assert stale_assets(after, instance) == {b: set() for b in BATCHES}
    assert len(site.hits) == downloads, "nothing was downloaded again"
    assert FixedPoseDetector.calls == detections, "no keypoint was detected again"
    assert clip_calls == [], "no CLIP vector was computed"
    clip_after = store.db.open_table("clip_embeddings").to_arrow().sort_by("image_id")
    assert store.version_of("clip_embeddings") == clip_version
    assert clip_after.equals(clip_before)

    def vector_bytes(table: Any) -> bytes:
        return bytes(table.column("vector").combine_chunks().flatten().to_numpy().tobytes())

    assert vector_bytes(clip_after) == vector_bytes(clip_before)

    model, vectors = store.pose_embeddings_for_batches(list(BATCHES))
    versions = {s.key.to_user_string(): s.code_version for s in after.resolve_all_asset_specs()}
    assert model == versions["pose_embeddings"]
    assert set(vectors) == set(pose_before[1])  # the same people, re-embedded
    assert any(
        not (vectors[k] is None or pose_before[1][k] is None)
        and not (vectors[k] == pose_before[1][k]).all()
        for k in vectors
    )
    publication = store.resolve_publication()
    assert publication.pose_model == model
    rows = store.search_table_at(publication.version).to_pylist()
    by_uri = {r["source_uri"]: r for r in rows}
    assert by_uri[site.url("/a1.png")]["licence"] == "CC BY 4.0"
    assert by_uri[site.url("/a1.png")]["page_url"] == "https://example.org/a1"
    assert by_uri[site.url("/a1.png")]["attribution"] == "Ada"
    assert by_uri[site.url("/b1.png")]["licence"] is None
    assert all(r["fetched_at"] is not None and r["source"] == "urls" for r in rows)
    # b2 is a JPEG copy of a1 from the other batch: one near-duplicate group.
    assert (
        by_uri[site.url("/b2.jpg")]["near_duplicate_group"]
        == by_uri[site.url("/a1.png")]["image_id"]
    )
    assert (
        by_uri[site.url("/b1.png")]["near_duplicate_group"]
        == by_uri[site.url("/b1.png")]["image_id"]
    )

    # Nothing is left to do once the backfill ran.
    tick = dg.evaluate_automation_conditions(defs=after, instance=instance, cursor=tick.cursor)
    assert tick.total_requested == 0

    # A keypoint model change reaches keypoints, framing, pose and search, never CLIP.
    keypoints_changed = build_definitions(
        index_settings_for(
            home, keypoint_model=FIXED_POSE_MODEL_V2, pose_model=REWEIGHTED_POSE_MODEL
        )
    )
    expected = {"keypoints", "framing", "pose_embeddings", "search_index"}
    assert stale_assets(keypoints_changed, instance) == {b: {"keypoints"} for b in BATCHES}
    assert with_downstream(keypoints_changed, {"keypoints"}) == expected
    tick = dg.evaluate_automation_conditions(
        defs=keypoints_changed, instance=instance, cursor=tick.cursor
    )
    assert set(requested(tick)) == expected
