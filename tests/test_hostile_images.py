"""Hostile input: bad files are recorded with their reason, awkward valid ones are indexed, a
batch full of both still publishes, and memory stays bounded (files from `tests.hostile`)."""

from __future__ import annotations

import io
import json
import os
import random
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile

from assets.indexing import index_folder
from pipelines.images import ImageDecodeError, decode_image, image_id_of
from storage.store import Store
from tests.conftest import REPO, evalset_or_skip
from tests.hostile import (
    HUGE_VALID_SIZE,
    STORED_FOR_ORIENTATION,
    bad_cases,
    corrupt_exif_jpeg,
    encode,
    exif_rotated,
    gif_bomb,
    jpeg_claiming,
    png_bomb,
    synthetic_picture,
    tiff_claiming,
    tricky_cases,
    write_batch,
)

# Peak memory the indexing run may add to its process (models loaded included). Decoding the
# 30000 × 30000 bomb alone would add 2.7 GB (0.9 GB just to read it).
MAX_RSS_GROWTH_MB = 1536
# The person photo whose keypoints are compared across EXIF orientations.
PERSON_PHOTO = "coco__000000000785.jpg"


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean())


# ---------------------------------------------------------------- the decoder alone


@pytest.mark.parametrize(
    "case", [c for c in bad_cases() if not c.sparse_size], ids=lambda c: c.name
)
def test_bad_files_are_refused_with_a_readable_reason(case: Any) -> None:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(case.data)
    reason = str(info.value)
    assert case.reason in reason, reason
    assert "Traceback" not in reason and len(reason) < 300


@pytest.mark.parametrize("case", tricky_cases(), ids=lambda c: c.name)
def test_awkward_valid_images_decode_to_upright_rgb(case: Any) -> None:
    image, fmt = decode_image(case.data)
    assert image.mode == "RGB"
    assert image.width >= 1 and image.height >= 1
    assert fmt in {"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"}


@pytest.mark.parametrize(
    "data",
    [
        png_bomb(),
        gif_bomb(),
        jpeg_claiming(30_000, 30_000),
        tiff_claiming(30_000, 30_000),
        jpeg_claiming(9_000, 9_000),  # 81 Mpx: over our limit, under Pillow's own warning
    ],
    ids=["png-30000", "gif-30000", "jpeg-30000", "tiff-30000", "jpeg-9000"],
)
def test_decompression_bombs_are_refused_before_any_pixel_is_decoded(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError(f"decoded the pixels of a {self.size} bomb")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageDecodeError, match="too large"):
        decode_image(data)


def test_the_png_bomb_is_a_real_image_of_its_claimed_size() -> None:
    # Not a forged header: a decoder that ignored the limit would really produce 2.7 GB.
    data = png_bomb(3000, 200)  # same construction, small enough to decode here
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (3000, 200)
        image.load()
        assert image.getextrema() == ((0, 0), (0, 0), (0, 0))
    bomb = png_bomb()
    assert len(bomb) < 4_000_000
    assert struct.unpack(">II", bomb[16:24]) == (30_000, 30_000)  # IHDR width, height


def test_a_malformed_exif_block_does_not_lose_the_image_or_its_orientation() -> None:
    # Pillow can read this block but raises struct.error writing it back, which is what
    # ImageOps.exif_transpose does: the image was lost with an unhandled exception.
    data = corrupt_exif_jpeg()
    assert Image.open(io.BytesIO(data)).size == (96, 64)
    image, _ = decode_image(data)
    assert image.size == (64, 96)  # Orientation 6 applied: displayed upright


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_displayed_upright(orientation: int) -> None:
    upright = synthetic_picture(5, (120, 80))
    data = exif_rotated(upright, orientation, quality=95, subsampling=0)
    image, _ = decode_image(data)
    assert image.size == upright.size
    assert mean_abs_diff(image, upright) < 4
    if orientation != 1:  # as stored (EXIF ignored) it would not match
        stored = STORED_FOR_ORIENTATION[orientation](upright)
        if stored.size == upright.size:
            assert mean_abs_diff(stored, upright) > 20


