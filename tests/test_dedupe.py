"""Near-duplicates: perceptual hashes, their grouping, and the groups in the stored rows."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageEnhance

from pipelines.records import DecodedImage, ImageKeypoints
from pipelines.sources.base import SourceItem, decode_item
from pipelines.sources.dedupe import (
    NEAR_DUPLICATE_BITS,
    NearDuplicateIndex,
    hamming,
    perceptual_hash,
    sort_new_images,
)
from storage.search_rows import assemble_search_rows
from storage.store import Store
from tests.local_http import textured_image


def _image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def _encode(image: Image.Image, fmt: str, **save: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def test_reencoded_resized_and_retouched_copies_hash_within_the_threshold() -> None:
    original = _image(textured_image(1, size=(320, 240)))
    base = perceptual_hash(original)
    assert base is not None
    copies = [
        _image(_encode(original, "JPEG", quality=40)),
        original.resize((160, 120)),
        ImageEnhance.Brightness(original).enhance(1.15),
        original.crop((4, 3, 316, 237)),
    ]
    for copy in copies:
        h = perceptual_hash(copy)
        assert h is not None and hamming(base, h) <= NEAR_DUPLICATE_BITS


def test_different_pictures_are_far_apart() -> None:
    hashes = [perceptual_hash(_image(textured_image(seed, size=(128, 96)))) for seed in range(12)]
    assert all(h is not None for h in hashes)
    distances = [hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :] if a and b]
    assert min(distances) > NEAR_DUPLICATE_BITS
    assert 20 < sum(distances) / len(distances) < 44  # about half the bits differ


def test_a_featureless_image_has_no_hash_and_groups_with_nothing() -> None:
    red = Image.new("RGB", (64, 64), (200, 30, 40))
    blue = Image.new("RGB", (64, 64), (10, 30, 240))
    assert perceptual_hash(red) is None and perceptual_hash(blue) is None
    index = NearDuplicateIndex()
    assert index.assign("red", None) == "red"
    assert index.assign("blue", None) == "blue"


def test_the_index_puts_a_near_duplicate_in_the_group_of_the_first_seen() -> None:
    original = _image(textured_image(3, size=(200, 150)))
    a = perceptual_hash(original)
    b = perceptual_hash(_image(_encode(original, "JPEG", quality=30)))
    c = perceptual_hash(original.resize((100, 75)))
    other = perceptual_hash(_image(textured_image(4, size=(200, 150))))
    assert a and b and c and other
    index = NearDuplicateIndex([("first", a, "first")])
    assert index.assign("second", b) == "first"
    assert index.assign("third", c) == "first"
    assert index.assign("other", other) == "other"
    assert len(index) == 4


def test_groups_are_stored_with_images_and_carried_into_search_rows(tmp_path: Path) -> None:
    store = Store.at_home(tmp_path)
    original = textured_image(5, size=(200, 150))
    copy = _encode(_image(original), "JPEG", quality=50)
    decoded = [
        decode_item(SourceItem(f"/photos/{n}", data)) for n, data in (("a", original), ("b", copy))
    ]
    assert all(isinstance(d, DecodedImage) for d in decoded)
    first, second = decoded
    assert isinstance(first, DecodedImage) and isinstance(second, DecodedImage)
    index = NearDuplicateIndex(store.perceptual_hashes())
    groups = {d.image_id: index.assign(d.image_id, d.phash) for d in (first, second)}
    store.register_batch("b1", "folder", "/photos")
    records = store.add_images("b1", "folder", [first, second], groups)
    assert [r.near_duplicate_group for r in records] == [first.image_id, first.image_id]
    assert [r.phash for r in records] == [first.phash, second.phash]
    # The stored hashes seed the next batch's index, first member first.
    assert [(i, g) for i, _, g in store.perceptual_hashes()] == [
        (first.image_id, first.image_id),
        (second.image_id, first.image_id),
    ]
    stored = store.images_for_batches(["b1"])
    rows = assemble_search_rows(
        stored,
        {im.image_id: ImageKeypoints(im.image_id, "kp", ()) for im in stored},
        {},
        {},
        {},
        {"pose_model": "pose", "clip_model": None},
    )
    assert {r["image_id"]: r["near_duplicate_group"] for r in rows} == {
        first.image_id: first.image_id,
        second.image_id: first.image_id,
    }
    assert all(r["phash"] for r in rows)


def test_a_chunk_is_sorted_into_new_images_copies_and_near_duplicates() -> None:
    def decoded(image_id: str, phash: str) -> DecodedImage:
        return DecodedImage(
            image_id, f"{image_id}.png", b"", 1, 1, "PNG", "image/png", b"", phash=phash
        )

    near = NearDuplicateIndex([("known", "f0f0f0f0f0f0f0f0", "known")])
    seen: set[str] = set()
    chunk = [
        decoded("indexed", "0123456789abcdef"),  # already in the index
        decoded("a", "f0f0f0f0f0f0f0f1"),  # one bit from "known": joins its group
        decoded("b", "0f0f0f0f0f0f0f0f"),  # far from everything: a group of its own
        decoded("a", "f0f0f0f0f0f0f0f1"),  # the same bytes again in this batch
    ]
    new = sort_new_images(chunk, {"indexed"}, seen, near)
    assert [image.image_id for image in new.fresh] == ["a", "b"]
    assert new.groups == {"a": "known", "b": "b"}
    assert (new.duplicates, new.near_duplicates) == (2, 1)
    # The next chunk of the batch knows what this one brought.
    again = sort_new_images([decoded("b", "0f0f0f0f0f0f0f0f")], set(), seen, near)
    assert again.fresh == [] and again.duplicates == 1
