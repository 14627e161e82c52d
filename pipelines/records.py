"""Records passed between stages. Frozen dataclasses, never loose dicts."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

COCO17_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
COCO17_INDEX: dict[str, int] = {name: i for i, name in enumerate(COCO17_NAMES)}
NUM_JOINTS = len(COCO17_NAMES)


def swap_sides(name: str) -> str:
    """The name of the same point on the subject's other side (`left_knee` ↔ `right_knee`)."""
    return name.replace("left_", "#").replace("right_", "left_").replace("#", "right_")


# Index of each COCO-17 joint's mirror image: a pose array indexed by it swaps left and right.
COCO17_MIRROR: tuple[int, ...] = tuple(COCO17_INDEX[swap_sides(n)] for n in COCO17_NAMES)

# Skeleton edges used for drawing and for limb directions (subject's left/right).
COCO17_LIMBS: tuple[tuple[int, int], ...] = (
    (5, 7),  # left upper arm
    (7, 9),  # left forearm
    (6, 8),  # right upper arm
    (8, 10),  # right forearm
    (11, 13),  # left thigh
    (13, 15),  # left shin
    (12, 14),  # right thigh
    (14, 16),  # right shin
    (5, 6),  # shoulders
    (11, 12),  # hips
    (5, 11),  # left flank
    (6, 12),  # right flank
    (0, 5),  # head to left shoulder
    (0, 6),  # head to right shoulder
)

FloatArray = npt.NDArray[np.float32]

# A keypoint scoring above this counts as "in view" for filters and framing.
VISIBLE_SCORE = 0.3


class Framing(enum.StrEnum):
    """How much of a person the picture shows: the portrait classification of the pipeline."""

    FULL_BODY = "full_body"
    UPPER_BODY = "upper_body"
    PORTRAIT = "portrait"
    NO_PERSON = "no_person"


@dataclass(frozen=True)
class Pose:
    """One person's pose in canonical form.

    `keypoints` is COCO-17 in the order of `COCO17_NAMES`, each `(x, y, score)` in pixels of
    the stored (EXIF-upright) image; score 0 means "not seen". `extras` holds the backend's
    further named points (feet, hand points) in the same `(x, y, score)` form.
    """

    keypoints: tuple[tuple[float, float, float], ...]
    extras: tuple[tuple[str, float, float, float], ...] = ()
    score: float = 0.0

    def __post_init__(self) -> None:
        if len(self.keypoints) != NUM_JOINTS:
            raise ValueError(
                f"a pose needs {NUM_JOINTS} COCO-17 keypoints, got {len(self.keypoints)}"
            )
        for kp in self.keypoints:
            if len(kp) != 3:
                raise ValueError("each keypoint is (x, y, score)")

    @classmethod
    def from_array(
        cls,
        array: npt.ArrayLike,
        extras: tuple[tuple[str, float, float, float], ...] = (),
        score: float | None = None,
    ) -> Pose:
        arr = np.asarray(array, dtype=np.float64)
        if arr.shape != (NUM_JOINTS, 3):
            raise ValueError(f"a pose array must have shape (17, 3), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("keypoints must be finite numbers")
        kps = tuple((float(x), float(y), float(s)) for x, y, s in arr)
        if score is None:
            visible = arr[:, 2][arr[:, 2] > 0]
            score = float(visible.mean()) if visible.size else 0.0
        return cls(keypoints=kps, extras=extras, score=score)

    def array(self) -> FloatArray:
        """The COCO-17 keypoints as a (17, 3) float32 array."""
        return np.asarray(self.keypoints, dtype=np.float32)

    def flat(self) -> list[float]:
        return [v for kp in self.keypoints for v in kp]

    def bbox(self, min_score: float = 0.0) -> tuple[float, float, float, float] | None:
        """(x, y, w, h) around the joints scoring above `min_score`, or None when none do."""
        arr = self.array()
        seen = arr[arr[:, 2] > min_score]
        if seen.size == 0:
            return None
        x0, y0 = seen[:, 0].min(), seen[:, 1].min()
        x1, y1 = seen[:, 0].max(), seen[:, 1].max()
        return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


@dataclass(frozen=True)
class DecodedImage:
    """An image read from a source: identity, upright pixels and provenance."""

    image_id: str  # sha256 of the original bytes
    source_uri: str
    data: bytes
    width: int
    height: int
    format: str
    media_type: str
    thumbnail: bytes  # ≤ 256 px JPEG of the upright image
    # Provenance, as the source gave it (None where a source has nothing to say).
    page_url: str | None = None  # the page the image was found on
    licence: str | None = None
    attribution: str | None = None  # credit line: creator, title, where from
    fetched_at: datetime | None = None
    phash: str | None = None  # perceptual hash (16 hex digits); None for a featureless image
    medium: str | None = None  # "photo" or "drawing", estimated from the pixels


@dataclass(frozen=True)
class IngestFailure:
    """A file that could not be ingested, kept with the reason so nothing is lost silently."""

    source_uri: str
    reason: str


@dataclass(frozen=True)
class ImageKeypoints:
    """All people found in one image (possibly none) by one keypoint model."""

    image_id: str
    model_id: str
    people: tuple[Pose, ...] = field(default_factory=tuple)