def test_cmyk_sixteen_bit_and_transparent_images_keep_their_look() -> None:
    picture = synthetic_picture(6, (90, 60))
    cmyk, _ = decode_image(encode(picture.convert("CMYK"), "JPEG", quality=95))
    assert mean_abs_diff(cmyk, picture) < 12

    ramp = (np.arange(90 * 60, dtype=np.uint32).reshape(60, 90) * 12).astype(np.uint16)
    grey, _ = decode_image(encode(Image.fromarray(ramp), "TIFF"))
    expected = np.round(ramp / 257.0)
    assert np.abs(np.asarray(grey)[:, :, 0] - expected).max() <= 1

    la = Image.new("LA", (20, 10), (0, 0))  # transparent black
    la.paste((40, 255), (10, 0, 20, 10))  # opaque dark grey
    composited, _ = decode_image(encode(la, "PNG"))
    px = np.asarray(composited)
    assert tuple(px[5, 5]) == (255, 255, 255) and tuple(px[5, 15]) == (40, 40, 40)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on damaged EXIF blocks
def test_mutated_files_only_ever_raise_image_decode_error() -> None:
    """Random damage to files of every format: a decoder failure is always an
    ImageDecodeError with a reason, never another exception that would stop a batch."""
    rng = random.Random(6)
    seeds = [c.data for c in tricky_cases() if len(c.data) < 100_000]
    seeds.append(corrupt_exif_jpeg())
    escaped: list[str] = []
    for i in range(1500):
        data = bytearray(seeds[i % len(seeds)])
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data))
            roll = rng.random()
            if roll < 0.6:
                data[at] = rng.randrange(256)
            elif roll < 0.8:
                del data[at : at + rng.randint(1, 16)]
            else:
                data[at:at] = rng.randbytes(rng.randint(1, 16))
        try:
            decode_image(bytes(data))
        except ImageDecodeError as exc:
            assert str(exc)
        except Exception as exc:
            escaped.append(f"{i}: {type(exc).__name__}: {exc}")
    assert not escaped, escaped[:5]


# ---------------------------------------------------------------- a batch through the pipeline

_CHILD = """
import json, resource, sys, time
from pathlib import Path
from assets.indexing import index_folder
from config.settings import Settings
folder, batch_id = sys.argv[1], sys.argv[2]
settings = Settings.model_validate_json(sys.argv[3])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
report = index_folder(folder, settings, batch_id=batch_id)
print("RESULT " + json.dumps({
    "success": report.success,
    "new_images": report.new_images,
    "seconds": time.perf_counter() - started,
    "rss_before_kb": before,
    "rss_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "version": report.publication.version if report.publication else None,
}))
"""


