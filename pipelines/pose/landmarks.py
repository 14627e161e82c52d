"""BlazePose's landmark model run directly on a person's region (`LandmarkModel`).

What MediaPipe's pose graph does after its detector (`pose_landmark_by_roi_cpu.pbtxt`): the
rotated crop of the region, the landmark tensor's decoding, the heatmap refinement and the
projection back to the image, each a plain numpy function testable without the model. The
rotated crop and its back-projection also serve the hand models (`pipelines.pose.hands`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipelines.pose.person_detection import FloatArray, Roi, alignment_roi, sigmoid_scores
from pipelines.pose.wheel_models import WheelModel

# The landmark model (pose_landmark_by_roi_cpu.pbtxt and its post-processing, 0.10.x).
LANDMARK_INPUT_SIZE = 256
NUM_LANDMARKS = 39  # the 33 BlazePose landmarks, then 2 for tracking, then 4 unused
NUM_POSE_LANDMARKS = 33
MIN_POSE_PRESENCE = 0.5
HEATMAP_KERNEL = 7
MIN_HEATMAP_CONFIDENCE = 0.5


def roi_to_image_matrix(roi: Roi, size: int = LANDMARK_INPUT_SIZE) -> FloatArray:
    """The 2×3 affine map from pixels of the `size`² model input (continuous coordinates,
    pixel i spanning [i, i + 1)) to pixels of the image: the ROI's square, turned by its
    rotation, fills the input (MediaPipe's LandmarkProjectionCalculator convention)."""
    cos, sin = math.cos(roi.rotation), math.sin(roi.rotation)
    k = roi.side / size
    linear = np.array([[k * cos, -k * sin], [k * sin, k * cos]])
    shift = np.array([roi.cx, roi.cy]) - linear @ np.array([size / 2, size / 2])
    return np.column_stack([linear, shift])


def roi_points_to_image(points: npt.ArrayLike, roi: Roi, size: int) -> FloatArray:
    """Points `(N, 2)` in pixels of the `size`² model input read from `roi` → image pixels."""
    to_image = roi_to_image_matrix(roi, size)
    return np.asarray(points, dtype=np.float64) @ to_image[:, :2].T + to_image[:, 2]


def image_points_to_roi(points: npt.ArrayLike, roi: Roi, size: int) -> FloatArray:
    """Image pixels `(N, 2)` → pixels of the `size`² model input read from `roi` (the
    inverse of `roi_points_to_image`)."""
    to_image = roi_to_image_matrix(roi, size)
    offsets = np.asarray(points, dtype=np.float64) - to_image[:, 2]
    return np.asarray(offsets @ np.linalg.inv(to_image[:, :2]).T, dtype=np.float64)


def crop_roi(rgb: npt.NDArray[np.uint8], roi: Roi, size: int = LANDMARK_INPUT_SIZE) -> FloatArray:
    """The ROI of an `(H, W, 3)` uint8 image as the `(1, size, size, 3)` landmark model input
    in [0, 1]; parts beyond the image repeat its edge (MediaPipe's default border)."""
    import cv2

    to_image = roi_to_image_matrix(roi, size)
    # OpenCV puts pixel centres on integers: shift both ends by half a pixel.
    to_image_cv = to_image.copy()
    to_image_cv[:, 2] += to_image[:, :2] @ np.array([0.5, 0.5]) - 0.5
    crop = cv2.warpAffine(
        rgb,
        to_image_cv,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return (np.asarray(crop, dtype=np.float64) / 255.0)[None]


def refine_from_heatmap(
    points: FloatArray,
    heatmap: FloatArray,
    kernel: int = HEATMAP_KERNEL,
    min_confidence: float = MIN_HEATMAP_CONFIDENCE,
) -> FloatArray:
    """Landmarks `(N, 2)` normalised to the model input, each moved to the confidence-weighted
    mean of the raw heatmap `(h, w, N)` around it where that heatmap is confident
    (MediaPipe's RefineLandmarksFromHeatmapCalculator)."""
    height, width, _ = heatmap.shape
    out = np.array(points, dtype=np.float64, copy=True)
    half = (kernel - 1) // 2
    for i, (x, y) in enumerate(points):
        col, row = int(x * width), int(y * height)
        if not (0 <= col < width and 0 <= row < height):
            continue
        rows = slice(max(0, row - half), min(height, row + half + 1))
        cols = slice(max(0, col - half), min(width, col + half + 1))
        confidence = sigmoid_scores(heatmap[rows, cols, i])
        total = float(confidence.sum())
        if total <= 0 or float(confidence.max()) < min_confidence:
            continue
        grid_rows, grid_cols = np.mgrid[rows, cols]
        out[i, 0] = float((grid_cols * confidence).sum()) / width / total
        out[i, 1] = float((grid_rows * confidence).sum()) / height / total
    return out


@dataclass(frozen=True)
class PersonLandmarks:
    """BlazePose's 33 landmarks of one person, `(33, 3)`: (x, y) in pixels of the image and
    visibility in [0, 1]; `presence` is the model's confidence that a person is there;
    `alignment` the model's own 2 alignment points `(2, 2)` (mid hip, scale point), from which
    MediaPipe derives the person's region on the next frame."""

    landmarks: FloatArray
    presence: float
    alignment: FloatArray | None = None

    def refined_roi(self) -> Roi | None:
        """The region the landmarks themselves give the person (MediaPipe's
        pose_landmarks_to_roi): what a second, better-framed reading uses."""
        if self.alignment is None:
            return None
        (x0, y0), (x1, y1) = self.alignment
        if not math.isfinite(x0 + y0 + x1 + y1) or math.hypot(x1 - x0, y1 - y0) < 1.0:
            return None
        return alignment_roi((float(x0), float(y0)), (float(x1), float(y1)))


@dataclass(frozen=True)
class RegionReading:
    """The landmark model's outputs for one input, in the input's pixels: `presence` (that a
    person is there), `mask` (the person mask's logits `(256, 256)`, the model's segmentation
    output: a person's pixels above 0, probability above 0.5) and `landmarks` (BlazePose's 33,
    `(33, 2)`, refined from the heatmap; None where not asked for)."""

    presence: float
    mask: FloatArray
    landmarks: FloatArray | None


def input_landmarks(
    raw: npt.ArrayLike, heatmap: FloatArray | None, size: int = LANDMARK_INPUT_SIZE
) -> FloatArray:
    """The landmark tensor (39 × (x, y, z, visibility logit, presence logit), x and y in
    pixels of the model input) → `(39, 2)` pixels of the model input, refined from the
    heatmap where there is one."""
    values = np.asarray(raw, dtype=np.float64).reshape(NUM_LANDMARKS, 5)
    points = values[:, :2] / size
    if heatmap is not None:
        points = refine_from_heatmap(points, heatmap)
    return np.asarray(points * size, dtype=np.float64)


def decode_landmarks(
    raw: npt.ArrayLike, heatmap: FloatArray | None, roi: Roi, size: int = LANDMARK_INPUT_SIZE
) -> FloatArray:
    """The landmark tensor (39 × (x, y, z, visibility logit, presence logit), x and y in
    pixels of the model input) of `roi` → `(33, 3)` image pixels and visibility."""
    values = np.asarray(raw, dtype=np.float64).reshape(NUM_LANDMARKS, 5)
    pixels = roi_points_to_image(input_landmarks(raw, heatmap, size), roi, size)
    return np.column_stack(
        [pixels[:NUM_POSE_LANDMARKS], sigmoid_scores(values[:NUM_POSE_LANDMARKS, 3])]
    )


class LandmarkModel:
    """BlazePose's landmark model run directly on a region of interest, with LiteRT.

    This is what MediaPipe's pose graph does after its detector, minus the graph's choice of
    a single person: the caller says where the person is.
    """

    def __init__(self, variant: str = "full") -> None:
        self.variant = variant
        self._model = WheelModel(f"pose_landmark/pose_landmark_{variant}.tflite")

    def raw_outputs(self, tensor: FloatArray) -> tuple[FloatArray, float, FloatArray]:
        """Landmark tensor `(195,)`, pose presence and raw heatmap `(64, 64, 39)`."""
        outputs = self._model(tensor)
        landmarks = outputs["Identity"]
        presence = float(outputs["Identity_1"].ravel()[0])
        heatmap = outputs["Identity_3"]
        return landmarks.ravel(), presence, heatmap[0]

    def region_reading(self, tensor: FloatArray, landmarks: bool = True) -> RegionReading:
        """What the model says of one input: its pose presence, its person mask and (unless
        `landmarks` is false: then None) its 33 landmarks in the input's pixels."""
        outputs = self._model(tensor)
        points = (
            input_landmarks(outputs["Identity"].ravel(), outputs["Identity_3"][0])
            if landmarks
            else None
        )
        return RegionReading(
            presence=float(outputs["Identity_1"].ravel()[0]),
            mask=outputs["Identity_2"][0, :, :, 0],
            landmarks=None if points is None else points[:NUM_POSE_LANDMARKS],
        )

    def run(
        self, rgb: npt.NDArray[np.uint8], roi: Roi, min_presence: float = MIN_POSE_PRESENCE
    ) -> PersonLandmarks | None:
        """The person in `roi` of the `(H, W, 3)` image, or None when the model sees nobody."""
        raw, presence, heatmap = self.raw_outputs(crop_roi(rgb, roi))
        if presence < min_presence:
            return None
        values = np.asarray(raw, dtype=np.float64).reshape(NUM_LANDMARKS, 5)
        alignment = roi_points_to_image(
            values[NUM_POSE_LANDMARKS : NUM_POSE_LANDMARKS + 2, :2], roi, LANDMARK_INPUT_SIZE
        )
        return PersonLandmarks(
            landmarks=decode_landmarks(raw, heatmap, roi), presence=presence, alignment=alignment
        )
