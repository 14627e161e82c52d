"""BlazePose's two models run directly, so that every person in an image gets a pose.

MediaPipe's pose graph runs a person detector (`pose_detection.tflite`), keeps its single
best box and runs the landmark model (`pose_landmark_full.tflite`) on that box's region.
Here both models of the mediapipe 0.10.21 wheel run under LiteRT (`ai-edge-litert`), with
the graph's pre- and post-processing rebuilt from its .pbtxt options: SSD anchors, sigmoid
scores, letterbox removal and weighted non-maximum suppression for the detector
(`pose_detection_cpu.pbtxt`); the region of interest from the detector's alignment points
(`pose_detection_to_roi.pbtxt`); the rotated crop, heatmap refinement and projection back to
the image for the landmark model (`pose_landmark_by_roi_cpu.pbtxt`). Every step is a plain
numpy function, testable without the models. The heavy imports (cv2 from mediapipe's
dependencies, ai_edge_litert) happen on first use. The landmark model is
`pipelines.pose.landmarks`; `WheelModel` also serves it and the hand models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from pipelines.pose.wheel_models import WheelModel

FloatArray = npt.NDArray[np.float64]

# The options of MediaPipe's pose detection graph (pose_detection_cpu.pbtxt, 0.10.x).
INPUT_SIZE = 224
ANCHOR_STRIDES: tuple[int, ...] = (8, 16, 32, 32, 32)
ANCHORS_PER_LAYER = 2  # aspect ratio 1.0 plus the interpolated scale, both of fixed size 1
ANCHOR_OFFSET = 0.5
NUM_BOXES = 2254
NUM_KEYPOINTS = 4
SCORE_CLIP = 100.0
# The landmark model's region of interest: the full-body circle (centre keypoint 0, radius to
# keypoint 1) as a square, enlarged by the margin BlazePose was trained with.
ROI_SCALE = 1.25
# Landmarks this far outside the frame (as a fraction of the side) are a model's guesses about
# unseen parts: their positions are kept, but they score 0 so they never count as seen.
OUT_OF_FRAME_MARGIN = 0.02


def ssd_anchor_centres(
    input_size: int = INPUT_SIZE,
    strides: tuple[int, ...] = ANCHOR_STRIDES,
    anchors_per_layer: int = ANCHORS_PER_LAYER,
    offset: float = ANCHOR_OFFSET,
) -> FloatArray:
    """`(N, 2)` anchor centres (x, y) normalised to the model input, in the model's order.

    Follows MediaPipe's SsdAnchorsCalculator with `fixed_anchor_size`: consecutive layers of
    the same stride share one feature map, and each location of it holds
    `anchors_per_layer` anchors per layer, all of size 1 (so only centres matter).
    """
    centres: list[FloatArray] = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = layer
        while same < len(strides) and strides[same] == stride:
            same += 1
        per_location = anchors_per_layer * (same - layer)
        side = math.ceil(input_size / stride)
        grid = (np.arange(side, dtype=np.float64) + offset) / side
        ys, xs = np.meshgrid(grid, grid, indexing="ij")  # row-major: y outer, x inner
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cells, per_location, axis=0))
        layer = same
    return np.concatenate(centres, axis=0)


@dataclass(frozen=True)
class Letterbox:
    """How a region of an image was fitted into the square model input: scaled by `scale`,
    then shifted by the padding that centres it; the region starts at `origin` in the image."""

    scale: float  # input pixels per image pixel
    pad_x: float  # input pixels left of the region
    pad_y: float
    origin_x: float = 0.0
    origin_y: float = 0.0
    input_size: int = INPUT_SIZE

    def to_image(self, points: npt.ArrayLike) -> FloatArray:
        """Points `(..., 2)` normalised to the model input → pixels of the whole image."""
        out = np.array(points, dtype=np.float64, copy=True)
        out[..., 0] = (out[..., 0] * self.input_size - self.pad_x) / self.scale + self.origin_x
        out[..., 1] = (out[..., 1] * self.input_size - self.pad_y) / self.scale + self.origin_y
        return out


def letterbox(
    rgb: npt.NDArray[np.uint8],
    region: tuple[int, int, int, int] | None = None,
    input_size: int = INPUT_SIZE,
) -> tuple[FloatArray, Letterbox]:
    """The model input `(1, S, S, 3)` in [-1, 1] for `region` (x0, y0, x1, y1; default the
    whole `(H, W, 3)` image), and the transform back to image pixels.

    Like MediaPipe's ImageToTensorCalculator with `keep_aspect_ratio` and `BORDER_ZERO`: the
    region keeps its aspect ratio, centred on a black square, resampled bilinearly without
    smoothing first. The detector was trained on such inputs: a smoothed (antialiased)
    downscale halves its scores on some people.
    """
    import cv2

    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = region if region is not None else (0, 0, width, height)
    scale = input_size / max(x1 - x0, y1 - y0)
    transform = Letterbox(
        scale=scale,
        pad_x=(input_size - (x1 - x0) * scale) / 2,
        pad_y=(input_size - (y1 - y0) * scale) / 2,
        origin_x=float(x0),
        origin_y=float(y0),
        input_size=input_size,
    )
    # Image → input in OpenCV's convention, where pixel centres sit on integers.
    shift_x = transform.pad_x - x0 * scale + scale / 2 - 0.5
    shift_y = transform.pad_y - y0 * scale + scale / 2 - 0.5
    matrix = np.array([[scale, 0.0, shift_x], [0.0, scale, shift_y]])
    resized = cv2.warpAffine(
        rgb,
        matrix,
        (input_size, input_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    return np.asarray(resized, dtype=np.float64)[None] / 127.5 - 1.0, transform


def sigmoid_scores(raw: npt.ArrayLike, clip: float = SCORE_CLIP) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(raw, dtype=np.float64), -clip, clip)))


def decode_boxes(
    raw: npt.ArrayLike, anchors: FloatArray, input_size: int = INPUT_SIZE
) -> tuple[FloatArray, FloatArray]:
    """Regressors `(N, 4 + 2K)` → boxes `(N, 4)` (x0, y0, x1, y1) and keypoints `(N, K, 2)`.

    Both normalised to the model input. The regressors are offsets in input pixels from the
    anchor centre: box centre x, y, width, height, then (x, y) of the K keypoints (4 for the
    pose detector's alignment points, 6 for a face detector's eyes, nose, mouth and ears).
    """
    values = np.asarray(raw, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != anchors.shape[0] or values.shape[1] % 2:
        raise ValueError(f"regressors {values.shape} for {anchors.shape[0]} anchors")
    scaled = values / input_size
    cx = scaled[:, 0] + anchors[:, 0]
    cy = scaled[:, 1] + anchors[:, 1]
    w, h = scaled[:, 2], scaled[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    keypoints = scaled[:, 4:].reshape(values.shape[0], (values.shape[1] - 4) // 2, 2)
    keypoints = keypoints + anchors[:, None, :]
    return boxes, keypoints


def box_iou(box: FloatArray, boxes: FloatArray) -> FloatArray:
    """IoU of one (x0, y0, x1, y1) box with each of `boxes` `(N, 4)`."""
    ix0 = np.maximum(box[0], boxes[:, 0])
    iy0 = np.maximum(box[1], boxes[:, 1])
    ix1 = np.minimum(box[2], boxes[:, 2])
    iy1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(
        boxes[:, 3] - boxes[:, 1], 0, None
    )
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def box_iou_xyxy(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two (x0, y0, x1, y1) boxes."""
    return float(box_iou(np.asarray(a, dtype=np.float64), np.asarray([b], dtype=np.float64))[0])