def index_in_child(folder: Path, settings: Any, batch_id: str) -> dict[str, Any]:
    """Index `folder` with `index_folder` in a fresh process, so its peak memory is its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSEFRAMER_", "DAGSTER_"))}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder), batch_id, settings.model_dump_json()],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    return dict(json.loads(lines[-1].removeprefix("RESULT ")))


@pytest.mark.parametrize(
    ("total", "bad_fraction"),
    [(100, 0.15), pytest.param(1000, 0.10, marks=pytest.mark.slow)],
    ids=["100-files", "1000-files"],
)
def test_hostile_batch_indexes_every_good_image_and_records_every_bad_one(
    tmp_path: Path, index_settings_for: Any, total: int, bad_fraction: float
) -> None:
    manifest = write_batch(tmp_path / "batch", total=total, bad_fraction=bad_fraction, seed=total)
    assert len(manifest.bad) == round(total * bad_fraction)
    assert len({reason for reason in manifest.bad.values()}) >= 6  # every kind of bad file
    settings = index_settings_for(tmp_path / "home")

    result = index_in_child(manifest.folder, settings, "hostile")

    growth_mb = (result["rss_peak_kb"] - result["rss_before_kb"]) / 1024
    print(
        f"\n{total} files ({len(manifest.bad)} bad): indexed in {result['seconds']:.1f} s, "
        f"{total / result['seconds']:.1f} files/s; peak RSS {result['rss_peak_kb'] / 1024:.0f} MB, "
        f"+{growth_mb:.0f} MB during the run"
    )
    assert result["success"], "the indexing run failed"
    assert result["new_images"] == len(manifest.valid)
    assert growth_mb < MAX_RSS_GROWTH_MB, f"the run grew by {growth_mb:.0f} MB"

    store = Store.at_home(settings.storage.home)
    failures = {Path(f["source_uri"]).name: f for f in store.failures_for_batches(["hostile"])}
    for name, fragment in manifest.bad.items():
        assert name in failures, f"{name} was not recorded as a failure"
        assert failures[name]["stage"] == "source_images", failures[name]
        assert fragment in failures[name]["reason"], (name, failures[name]["reason"])
    wrongly_failed = {n: f["reason"] for n, f in failures.items() if n in manifest.valid}
    assert not wrongly_failed

    rows = store.search_table_at(result["version"]).to_pylist()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate rows in the served table"
    served = {r["image_id"] for r in rows}
    missing = [name for name, image_id in manifest.valid.items() if image_id not in served]
    assert not missing, f"valid images not searchable: {missing[:10]}"
    assert served == set(manifest.valid.values())

    # Stored upright: the displayed size, and a thumbnail that looks like the displayed image.
    images = {im.image_id: im for im in store.images_for_batches(["hostile"])}
    huge = images[manifest.valid["huge-6000x4000.jpg"]]
    assert (huge.width, huge.height) == HUGE_VALID_SIZE
    assert max(Image.open(io.BytesIO(huge.thumbnail)).size) == 256
    for orientation in range(2, 9):
        record = images[manifest.valid[f"exif-orientation-{orientation}.jpg"]]
        upright = synthetic_picture(60 + orientation)
        assert (record.width, record.height) == upright.size
        shown = Image.open(io.BytesIO(record.thumbnail)).convert("RGB")
        assert mean_abs_diff(shown, upright) < 8, orientation


def test_exif_rotated_photos_get_keypoints_in_their_displayed_orientation(
    tmp_path: Path, index_settings_for: Any
) -> None:
    evalset = evalset_or_skip()
    upright, _ = decode_image((evalset / "images" / PERSON_PHOTO).read_bytes())
    folder = tmp_path / "rotated"  # temporary re-encodings only; nothing is copied into the repo
    folder.mkdir()
    by_orientation = {}
    for orientation in range(1, 9):
        data = exif_rotated(upright, orientation, quality=95, subsampling=0)
        (folder / f"orientation-{orientation}.jpg").write_bytes(data)
        by_orientation[orientation] = image_id_of(data)

    settings = index_settings_for(tmp_path / "home")
    started = time.perf_counter()
    report = index_folder(folder, settings, batch_id="rotated")
    assert report.success and report.new_images == 8, report
    print(f"\n8 orientations indexed in {time.perf_counter() - started:.1f} s")

    store = Store.at_home(settings.storage.home)
    people = {k.image_id: k.people for k in store.keypoints_for_batches(["rotated"])}
    images = {im.image_id: im for im in store.images_for_batches(["rotated"])}
    reference = people[by_orientation[1]]
    assert reference, "nobody found in the upright photo"
    ref = reference[0].array()
    for orientation, image_id in by_orientation.items():
        record = images[image_id]
        assert (record.width, record.height) == upright.size, orientation
        found = people[image_id]
        assert found, f"orientation {orientation}: nobody found"
        # The person nearest the reference (a detector may order people differently).
        best = min(
            (p.array() for p in found),
            key=lambda a: float(np.abs(a[:, :2] - ref[:, :2]).mean()),
        )
        seen = (ref[:, 2] > 0.5) & (best[:, 2] > 0.5)
        assert seen.sum() >= 10, orientation
        error = np.linalg.norm(best[seen, :2] - ref[seen, :2], axis=1)
        print(f"orientation {orientation}: max {error.max():.1f} px, mean {error.mean():.1f} px")
        assert error.mean() < 2.5 and error.max() < 8, (orientation, error.round(1).tolist())
