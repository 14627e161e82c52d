"""The LanceDB store on a temporary directory: idempotent writes, per-batch replacement,
tagged publications, and snapshots of served versions."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pipelines.records import DecodedImage, Framing, ImageKeypoints, IngestFailure, Pose
from pipelines.retrieval.exact import hybrid_search
from pipelines.sources.base import SourceItem, decode_item
from storage.blobs import BlobStore
from storage.publishing import publish_search_rows
from storage.records import (
    FramingRecord,
    ImageRecord,
    PoseVector,
    Publication,
    VersionNotFoundError,
    validate_batch_id,
)
from storage.search_rows import NO_PERSON_INDEX, assemble_search_rows
from storage.snapshot import SearchSnapshot, SnapshotCache
from storage.store import Store
from storage.tables import T_CLIP, T_FRAMING, T_IMAGES, T_KEYPOINTS, T_POSE, T_SEARCH
from tests.synthetic import ARMS_UP, STANDING, image_bytes, make_pose, transformed

POSE_DIM = 6
CLIP_DIM = 4
FRAMING_MODEL = "keypoint-rules-v1(min_score=0.3)"


def decoded(name: str, shade: int) -> DecodedImage:
    result = decode_item(
        SourceItem(f"/photos/{name}", image_bytes((40 + shade % 7, 30), "PNG", (shade, 80, 160)))
    )
    assert isinstance(result, DecodedImage)
    return result


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.at_home(tmp_path / "home")


@pytest.fixture
def two_batches(store: Store) -> dict[str, list[DecodedImage]]:
    """Batch b1 with images a, b, c and batch b2 with image d, all stored."""
    batches = {"b1": [decoded("a.png", 10), decoded("b.png", 20), decoded("c.png", 30)]}
    batches["b2"] = [decoded("d.png", 40)]
    for batch_id, images in batches.items():
        store.register_batch(batch_id, "folder", f"/photos/{batch_id}")
        store.add_images(batch_id, "folder", images)
    return batches


def unit(seed: int, dim: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


# ---------------------------------------------------------------- batches, images, blobs


def test_batches_are_registered_once(store: Store) -> None:
    first = store.register_batch("b1", "folder", "/photos")
    again = store.register_batch("b1", "folder", "/photos")
    assert again.created_at == first.created_at
    assert [b.batch_id for b in store.list_batches()] == ["b1"]
    assert store.get_batch("nope") is None


@pytest.mark.parametrize("bad", ["", "has space", "a'; drop", "../up", "x" * 129])
def test_invalid_batch_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid batch id"):
        validate_batch_id(bad)


def test_adding_images_twice_adds_no_rows(store: Store) -> None:
    images = [decoded("a.png", 10), decoded("b.png", 20)]
    store.register_batch("b1", "folder", "/photos")
    added = store.add_images("b1", "folder", images)
    assert [r.image_id for r in added] == [im.image_id for im in images]
    assert store.count_rows(T_IMAGES) == 2
    assert store.add_images("b1", "folder", images) == []  # nothing new
    assert store.count_rows(T_IMAGES) == 2


def test_identical_bytes_are_one_image(store: Store) -> None:
    a = decoded("a.png", 10)
    copy = DecodedImage(**{**a.__dict__, "source_uri": "/photos/elsewhere/a-copy.png"})
    store.register_batch("b1", "folder", "/photos")
    store.register_batch("b2", "folder", "/more")
    assert len(store.add_images("b1", "folder", [a, copy])) == 1
    assert store.count_rows(T_IMAGES) == 1
    # The same bytes in a later batch stay with the batch that first indexed them.
    assert store.add_images("b2", "folder", [copy]) == []
    assert store.images_for_batches(["b2"]) == []
    (row,) = store.images_for_batches(["b1"])
    assert row.source_uri == "/photos/a.png"
    assert store.known_image_ids([a.image_id, "0" * 64, "not-an-id"]) == {a.image_id}


def test_image_rows_keep_what_was_decoded(store: Store) -> None:
    a = decoded("a.png", 10)
    store.register_batch("b1", "folder", "/photos")
    store.add_images("b1", "folder", [a])
    row = store.get_image(a.image_id)
    assert isinstance(row, ImageRecord)
    assert (row.width, row.height, row.format, row.media_type) == (
        a.width,
        a.height,
        "PNG",
        "image/png",
    )
    assert row.thumbnail == a.thumbnail
    assert Image.open(io.BytesIO(row.thumbnail)).format == "JPEG"
    assert store.get_image("f" * 64) is None
    assert store.get_image("' OR 1=1 --") is None


def test_originals_round_trip_through_the_blob_store(store: Store) -> None:
    a = decoded("a.png", 10)
    store.register_batch("b1", "folder", "/photos")
    store.add_images("b1", "folder", [a])
    assert store.blobs.get(a.image_id) == a.data
    assert store.blobs.exists(a.image_id)


def test_blob_store_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    image_id = "ab" + "0" * 62
    path = blobs.put(image_id, b"original bytes")
    assert path == tmp_path / "blobs" / "ab" / image_id
    assert blobs.put(image_id, b"original bytes") == path
    assert blobs.get(image_id) == b"original bytes"
    assert not any(p.name.startswith(".tmp-") for p in path.parent.iterdir())
    with pytest.raises(KeyError):
        blobs.get("cd" + "0" * 62)
    with pytest.raises(ValueError, match="not an image id"):
        blobs.put("../../etc/passwd", b"x")


def test_failures_keep_their_reasons(store: Store) -> None:
    store.register_batch("b1", "folder", "/photos")
    store.record_failures(
        "b1",
        "source_images",
        [
            IngestFailure("/photos/notes.jpg", "not an image (unrecognised file content)"),
            IngestFailure("/photos/huge.png", "image too large: 20000x20000 pixels"),
        ],
    )
    # A re-run records the same files once, with the latest reason.
    store.record_failures(
        "b1", "source_images", [IngestFailure("/photos/huge.png", "file too large (9 bytes)")]
    )
    rows = store.failures_for_batches(["b1"])
    assert [(r["source_uri"], r["reason"], r["stage"]) for r in rows] == [
        ("/photos/huge.png", "file too large (9 bytes)", "source_images"),
        ("/photos/notes.jpg", "not an image (unrecognised file content)", "source_images"),
    ]
    store.record_failures("b1", "source_images", [])  # nothing to record is fine


# ---------------------------------------------------------------- per-batch derived tables


def keypoints_for(images: list[DecodedImage], people: list[int]) -> list[ImageKeypoints]:
    poses = [make_pose(STANDING), transformed(make_pose(ARMS_UP), 0.5, 100, 0)]
    return [
        ImageKeypoints(im.image_id, "mediapipe-test", tuple(poses[:n]))
        for im, n in zip(images, people, strict=True)
    ]


def test_keypoints_round_trip_and_replace_per_batch(
    store: Store, two_batches: dict[str, list[DecodedImage]]
) -> None:
    b1, b2 = two_batches["b1"], two_batches["b2"]
    extras = (("left_heel", 1.5, 2.5, 0.75),)
    pose_with_extras = Pose.from_array(make_pose().array(), extras=extras, score=0.875)
    store.replace_keypoints(["b2"], [ImageKeypoints(b2[0].image_id, "kp", (pose_with_extras,))])
    store.replace_keypoints(["b1"], keypoints_for(b1, [2, 0, 1]))
    store.replace_keypoints(["b1"], keypoints_for(b1, [2, 0, 1]))  # a re-run
    assert store.count_rows(T_KEYPOINTS) == 4

    got = {k.image_id: k for k in store.keypoints_for_batches(["b1"])}
    assert [len(got[im.image_id].people) for im in b1] == [2, 0, 1]
    np.testing.assert_allclose(
        got[b1[0].image_id].people[1].array(),
        keypoints_for(b1, [2, 0, 1])[0].people[1].array(),
        atol=1e-4,
    )

    store.replace_keypoints(["b1"], keypoints_for(b1, [1, 0, 1]))  # a new model sees less
    got = {k.image_id: k for k in store.keypoints_for_batches(["b1"])}
    assert len(got[b1[0].image_id].people) == 1
    (other,) = store.keypoints_for_batches(["b2"])  # the other batch is untouched
    assert other.people[0].extras == extras
    assert other.people[0].score == pytest.approx(0.875)
    np.testing.assert_allclose(other.people[0].array(), pose_with_extras.array(), atol=1e-4)


def test_pose_embeddings_replace_exactly_the_batch_rows(
    store: Store, two_batches: dict[str, list[DecodedImage]]
) -> None:
    b1, b2 = two_batches["b1"], two_batches["b2"]
    d_vector = unit(99, POSE_DIM)
    store.replace_pose_embeddings(
        ["b2"], "pose-a", POSE_DIM, [PoseVector(b2[0].image_id, 0, d_vector)]
    )
    run = [
        PoseVector(b1[0].image_id, 0, unit(1, POSE_DIM)),
        PoseVector(b1[0].image_id, 1, unit(2, POSE_DIM)),
        PoseVector(b1[2].image_id, 0, None),  # too few joints seen
    ]
    store.replace_pose_embeddings(["b1"], "pose-a", POSE_DIM, run)
    store.replace_pose_embeddings(["b1"], "pose-a", POSE_DIM, run)
    assert store.count_rows(T_POSE) == 4
    model, vectors = store.pose_embeddings_for_batches(["b1"])
    assert model == "pose-a"
    assert set(vectors) == {(b1[0].image_id, 0), (b1[0].image_id, 1), (b1[2].image_id, 0)}
    assert vectors[(b1[2].image_id, 0)] is None
    np.testing.assert_allclose(vectors[(b1[0].image_id, 1)], unit(2, POSE_DIM))

    # The person count of image a shrinks from 2 to 1: its second row must go.
    store.replace_pose_embeddings(["b1"], "pose-a", POSE_DIM, run[:1])
    _, vectors = store.pose_embeddings_for_batches(["b1"])
    assert set(vectors) == {(b1[0].image_id, 0)}
    _, others = store.pose_embeddings_for_batches(["b2"])
    assert set(others) == {(b2[0].image_id, 0)}
    np.testing.assert_allclose(others[(b2[0].image_id, 0)], d_vector)
    assert store.count_rows(T_POSE) == 2


def test_pose_embeddings_survive_a_dimension_change(
    store: Store, two_batches: dict[str, list[DecodedImage]]
) -> None:
    b1 = two_batches["b1"]
    store.replace_pose_embeddings(
        ["b1"], "pose-a", POSE_DIM, [PoseVector(b1[0].image_id, 0, unit(1, POSE_DIM))]
    )
    store.replace_pose_embeddings(["b1"], "pose-b", 3, [PoseVector(b1[0].image_id, 0, unit(1, 3))])
    model, vectors = store.pose_embeddings_for_batches(["b1"])
    assert model == "pose-b"
    assert vectors[(b1[0].image_id, 0)].shape == (3,)


def test_clip_embeddings_and_framing_replace_per_batch(
    store: Store, two_batches: dict[str, list[DecodedImage]]
) -> None:
    b1, b2 = two_batches["b1"], two_batches["b2"]
    ids1 = [im.image_id for im in b1]
    store.replace_clip_embeddings(
        ["b2"], "clip-x", CLIP_DIM, [b2[0].image_id], np.stack([unit(7, CLIP_DIM)])
    )
    vectors = np.stack([unit(i, CLIP_DIM) for i in range(3)])
    for _ in range(2):
        store.replace_clip_embeddings(["b1"], "clip-x", CLIP_DIM, ids1, vectors)
    assert store.count_rows(T_CLIP) == 4
    store.replace_clip_embeddings(["b1"], "clip-x", CLIP_DIM, ids1[:2], vectors[:2])
    model, got = store.clip_embeddings_for_batches(["b1"])
    assert model == "clip-x" and set(got) == set(ids1[:2])
    np.testing.assert_allclose(got[ids1[1]], vectors[1])
    assert set(store.clip_embeddings_for_batches(["b2"])[1]) == {b2[0].image_id}

    framing = [
        FramingRecord(ids1[0], "full_body", ("full_body", "portrait")),
        FramingRecord(ids1[1], "no_person", ()),
    ]
    store.replace_framing(
        ["b2"], FRAMING_MODEL, [FramingRecord(b2[0].image_id, "portrait", ("portrait",))]
    )
    store.replace_framing(["b1"], FRAMING_MODEL, framing)
    store.replace_framing(["b1"], FRAMING_MODEL, framing)
    assert store.count_rows(T_FRAMING) == 3
    assert store.framing_for_batches(["b1"])[ids1[0]].person_framing == ("full_body", "portrait")
    assert store.framing_model_for_batches(["b1"]) == FRAMING_MODEL
    store.replace_framing(["b1"], FRAMING_MODEL, framing[:1])
    assert set(store.framing_for_batches(["b1"])) == {ids1[0]}
    assert set(store.framing_for_batches(["b2"])) == {b2[0].image_id}


def test_an_empty_rerun_clears_the_batch(
    store: Store, two_batches: dict[str, list[DecodedImage]]
) -> None:
    b1, b2 = two_batches["b1"], two_batches["b2"]
    store.replace_keypoints(["b1"], keypoints_for(b1, [1, 1, 1]))
    store.replace_keypoints(["b2"], keypoints_for(b2, [1]))
    store.replace_keypoints(["b1"], [])
    assert store.keypoints_for_batches(["b1"]) == []
    assert len(store.keypoints_for_batches(["b2"])) == 1


# ---------------------------------------------------------------- search rows


def models(clip: str | None = "clip-x") -> dict[str, str | None]:
    return {"pose_model": "pose-a", "clip_model": clip}


def test_assemble_gives_a_row_per_person_and_one_per_empty_image(
    store: Store, two_batches: dict[str, list[DecodedImage]]
) -> None:
    a, b, c = two_batches["b1"]
    records = store.images_for_batches(["b1"])
    keypoints = {k.image_id: k for k in keypoints_for([a, b], [2, 0])}  # c: not extracted yet
    framing = {a.image_id: FramingRecord(a.image_id, "full_body", ("full_body", "portrait"))}
    pose_vectors = {(a.image_id, 0): unit(1, POSE_DIM), (a.image_id, 1): None}
    clip_vectors = {a.image_id: unit(5, CLIP_DIM)}  # b has no CLIP vector
    rows = assemble_search_rows(records, keypoints, framing, pose_vectors, clip_vectors, models())
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {f"{a.image_id}:0", f"{a.image_id}:1", f"{b.image_id}:-"}
    assert not any(r["image_id"] == c.image_id for r in rows)  # unknown ≠ nobody

    first, second = by_id[f"{a.image_id}:0"], by_id[f"{a.image_id}:1"]
    assert (first["person_index"], first["framing"]) == (0, "full_body")
    assert (second["person_index"], second["framing"]) == (1, "portrait")
    assert first["pose_vector"] == pytest.approx(unit(1, POSE_DIM).tolist())
    assert second["pose_vector"] is None
    assert (
        first["clip_vector"] == second["clip_vector"] == pytest.approx(unit(5, CLIP_DIM).tolist())
    )
    assert first["clip_model"] == "clip-x"
    assert len(first["keypoints"]) == 51
    assert first["keypoint_model"] == "mediapipe-test" and first["pose_model"] == "pose-a"
    assert (first["source_uri"], first["width"]) == (a.source_uri, a.width)

    empty = by_id[f"{b.image_id}:-"]
    assert empty["person_index"] == NO_PERSON_INDEX == -1
    assert empty["framing"] == Framing.NO_PERSON.value
    assert empty["keypoints"] is None and empty["pose_vector"] is None
    assert empty["clip_vector"] is None and empty["clip_model"] is None


def publish(
    store: Store,
    batch_ids: list[str],
    images: list[DecodedImage],
    people: list[int],
    pose_dim: int = POSE_DIM,
    pose_model: str = "pose-a",
) -> tuple[list[dict[str, Any]], Publication]:
    records = [
        r for r in store.images_for_batches(batch_ids) if r.image_id in {i.image_id for i in images}
    ]
    keypoints = {k.image_id: k for k in keypoints_for(images, people)}
    pose_vectors = {
        (im.image_id, p): unit(10 * i + p, pose_dim)
        for i, (im, n) in enumerate(zip(images, people, strict=True))
        for p in range(n)
    }
    clip_vectors = {im.image_id: unit(100 + i, CLIP_DIM) for i, im in enumerate(images)}
    rows = assemble_search_rows(
        records,
        keypoints,
        {},
        pose_vectors,
        clip_vectors,
        {"pose_model": pose_model, "clip_model": "clip-x"},
    )
    publication = publish_search_rows(store, batch_ids, rows, pose_dim, CLIP_DIM, FRAMING_MODEL)
    return rows, publication


def test_publishing_tags_a_version_naming_the_models(
    store: Store, two_batches: dict[str, list[DecodedImage]]
) -> None:
    with pytest.raises(VersionNotFoundError, match="nothing has been published"):
        store.resolve_publication()
    rows, pub = publish(store, ["b1"], two_batches["b1"], [2, 0, 1])
    assert pub.rows == len(rows) == 4
    assert pub.tag == f"publish-{pub.version}"
    assert pub.batches == ("b1",)
    assert pub.models == {
        "keypoint_model": "mediapipe-test",
        "pose_model": "pose-a",
        "clip_model": "clip-x",
        "framing_model": FRAMING_MODEL,
    }
    assert store.count_rows(T_SEARCH) == 4

    _, pub2 = publish(store, ["b2"], two_batches["b2"], [1])
    assert pub2.version > pub.version
    assert pub2.rows == 5  # the whole served table, both batches
    assert [p.version for p in store.publications()] == [pub.version, pub2.version]

    assert store.resolve_publication() == pub2  # latest
    assert store.resolve_publication(pub.version) == pub  # by number
    assert store.resolve_publication(str(pub.version)) == pub
    assert store.resolve_publication(pub.tag) == pub  # by tag
    with pytest.raises(VersionNotFoundError) as info:
        store.resolve_publication("publish-999")
    message = str(info.value)
    assert "'publish-999'" in message
    assert f"{pub.version} ({pub.tag})" in message and f"{pub2.version} ({pub2.tag})" in message


def test_republishing_a_batch_replaces_its_rows(
    store: Store, two_batches: dict[str, list[DecodedImage]]
) -> None:
    publish(store, ["b2"], two_batches["b2"], [1])
    publish(store, ["b1"], two_batches["b1"], [2, 0, 1])
    _, again = publish(store, ["b1"], two_batches["b1"], [2, 0, 1])
    assert again.rows == 5
    _, fewer = publish(store, ["b1"], two_batches["b1"], [1, 0, 1])
    assert fewer.rows == 4
    ids = store.search_table_at(fewer.version).column("id").to_pylist()
    assert f"{two_batches['b2'][0].image_id}:0" in ids
    assert f"{two_batches['b1'][0].image_id}:1" not in ids


def test_old_versions_stay_readable_and_the_cache_follows_the_latest(
    store: Store, two_batches: dict[str, list[DecodedImage]]
) -> None:
    cache = SnapshotCache(store)
    _, old = publish(store, ["b1"], two_batches["b1"], [2, 0, 1])
    first = cache.get()
    assert first.version == old.version and len(first) == 4

    _, new = publish(store, ["b1"], two_batches["b1"], [1, 1, 1])
    latest = cache.get()  # no restart, no new cache: the new publication is served
    assert latest.version == new.version and len(latest) == 3
    assert len(cache.get(old.version)) == 4  # the old version is still there
    assert len(cache.get(old.tag)) == 4

    pinned = SnapshotCache(store, pinned=old.tag)
    assert pinned.get().version == old.version
    publish(store, ["b2"], two_batches["b2"], [1])
    assert pinned.get().version == old.version
    assert cache.get().version > new.version
    with pytest.raises(VersionNotFoundError):
        cache.get("publish-12345")


def test_snapshot_columns_line_up_with_the_rows(
    store: Store, two_batches: dict[str, list[DecodedImage]]
) -> None:
    rows, pub = publish(store, ["b1"], two_batches["b1"], [2, 0, 1])
    snapshot = SearchSnapshot.load(store, pub)
    ids = snapshot.table.column("id").to_pylist()
    assert "pose_vector" not in snapshot.table.column_names
    by_id = {r["id"]: r for r in rows}
    cols = snapshot.columns
    assert cols.pose.shape == (4, POSE_DIM) and cols.clip.shape == (4, CLIP_DIM)
    for i, row_id in enumerate(ids):
        row = by_id[row_id]
        assert cols.pose_mask[i] == (row["pose_vector"] is not None)
        if row["pose_vector"] is not None:
            np.testing.assert_allclose(cols.pose[i], row["pose_vector"], atol=1e-6)
        else:
            assert not cols.pose[i].any()
        np.testing.assert_allclose(cols.clip[i], row["clip_vector"], atol=1e-6)

    # End to end: the pose vector of a stored person finds that person first.
    a = two_batches["b1"][0]
    query = unit(1, POSE_DIM)  # person 1 of image a
    found = hybrid_search(cols, query, None, lam=1.0, k=3)
    assert snapshot.rows(found.rows)[0]["id"] == f"{a.image_id}:1"
    assert all(snapshot.rows(found.rows)[i]["person_index"] >= 0 for i in range(found.rows.size))


def test_a_new_vector_dimension_publishes_and_keeps_the_old_version(
    store: Store, two_batches: dict[str, list[DecodedImage]]
) -> None:
    cache = SnapshotCache(store)
    _, old = publish(store, ["b1"], two_batches["b1"], [2, 0, 1])
    _, new = publish(store, ["b1"], two_batches["b1"], [2, 0, 1], pose_dim=9, pose_model="pose-b")
    assert new.pose_model == "pose-b"
    assert new.rows == 4
    assert cache.get().columns.pose.shape == (4, 9)
    assert cache.get(old.version).columns.pose.shape == (4, POSE_DIM)
    assert cache.get(old.version).publication.pose_model == "pose-a"
