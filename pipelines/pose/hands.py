"""Hand landmarks for the people BlazePose found, by the hand models of the mediapipe wheel.

MediaPipe's holistic graph finds a person's hands without a palm detector: the pose's wrist,
pinky and index landmarks give a region around each hand (`HandDetectionsFromPoseToRects`,
`hand_landmarks_from_pose_to_recrop_roi.pbtxt`), a small re-crop model (`hand_recrop.tflite`)
centres and sizes that region on the hand (`hand_recrop_by_roi_cpu.pbtxt`), and the hand
landmark model (`hand_landmark_full.tflite`) reads the 21 landmarks there
(`hand_landmark_cpu.pbtxt`). Here the same steps run under LiteRT for every visible wrist of
every person, with the rotated crop and back-projection of `pipelines.pose.person_detection`.

Which hand is whose: every hand found is matched to the (person, side) whose hand points it
lies nearest to: its wrist, pinky knuckle and index knuckle against the pose's COCO wrist and
BlazePose's pinky and index points of that side, as a mean distance in units of the hand's
size. Pairs are taken greedily, nearest first, each hand and each (person, side) at most once,
and a hand overlapping one already taken (the same hand found from two wrists) is dropped;
a pair further apart than `max_distance` is no match. So a left-wrist region that caught the
other hand, or a neighbour's, gives that hand to its owner or to nobody. The hand model's own
handedness label is not used: it assumes a mirrored selfie image, and it can take a palm for
the back of the other hand, while the pose knows which arm ends where. (On the evalset its
label, flipped for unmirrored photos, agreed with this rule on 26 of 28 hands.)

Each person's hands become extras `left_hand_0` … `left_hand_20` and `right_hand_0` …
`right_hand_20` (subject's left and right, MediaPipe's landmark order), in pixels of the image,
each scored by the hand model's presence confidence, or 0 where it lies outside the frame.
Measured by `python -m tests.test_hands`: 28 hands on the evalset, 24 of them on the 57
wrists annotated as visible of the people found, for about 0.05 s per image on two CPU cores;
the legacy hand graph (palm detector) on the whole image found 9 in the same time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from PIL import Image

from pipelines.pose.landmarks import crop_roi, roi_points_to_image
from pipelines.pose.person_detection import OUT_OF_FRAME_MARGIN, FloatArray, Roi, box_iou_xyxy
from pipelines.pose.wheel_models import WheelModel
from pipelines.records import COCO17_INDEX, Pose

# MediaPipe's hand landmark order.
HAND_LANDMARK_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc",
    "thumb_mcp",
    "thumb_ip",
    "thumb_tip",
    "index_mcp",
    "index_pip",
    "index_dip",
    "index_tip",
    "middle_mcp",
    "middle_pip",
    "middle_dip",
    "middle_tip",
    "ring_mcp",
    "ring_pip",
    "ring_dip",
    "ring_tip",
    "pinky_mcp",
    "pinky_pip",
    "pinky_dip",
    "pinky_tip",
)
NUM_HAND_LANDMARKS = len(HAND_LANDMARK_NAMES)
SIDES: tuple[str, ...] = ("left", "right")

# The hand landmark model (hand_landmark_cpu.pbtxt, 0.10.x): a 224² crop in [0, 1]; a hand is
# there when its presence score reaches 0.5.
HAND_INPUT_SIZE = 224
MIN_HAND_PRESENCE = 0.5
# The region from the pose (hand_landmarks_from_pose_to_recrop_roi.pbtxt): enlarged 2.7 times
# and moved a tenth of its side towards the fingers, for the re-crop model to find the hand in.
POSE_ROI_SCALE = 2.7
POSE_ROI_SHIFT = -0.1
# The re-crop model (hand_recrop_by_roi_cpu.pbtxt): a 256² crop in [0, 1] gives a centre and a
# scale point; the new region is turned so that the vector between them points down (-90°),
# then moved a tenth of its side towards the fingers.
RECROP_INPUT_SIZE = 256
RECROP_TARGET_ANGLE = -math.pi / 2
RECROP_SHIFT = -0.1
# The holistic graph looks for a hand where the pose's wrist visibility exceeds 0.1.
MIN_WRIST_SCORE = 0.1
# Pairs of (hand landmark, pose point) compared when matching a hand to a person's side.
MATCH_POINTS: tuple[tuple[int, str], ...] = ((0, "wrist"), (17, "pinky"), (5, "index"))
MAX_MATCH_DISTANCE = 0.5
# Two hands whose landmark boxes overlap more than this are one hand.
SAME_HAND_IOU = 0.5


# A pose's points of one hand by name (wrist, pinky, index, thumb): (x, y, score) in pixels.
HandPoints = dict[str, tuple[float, float, float]]


def normalize_radians(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def transform_roi(roi: Roi, scale: float = 1.0, shift_y: float = 0.0) -> Roi:
    """MediaPipe's RectTransformationCalculator on a square region: moved `shift_y` × its side
    along the crop's vertical axis (negative is up in the crop), then scaled."""
    dx = -roi.side * shift_y * math.sin(roi.rotation)
    dy = roi.side * shift_y * math.cos(roi.rotation)
    return Roi(cx=roi.cx + dx, cy=roi.cy + dy, side=roi.side * scale, rotation=roi.rotation)


