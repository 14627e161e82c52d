"""BlazePose's 33 landmarks as a canonical pose (COCO-17 plus hands' and feet's extras)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from pipelines.pose.person_detection import OUT_OF_FRAME_MARGIN
from pipelines.records import Pose

# BlazePose's 33 landmarks → COCO-17 (subject's left/right in both).
BLAZEPOSE_TO_COCO17: tuple[int, ...] = (
    0,
    2,
    5,
    7,
    8,
    11,
    12,
    13,
    14,
    15,
    16,
    23,
    24,
    25,
    26,
    27,
    28,
)
BLAZEPOSE_EXTRAS: dict[int, str] = {
    17: "left_pinky",
    18: "right_pinky",
    19: "left_index",
    20: "right_index",
    21: "left_thumb",
    22: "right_thumb",
    29: "left_heel",
    30: "right_heel",
    31: "left_foot_index",
    32: "right_foot_index",
}


def blazepose_to_pose(landmarks: np.ndarray, width: int, height: int) -> Pose:
    """Map BlazePose landmarks `(33, 3)` of normalised (x, y, visibility) to a canonical Pose."""
    if landmarks.shape != (33, 3):
        raise ValueError(f"expected 33 BlazePose landmarks, got {landmarks.shape}")
    xs = landmarks[:, 0] * width
    ys = landmarks[:, 1] * height
    score = np.clip(landmarks[:, 2], 0.0, 1.0)
    margin_x, margin_y = OUT_OF_FRAME_MARGIN * width, OUT_OF_FRAME_MARGIN * height
    outside = (
        (xs < -margin_x) | (xs > width + margin_x) | (ys < -margin_y) | (ys > height + margin_y)
    )
    score = np.where(outside, 0.0, score)
    coco = np.stack([xs, ys, score], axis=1)[list(BLAZEPOSE_TO_COCO17)]
    extras = tuple(
        (name, float(xs[i]), float(ys[i]), float(score[i])) for i, name in BLAZEPOSE_EXTRAS.items()
    )
    seen = coco[:, 2][coco[:, 2] > 0]
    return Pose.from_array(coco, extras=extras, score=float(seen.mean()) if seen.size else 0.0)


def accepted_pose(
    landmarks: np.ndarray | None, image: Image.Image, min_score: float
) -> Pose | None:
    """The pose of normalised `landmarks` in `image`, when its mean COCO-17 visibility reaches
    `min_score`; None otherwise (or for no landmarks)."""
    if landmarks is None:
        return None
    pose = blazepose_to_pose(landmarks, image.width, image.height)
    if float(pose.array()[:, 2].mean()) < min_score:
        return None
    return pose
