"""Synthetic test data (images, poses, stored records) and access to the shared evalset.

The evalset under ../shared/data/evalset is research-use only: tests read it from there and
skip with a clear reason when it is absent; nothing of it is ever copied into the repository.
"""

from __future__ import annotations

import functools
import io
import json
from typing import Any

import numpy as np
import pytest
from PIL import Image

from benchmarks.paths import evalset_dir
from pipelines.records import COCO17_INDEX, COCO17_NAMES, NUM_JOINTS, Pose

# ---------------------------------------------------------------- images


def image_bytes(
    size: tuple[int, int] = (64, 48),
    fmt: str = "PNG",
    color: tuple[int, int, int] = (200, 30, 40),
    mode: str = "RGB",
    **save: Any,
) -> bytes:
    """Bytes of a plain image; `save` goes to `Image.save` (e.g. exif=…, quality=…)."""
    image = Image.new(mode, size, color)
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def split_image(size: tuple[int, int] = (80, 60)) -> Image.Image:
    """Left half red, right half blue: shows whether pixels come back in the right place."""
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    return image


def encode(image: Image.Image, fmt: str, **save: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


# ---------------------------------------------------------------- poses

# A person standing facing the camera, arms down, in a 100 × 170 px frame. The subject's left
# is on the image's right (larger x); y grows downwards.
STANDING: dict[str, tuple[float, float]] = {
    "nose": (50, 20),
    "left_eye": (53, 17),
    "right_eye": (47, 17),
    "left_ear": (56, 19),
    "right_ear": (44, 19),
    "left_shoulder": (62, 40),
    "right_shoulder": (38, 40),
    "left_elbow": (66, 62),
    "right_elbow": (34, 62),
    "left_wrist": (68, 84),
    "right_wrist": (32, 84),
    "left_hip": (57, 92),
    "right_hip": (43, 92),
    "left_knee": (58, 127),
    "right_knee": (42, 127),
    "left_ankle": (58, 162),
    "right_ankle": (42, 162),
}

ARMS_UP: dict[str, tuple[float, float]] = {
    **STANDING,
    "left_elbow": (70, 22),
    "right_elbow": (30, 22),
    "left_wrist": (72, 2),
    "right_wrist": (28, 2),
}

LEFT_ARM_UP: dict[str, tuple[float, float]] = {
    **STANDING,
    "left_elbow": (70, 22),
    "left_wrist": (72, 2),
}

LEGS = ("left_knee", "right_knee", "left_ankle", "right_ankle")
HIPS = ("left_hip", "right_hip")
ARMS = ("left_elbow", "right_elbow", "left_wrist", "right_wrist")
FACE = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
SHOULDERS = ("left_shoulder", "right_shoulder")


def pose_array(
    points: dict[str, tuple[float, float]] = STANDING,
    unseen: tuple[str, ...] | list[str] = (),
    score: float = 1.0,
) -> np.ndarray:
    """A `(17, 3)` array: the named points at `score`, the `unseen` ones at score 0."""
    arr = np.zeros((NUM_JOINTS, 3), dtype=np.float64)
    for name in COCO17_NAMES:
        x, y = points[name]
        arr[COCO17_INDEX[name]] = (x, y, 0.0 if name in unseen else score)
    return arr


def make_pose(
    points: dict[str, tuple[float, float]] = STANDING,
    unseen: tuple[str, ...] | list[str] = (),
    score: float = 1.0,
) -> Pose:
    return Pose.from_array(pose_array(points, unseen, score))


def transformed(pose: Pose, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> Pose:
    arr = pose.array().astype(np.float64)
    arr[:, 0] = arr[:, 0] * scale + dx
    arr[:, 1] = arr[:, 1] * scale + dy
    return Pose.from_array(arr)


def only_seen(names: tuple[str, ...] | list[str], score: float = 1.0) -> Pose:
    """The standing pose with only `names` seen."""
    return make_pose(unseen=[n for n in COCO17_NAMES if n not in names], score=score)


# ---------------------------------------------------------------- evalset

EVALSET_DIR = evalset_dir()
EVALSET_MISSING_REASON = (
    f"evalset not found at {EVALSET_DIR} (set POSEFRAMER_EVALSET, default "
    "../shared/data/evalset relative to the project root); the real-data tests need it"
)
requires_evalset = pytest.mark.skipif(
    not (EVALSET_DIR / "annotations.json").is_file(), reason=EVALSET_MISSING_REASON
)


@functools.cache
def evalset_images() -> tuple[dict[str, Any], ...]:
    """The annotated images of the evalset (its `images` list)."""
    annotations = json.loads((EVALSET_DIR / "annotations.json").read_text(encoding="utf-8"))
    return tuple(annotations["images"])


def evalset_bytes(entry: dict[str, Any]) -> bytes:
    return (EVALSET_DIR / entry["file"]).read_bytes()


def gt_pose(person: dict[str, Any]) -> Pose:
    """A ground-truth person as a canonical Pose: every labelled joint (v > 0) seen, score 1."""
    kp = np.asarray(person["keypoints_coco17"], dtype=np.float64)
    labelled = kp[:, 2] > 0
    arr = np.column_stack([kp[:, :2], labelled.astype(np.float64)])
    return Pose.from_array(arr)


@functools.cache
def mediapipe_detections() -> dict[str, tuple[Pose, ...]]:
    """The mediapipe detector's people for every annotated evalset image, by file.

    Cached for the whole session: the keypoint and pose-embedding tests share one pass.
    """
    from pipelines.catalog import keypoint_models
    from pipelines.images import decode_image

    detector = keypoint_models.load("mediapipe")
    out: dict[str, tuple[Pose, ...]] = {}
    for entry in evalset_images():
        image, _ = decode_image(evalset_bytes(entry))
        assert image.size == (entry["width"], entry["height"]), entry["file"]
        out[entry["file"]] = tuple(detector.detect(image))
    return out