def hand_roi_from_pose(
    wrist: npt.ArrayLike,
    pinky: npt.ArrayLike,
    index: npt.ArrayLike,
    scale: float = POSE_ROI_SCALE,
    shift_y: float = POSE_ROI_SHIFT,
) -> Roi | None:
    """The region around a hand from the pose's wrist, pinky and index points (pixels), turned
    so that the fingers point up in the crop; None when the points coincide.

    As MediaPipe's HandDetectionsFromPoseToRectsCalculator: the middle finger is estimated at
    (2 × index + pinky) / 3; the square is centred there, its side is twice the distance from
    the wrist, and it is then moved and enlarged as for the re-crop model.
    """
    w = np.asarray(wrist, dtype=np.float64)[:2]
    middle = (2 * np.asarray(index, dtype=np.float64)[:2] + np.asarray(pinky)[:2]) / 3
    dx, dy = float(middle[0] - w[0]), float(middle[1] - w[1])
    side = 2 * math.hypot(dx, dy)
    if side < 1.0:
        return None
    rotation = normalize_radians(math.pi / 2 - math.atan2(-dy, dx))
    roi = Roi(cx=float(middle[0]), cy=float(middle[1]), side=side, rotation=rotation)
    return transform_roi(roi, scale, shift_y)


def roi_from_alignment_points(
    centre: npt.ArrayLike, scale_point: npt.ArrayLike, target_angle: float
) -> Roi:
    """MediaPipe's AlignmentPointsRectsCalculator: a square centred on `centre`, side twice
    the distance to `scale_point`, turned so that the vector between them lies at
    `target_angle` in the crop."""
    c = np.asarray(centre, dtype=np.float64)
    s = np.asarray(scale_point, dtype=np.float64)
    dx, dy = float(s[0] - c[0]), float(s[1] - c[1])
    rotation = normalize_radians(target_angle - math.atan2(-dy, dx))
    return Roi(cx=float(c[0]), cy=float(c[1]), side=2 * math.hypot(dx, dy), rotation=rotation)


def pose_hand_points(pose: Pose, side: str) -> HandPoints | None:
    """(x, y, score) of the pose's wrist, pinky, index and thumb on `side`, or None when the
    pose has no BlazePose hand points there."""
    extras = {name: (x, y, s) for name, x, y, s in pose.extras}
    names = {"pinky": f"{side}_pinky", "index": f"{side}_index", "thumb": f"{side}_thumb"}
    if any(name not in extras for name in names.values()):
        return None
    points = {key: extras[name] for key, name in names.items()}
    points["wrist"] = pose.keypoints[COCO17_INDEX[f"{side}_wrist"]]
    return points


@dataclass(frozen=True, eq=False)
class Hand:
    """21 hand landmarks `(21, 2)` in pixels of the image, in MediaPipe's order.

    `presence` is the model's confidence that a hand is in its crop; `handedness` is its raw
    handedness score: above 0.5 MediaPipe labels the hand "Left", meaning the subject's left
    in a mirrored selfie, so the subject's right hand in an unmirrored photo.
    """

    landmarks: FloatArray
    presence: float
    handedness: float

    def box(self) -> tuple[float, float, float, float]:
        x0, y0 = self.landmarks.min(axis=0)
        x1, y1 = self.landmarks.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    def size(self) -> float:
        """The diagonal of the box around the landmarks (at least a pixel)."""
        x0, y0, x1, y1 = self.box()
        return max(math.hypot(x1 - x0, y1 - y0), 1.0)


