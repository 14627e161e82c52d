"""People proposed by their faces: the wheel's full-range face detector, and the body below a face.

BlazePose's person detector keys on faces too, but in a crowd it proposes a region for only
some of the small people whose faces are plain to see (`benchmarks.crowd_eval`). The mediapipe
wheel carries a face detector trained for distant faces, BlazeFace full range
(`face_detection_full_range_sparse.tflite`: a 192-pixel input, one anchor per 4-pixel cell,
boxes and 6 keypoints decoded like the pose detector's, `face_detection_full_range.pbtxt`).
It reads the whole photo and the same grids of crops as the person detector, and each face
it finds proposes the region where that person's body would be: the mid hip a few face
widths below the face, along the direction the face is upright in (its eyes' line), and the
full-body circle BlazePose reads a person from around it. The landmark model then reads that
region, and the people search keeps the reading only if its nose is on that face (not a
neighbour's body that the region also holds) and the person passes the human-evidence check
every photo person passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from pipelines.pose.person_detection import (
    Roi,
    alignment_roi,
    decode_candidates,
    letterbox,
    non_max_suppression,
    ssd_anchor_centres,
)
from pipelines.pose.wheel_models import WheelModel

FloatArray = npt.NDArray[np.float64]

# The full-range graph's options (face_detection_full_range_common.pbtxt, 0.10.x).
FULL_RANGE_MODEL = "face_detection/face_detection_full_range_sparse.tflite"
FULL_RANGE_INPUT = 192
FULL_RANGE_STRIDES = (4,)
FULL_RANGE_ANCHORS_PER_CELL = 1
FACE_NMS_IOU = 0.3
# MediaPipe's default `min_detection_confidence` for its face detection solution.
MIN_FACE_SCORE = 0.5
# Keypoint order of BlazeFace: the person's right eye, left eye, nose tip, mouth centre,
# right ear tragion, left ear tragion.
RIGHT_EYE, LEFT_EYE = 0, 1
# Where the body is, in face widths (BlazeFace's box is about as wide as the face), from
# common figure-drawing proportions rather than fitted to any image: an adult stands about
# 7.5 to 8 heads tall and a head is about 1.2 face widths high, so the mid hip is about
# 4 face widths below the face's centre and the body reaches about 4.75 face widths from
# the mid hip to past the top of the head (BlazePose's full-body circle, which its landmark
# region enlarges by 1.25). A person sitting or partly hidden is read from the same region:
# the landmark model is trained on regions that are only roughly right.
HIP_BELOW_FACE = 4.0
BODY_RADIUS = 4.75


@dataclass(frozen=True)
class Face:
    """One face, in pixels of the image: its box (x0, y0, x1, y1), the detector's 6 keypoints
    `(6, 2)` and its score."""

    box: tuple[float, float, float, float]
    keypoints: FloatArray
    score: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def centre(self) -> FloatArray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])

    def down(self) -> FloatArray:
        """The unit vector from the face towards its chin and body: across its eyes' line
        (from the person's right eye to their left), turned a quarter clockwise on screen."""
        eyes = self.keypoints[LEFT_EYE] - self.keypoints[RIGHT_EYE]
        angle = math.atan2(float(eyes[1]), float(eyes[0]))
        return np.array([-math.sin(angle), math.cos(angle)])

    def person_region(self) -> Roi:
        """The region BlazePose would read this face's person from (see the module's text)."""
        down = self.down()
        hip = self.centre + HIP_BELOW_FACE * self.width * down
        above_head = hip - BODY_RADIUS * self.width * down
        return alignment_roi(
            (float(hip[0]), float(hip[1])), (float(above_head[0]), float(above_head[1]))
        )

    def is_at(self, point: npt.ArrayLike) -> bool:
        """Whether `point` (x, y) lies within one face width of the face's centre."""
        return float(np.hypot(*(np.asarray(point, dtype=np.float64) - self.centre))) <= self.width


class FaceDetector:
    """Every face the full-range BlazeFace finds in an image and its crops (offline)."""

    def __init__(self, min_score: float = MIN_FACE_SCORE, nms_iou: float = FACE_NMS_IOU) -> None:
        self.min_score = min_score
        self.nms_iou = nms_iou
        self._anchors = ssd_anchor_centres(
            FULL_RANGE_INPUT, FULL_RANGE_STRIDES, FULL_RANGE_ANCHORS_PER_CELL
        )
        self._model = WheelModel(FULL_RANGE_MODEL)

    def raw_outputs(self, tensor: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Regressors `(2304, 16)` and raw scores `(2304,)` for one model input."""
        outputs = self._model(tensor)
        count = self._anchors.shape[0]
        return outputs["Identity"].reshape(count, -1), outputs["Identity_1"].reshape(count)

    def detect(self, image: Image.Image, regions: list[tuple[int, int, int, int]]) -> list[Face]:
        """The faces in `regions` of `image` (x0, y0, x1, y1 each; the whole image is one),
        after one weighted NMS over all of them, best first."""
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        boxes, scores, keypoints = [], [], []
        for region in regions:
            tensor, transform = letterbox(rgb, region, FULL_RANGE_INPUT)
            found = decode_candidates(
                *self.raw_outputs(tensor), self._anchors, transform, self.min_score
            )
            boxes.append(found[0])
            scores.append(found[1])
            keypoints.append(found[2])
        if not boxes or not sum(len(s) for s in scores):
            return []
        kept = non_max_suppression(
            np.concatenate(boxes), np.concatenate(scores), np.concatenate(keypoints), self.nms_iou
        )
        return [
            Face((float(b[0]), float(b[1]), float(b[2]), float(b[3])), k, float(s))
            for b, s, k in zip(*kept, strict=True)
        ]