def non_max_suppression(
    boxes: FloatArray,
    scores: FloatArray,
    keypoints: FloatArray,
    iou_threshold: float,
    weighted: bool = True,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Greedy NMS, best score first; returns the kept (boxes, scores, keypoints).

    Weighted (MediaPipe's WEIGHTED algorithm): each kept detection's box and keypoints are
    the score-weighted mean of every box overlapping it by more than `iou_threshold`, which
    steadies the alignment keypoints; its score stays the best one's.
    """
    order = np.argsort(-scores, kind="stable")
    kept_boxes: list[FloatArray] = []
    kept_scores: list[float] = []
    kept_keypoints: list[FloatArray] = []
    while order.size:
        best = order[0]
        overlap = box_iou(boxes[best], boxes[order])
        group = order[overlap > iou_threshold]
        group = group if group.size else order[:1]
        if weighted:
            weights = scores[group] / scores[group].sum()
            kept_boxes.append((boxes[group] * weights[:, None]).sum(axis=0))
            kept_keypoints.append((keypoints[group] * weights[:, None, None]).sum(axis=0))
        else:
            kept_boxes.append(boxes[best])
            kept_keypoints.append(keypoints[best])
        kept_scores.append(float(scores[best]))
        order = order[(overlap <= iou_threshold) & (order != best)]
    if not kept_boxes:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, *keypoints.shape[1:]))
    return np.stack(kept_boxes), np.asarray(kept_scores), np.stack(kept_keypoints)


@dataclass(frozen=True)
class Roi:
    """A square region of interest around one person, in pixels of the image."""

    cx: float
    cy: float
    side: float
    rotation: float  # radians the person leans from upright (0 = standing); the crop undoes it

    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the axis-aligned square, possibly reaching past the image."""
        half = self.side / 2
        return self.cx - half, self.cy - half, self.cx + half, self.cy + half


def box_roi(box: tuple[float, float, float, float], scale: float = ROI_SCALE) -> Roi:
    """The upright square around a box (x, y, w, h): its longer side (at least a pixel)
    × `scale`, centred on the box."""
    x, y, w, h = box
    return Roi(cx=x + w / 2, cy=y + h / 2, side=max(w, h, 1.0) * scale, rotation=0.0)


def alignment_roi(
    centre: tuple[float, float], scale_point: tuple[float, float], scale: float = ROI_SCALE
) -> Roi:
    """The square region BlazePose reads a person from two alignment points: the mid hip and
    the point whose distance is the full-body circle's radius and whose direction is the
    body's (AlignmentPointsRectsCalculator, then the 1.25 enlargement)."""
    (x0, y0), (x1, y1) = centre, scale_point
    radius = math.hypot(x1 - x0, y1 - y0)
    # The vector from hip to the scale point points up along a standing body (y is down).
    rotation = math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0)
    rotation = (rotation + math.pi) % (2 * math.pi) - math.pi
    return Roi(cx=x0, cy=y0, side=2 * radius * scale, rotation=rotation)


@dataclass(frozen=True)
class PersonDetection:
    """One person found by the detector, in pixels of the image it ran on.

    `box` is the detector's box (x0, y0, x1, y1) (BlazePose's detector boxes the face);
    `keypoints` are its 4 alignment points: mid-hip centre, the point giving the full-body
    circle's radius and rotation, mid-shoulder centre, and the upper-body equivalent.
    """

    box: tuple[float, float, float, float]
    keypoints: tuple[tuple[float, float], ...]
    score: float

    def roi(self, scale: float = ROI_SCALE) -> Roi:
        """BlazePose's region of interest: centre at the mid hip, side 2 × radius × `scale`."""
        return alignment_roi(self.keypoints[0], self.keypoints[1], scale)

    def prominence(self, scale: float = ROI_SCALE) -> float:
        """Region area × score: large, confident people first."""
        return self.roi(scale).side ** 2 * self.score


class PersonDetector:
    """Every person in an image by BlazePose's detector, run with LiteRT (fully offline).

    `min_score` is the sigmoid score a candidate needs; `nms_iou` is the IoU above which two
    candidates are one person (MediaPipe uses 0.3 with weighted merging).
    """

    def __init__(
        self,
        min_score: float = 0.5,
        nms_iou: float = 0.3,
        weighted_nms: bool = True,
        max_people: int = 10,
        tiles: int = 1,
        tile_fraction: float = 0.6,
    ) -> None:
        self.min_score = min_score
        self.tiles = tiles
        self.tile_fraction = tile_fraction
        self.nms_iou = nms_iou
        self.weighted_nms = weighted_nms
        self.max_people = max_people
        self._anchors = ssd_anchor_centres()
        self._model = WheelModel("pose_detection/pose_detection.tflite")

    def raw_outputs(self, tensor: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Regressors `(2254, 12)` and raw scores `(2254,)` for one model input."""
        outputs = self._model(tensor)
        regressors, scores = outputs["Identity"], outputs["Identity_1"]
        return regressors.reshape(NUM_BOXES, -1), scores.reshape(NUM_BOXES)

    def detect(
        self, image: Image.Image, tiles: int | None = None, fraction: float | None = None
    ) -> list[PersonDetection]:
        """People in `image`, most prominent first, in pixels of `image`.

        With `tiles` > 1 the detector also reads a `tiles` × `tiles` grid of overlapping
        crops, each `fraction` (default `tile_fraction`) of the image's width and height,
        where small people are seen at a larger scale; candidates of every region then go
        through one NMS.
        """
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        found = []
        grid = self.tiles if tiles is None else tiles
        share = self.tile_fraction if fraction is None else fraction
        for region in tile_regions(image.width, image.height, grid, share):
            tensor, transform = letterbox(rgb, region)
            regressors, raw_scores = self.raw_outputs(tensor)
            found.append(
                decode_candidates(regressors, raw_scores, self._anchors, transform, self.min_score)
            )
        return self.merge(found)

    def merge(
        self, candidates: list[tuple[FloatArray, FloatArray, FloatArray]]
    ) -> list[PersonDetection]:
        """Candidates (boxes, scores, keypoints in image pixels) of one or more regions →
        people after NMS, most prominent first."""
        boxes = np.concatenate([c[0] for c in candidates]) if candidates else np.zeros((0, 4))
        if boxes.shape[0] == 0:
            return []
        scores = np.concatenate([c[1] for c in candidates])
        keypoints = np.concatenate([c[2] for c in candidates])
        boxes, scores, keypoints = non_max_suppression(
            boxes, scores, keypoints, self.nms_iou, weighted=self.weighted_nms
        )
        people = [
            PersonDetection(
                box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                keypoints=tuple((float(x), float(y)) for x, y in k),
                score=float(s),
            )
            for b, k, s in zip(boxes, keypoints, scores, strict=True)
        ]
        people.sort(key=lambda person: person.prominence(), reverse=True)
        return people[: self.max_people]


def decode_candidates(
    regressors: FloatArray,
    raw_scores: FloatArray,
    anchors: FloatArray,
    transform: Letterbox,
    min_score: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Raw outputs of one model run → (boxes `(K, 4)`, scores `(K,)`, keypoints `(K, 4, 2)`)
    of the candidates scoring at least `min_score`, in pixels of the whole image."""
    scores = sigmoid_scores(raw_scores)
    keep = scores >= min_score
    boxes, keypoints = decode_boxes(regressors[keep], anchors[keep], transform.input_size)
    corners = transform.to_image(boxes.reshape(-1, 2, 2)).reshape(-1, 4)
    return corners, scores[keep], transform.to_image(keypoints)


def tile_regions(
    width: int, height: int, tiles: int, fraction: float
) -> list[tuple[int, int, int, int]]:
    """The whole image, then a `tiles` × `tiles` grid of crops `fraction` of its size, spread
    evenly from corner to corner (so they overlap when `fraction` > 1 / `tiles`)."""
    regions = [(0, 0, width, height)]
    if tiles <= 1:
        return regions
    tile_w, tile_h = round(width * fraction), round(height * fraction)
    for row in range(tiles):
        for col in range(tiles):
            x0 = round((width - tile_w) * col / (tiles - 1))
            y0 = round((height - tile_h) * row / (tiles - 1))
            regions.append((x0, y0, x0 + tile_w, y0 + tile_h))
    return regions