def decode_hand_landmarks(raw: npt.ArrayLike, roi: Roi, size: int = HAND_INPUT_SIZE) -> FloatArray:
    """The landmark tensor (21 × (x, y, z), x and y in pixels of the model input read from
    `roi`) → `(21, 2)` pixels of the image."""
    values = np.asarray(raw, dtype=np.float64).reshape(NUM_HAND_LANDMARKS, 3)
    return roi_points_to_image(values[:, :2], roi, size)


class HandRecropModel:
    """The holistic graph's re-crop model: a better hand region inside a rough one."""

    def __init__(self) -> None:
        self._model = WheelModel("holistic_landmark/hand_recrop.tflite")

    def raw_outputs(self, tensor: FloatArray) -> FloatArray:
        """(x, y) of the centre and the scale point, in pixels of the 256² input, `(2, 2)`."""
        return self._model(tensor)["output_crop"].reshape(2, 2)

    def run(self, rgb: npt.NDArray[np.uint8], roi: Roi) -> Roi:
        points = roi_points_to_image(
            self.raw_outputs(crop_roi(rgb, roi, RECROP_INPUT_SIZE)), roi, RECROP_INPUT_SIZE
        )
        found = roi_from_alignment_points(points[0], points[1], RECROP_TARGET_ANGLE)
        return transform_roi(found, 1.0, RECROP_SHIFT)


class HandLandmarkModel:
    """MediaPipe's hand landmark model (`full` or `lite`) on a hand region."""

    def __init__(self, variant: str = "full") -> None:
        self.variant = variant
        self._model = WheelModel(f"hand_landmark/hand_landmark_{variant}.tflite")

    def raw_outputs(self, tensor: FloatArray) -> tuple[FloatArray, float, float]:
        """Landmark tensor `(63,)`, hand presence and handedness score for one input."""
        out = self._model(tensor)
        return (
            out["Identity"].ravel(),
            float(out["Identity_1"].ravel()[0]),
            float(out["Identity_2"].ravel()[0]),
        )

    def run(
        self, rgb: npt.NDArray[np.uint8], roi: Roi, min_presence: float = MIN_HAND_PRESENCE
    ) -> Hand | None:
        """The hand in `roi` of the `(H, W, 3)` image, or None when the model sees none."""
        raw, presence, handedness = self.raw_outputs(crop_roi(rgb, roi, HAND_INPUT_SIZE))
        if presence < min_presence:
            return None
        return Hand(decode_hand_landmarks(raw, roi), presence, handedness)


def match_distance(hand: Hand, points: HandPoints) -> float:
    """Mean distance between the hand's wrist, pinky and index knuckles and the pose's points
    of the same name, in units of the hand's size."""
    distances = [
        math.hypot(hand.landmarks[i, 0] - points[name][0], hand.landmarks[i, 1] - points[name][1])
        for i, name in MATCH_POINTS
    ]
    return float(np.mean(distances)) / hand.size()


@dataclass(frozen=True)
class Arm:
    """Where a hand may be: the `side` ("left" or "right") of the person `person` (an index
    into the poses), with that side's hand points of the pose."""

    person: int
    side: str
    points: HandPoints


@dataclass(frozen=True, eq=False)
class PersonHand:
    """A hand given to one side of one person."""

    person: int
    side: str
    hand: Hand


def arms(poses: Sequence[Pose], min_wrist_score: float = MIN_WRIST_SCORE) -> list[Arm]:
    """Every side of every pose whose wrist scores at least `min_wrist_score` and that has
    BlazePose's hand points."""
    found = []
    for p, pose in enumerate(poses):
        for side in SIDES:
            points = pose_hand_points(pose, side)
            if points is not None and points["wrist"][2] >= min_wrist_score:
                found.append(Arm(p, side, points))
    return found


def assign_hands(
    hands: Sequence[Hand],
    arms: Sequence[Arm],
    max_distance: float = MAX_MATCH_DISTANCE,
    same_hand_iou: float = SAME_HAND_IOU,
) -> list[PersonHand]:
    """Hands given to arms: nearest pairs (`match_distance`) first, each hand and each arm at
    most once, a hand overlapping one already given by more than `same_hand_iou` left out,
    pairs further apart than `max_distance` never made."""
    pairs = sorted(
        (match_distance(hand, arm.points), h, a)
        for h, hand in enumerate(hands)
        for a, arm in enumerate(arms)
    )
    taken_hands: list[int] = []
    taken_arms: set[int] = set()
    given = []
    for distance, h, a in pairs:
        if distance > max_distance:
            break
        if h in taken_hands or a in taken_arms:
            continue
        if any(box_iou_xyxy(hands[h].box(), hands[t].box()) > same_hand_iou for t in taken_hands):
            continue
        taken_hands.append(h)
        taken_arms.add(a)
        given.append(PersonHand(arms[a].person, arms[a].side, hands[h]))
    return given


def hand_extras(
    side: str, hand: Hand, width: int, height: int
) -> tuple[tuple[str, float, float, float], ...]:
    """`{side}_hand_0` … `{side}_hand_20`: each landmark in pixels, scored by the hand's
    presence, or 0 where it lies outside the frame."""
    margin_x, margin_y = OUT_OF_FRAME_MARGIN * width, OUT_OF_FRAME_MARGIN * height
    out = []
    for i, (x, y) in enumerate(hand.landmarks):
        inside = -margin_x <= x <= width + margin_x and -margin_y <= y <= height + margin_y
        out.append((f"{side}_hand_{i}", float(x), float(y), hand.presence if inside else 0.0))
    return tuple(out)


def add_hands(
    poses: Sequence[Pose], hands: Sequence[PersonHand], width: int, height: int
) -> list[Pose]:
    """`poses` with each given hand appended to its person's extras, left hand first."""
    out = []
    for p, pose in enumerate(poses):
        own = {h.side: h.hand for h in hands if h.person == p}
        extras = tuple(
            extra
            for side in SIDES
            if side in own
            for extra in hand_extras(side, own[side], width, height)
        )
        out.append(replace(pose, extras=pose.extras + extras) if extras else pose)
    return out


class HandFinder:
    """Finds each person's hands (see the module docstring for the method).

    A hand is looked for at every wrist scoring at least `min_wrist_score`; it is kept when
    the landmark model is at least `min_presence` sure, and given to the arm it matches
    within `max_distance`. `recrop` runs the holistic graph's re-crop model between the
    pose's region and the landmark model (without it the landmark model reads the pose's
    region itself, which is sized for the re-crop model and finds fewer hands).
    """

    def __init__(
        self,
        variant: str = "full",
        recrop: bool = True,
        min_wrist_score: float = MIN_WRIST_SCORE,
        min_presence: float = MIN_HAND_PRESENCE,
        max_distance: float = MAX_MATCH_DISTANCE,
    ) -> None:
        self.variant = variant
        self.recrop = recrop
        self.min_wrist_score = min_wrist_score
        self.min_presence = min_presence
        self.max_distance = max_distance
        self.landmark_model = HandLandmarkModel(variant)
        self.recrop_model = HandRecropModel()

    @property
    def tag(self) -> str:
        """The options that change the output, for the detector's model id."""
        return (
            f"hand_landmark_{self.variant}{'+recrop' if self.recrop else ''}"
            f"(wrist={self.min_wrist_score:g},presence={self.min_presence:g},"
            f"match={self.max_distance:g})"
        )

    def hand_region(self, rgb: npt.NDArray[np.uint8], points: HandPoints) -> Roi | None:
        """Where the landmark model looks for the hand of one arm, or None when the pose's
        hand points coincide."""
        roi = hand_roi_from_pose(points["wrist"], points["pinky"], points["index"])
        if roi is None or not self.recrop:
            return roi
        return self.recrop_model.run(rgb, roi)

    def hands(self, image: Image.Image, poses: Sequence[Pose]) -> list[PersonHand]:
        """The hands of the people in `poses`, each given to a person and a side."""
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        looked_at = arms(poses, self.min_wrist_score)
        found = []
        for arm in looked_at:
            roi = self.hand_region(rgb, arm.points)
            hand = None if roi is None else self.landmark_model.run(rgb, roi, self.min_presence)
            if hand is not None:
                found.append(hand)
        return assign_hands(found, looked_at, self.max_distance)

    def find(self, image: Image.Image, poses: Sequence[Pose]) -> list[Pose]:
        """`poses` with their hands added as extras (`left_hand_0` … `right_hand_20`)."""
        return add_hands(poses, self.hands(image, poses), image.width, image.height)
