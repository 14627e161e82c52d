"""Multi-person BlazePose: the detector's anchors, decoding, letterbox and NMS, the landmark
model's crop and back-projection, the per-person search at its seams (fake models), and the
real models on the evalset.

Run as a script for the evalset benchmark (single-person path vs. the defaults, same run):

    .venv/bin/python -m tests.test_person_detection
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pipelines.images import decode_image
from pipelines.pose.figure_geometry import head_box, prominence, same_person
from pipelines.pose.keypoints import MediaPipePoseDetector, keypoint_models
from pipelines.pose.landmarks import (
    LANDMARK_INPUT_SIZE,
    NUM_LANDMARKS,
    LandmarkModel,
    PersonLandmarks,
    crop_roi,
    decode_landmarks,
    image_points_to_roi,
    refine_from_heatmap,
    roi_points_to_image,
    roi_to_image_matrix,
)
from pipelines.pose.person_detection import (
    INPUT_SIZE,
    NUM_BOXES,
    Letterbox,
    PersonDetection,
    PersonDetector,
    Roi,
    box_iou_xyxy,
    decode_candidates,
    letterbox,
    non_max_suppression,
    sigmoid_scores,
    ssd_anchor_centres,
    tile_regions,
)
from pipelines.records import COCO17_INDEX, Pose
from tests.synthetic import (
    EVALSET_DIR,
    evalset_bytes,
    evalset_images,
    gt_pose,
    mediapipe_detections,
    requires_evalset,
)

# ---------------------------------------------------------------- SSD anchors


def test_anchors_follow_mediapipe_s_pose_detection_layout() -> None:
    anchors = ssd_anchor_centres()
    # 28² × 2 (stride 8) + 14² × 2 (stride 16) + 7² × 2 × 3 (three layers of stride 32).
    assert anchors.shape == (NUM_BOXES, 2) == (28 * 28 * 2 + 14 * 14 * 2 + 7 * 7 * 6, 2)
    np.testing.assert_allclose(anchors[0], (0.5 / 28, 0.5 / 28))
    np.testing.assert_allclose(anchors[1], anchors[0])  # two anchors per location
    np.testing.assert_allclose(anchors[2], (1.5 / 28, 0.5 / 28))  # x runs fastest
    np.testing.assert_allclose(anchors[2 * 28], (0.5 / 28, 1.5 / 28))
    np.testing.assert_allclose(anchors[1568], (0.5 / 14, 0.5 / 14))  # the stride-16 map
    np.testing.assert_allclose(anchors[1960:1966], [(0.5 / 7, 0.5 / 7)] * 6)  # stride 32 × 3
    np.testing.assert_allclose(anchors[1966], (1.5 / 7, 0.5 / 7))
    np.testing.assert_allclose(anchors[-1], (6.5 / 7, 6.5 / 7))
    assert anchors.min() > 0 and anchors.max() < 1


# ---------------------------------------------------------------- letterbox and decoding


def test_letterbox_centres_the_image_on_black_and_maps_back() -> None:
    image = Image.new("RGB", (448, 224), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 224, 224))  # left half red
    tensor, transform = letterbox(np.asarray(image))
    assert tensor.shape == (1, INPUT_SIZE, INPUT_SIZE, 3)
    assert transform.scale == pytest.approx(0.5)
    assert (transform.pad_x, transform.pad_y) == pytest.approx((0.0, 56.0))
    np.testing.assert_allclose(tensor[0, 10, 112], (-1, -1, -1))  # top padding is black
    np.testing.assert_allclose(tensor[0, 213, 112], (-1, -1, -1))
    np.testing.assert_allclose(tensor[0, 112, 50], (1, -1, -1), atol=1e-6)  # red, in [-1, 1]
    np.testing.assert_allclose(tensor[0, 112, 170], (-1, -1, 1), atol=1e-6)
    centre = transform.to_image(np.array([0.5, 0.5]))
    np.testing.assert_allclose(centre, (224, 112))
    corner = transform.to_image(np.array([0.0, 56 / 224]))
    np.testing.assert_allclose(corner, (0, 0), atol=1e-9)


def test_letterbox_of_a_region_maps_back_to_the_whole_image() -> None:
    rgb = np.zeros((300, 400, 3), dtype=np.uint8)
    rgb[100:110, 250:260] = 255  # a white square inside the region below
    tensor, transform = letterbox(rgb, region=(200, 50, 400, 250))
    assert transform.scale == pytest.approx(224 / 200)
    ys, xs = np.nonzero(tensor[0, :, :, 0] > 0.9)
    centre = transform.to_image(np.array([(xs.mean() + 0.5) / 224, (ys.mean() + 0.5) / 224]))
    np.testing.assert_allclose(centre, (255, 105), atol=0.6)


def _raw_for(
    anchors: np.ndarray,
    index: int,
    box_centre: tuple[float, float],
    size: tuple[float, float],
    keypoints: Sequence[tuple[float, float]],
) -> np.ndarray:
    """Regressors `(2254, 12)` with one anchor encoding a box and keypoints given in input
    pixels, the way the model writes them: offsets from the anchor centre, in pixels."""
    raw = np.zeros((NUM_BOXES, 12))
    ax, ay = anchors[index] * INPUT_SIZE
    raw[index, :4] = (box_centre[0] - ax, box_centre[1] - ay, size[0], size[1])
    for k, (x, y) in enumerate(keypoints):
        raw[index, 4 + 2 * k : 6 + 2 * k] = (x - ax, y - ay)
    return raw


def test_a_known_box_and_keypoints_decode_to_image_pixels_without_the_letterbox() -> None:
    anchors = ssd_anchor_centres()
    index = 2 * (28 * 14 + 10)  # stride 8, column 10, row 14: centre (84, 116) input px
    np.testing.assert_allclose(anchors[index] * INPUT_SIZE, (84, 116))
    keypoints = [(86.0, 146.0), (86.0, 90.0), (88.0, 120.0), (88.0, 100.0)]
    raw = _raw_for(anchors, index, (90, 112), (40, 60), keypoints)
    scores = np.full(NUM_BOXES, -10.0)
    scores[index] = 3.0
    # A 448 × 224 image: scaled by 0.5, 56 px of padding above and below.
    transform = Letterbox(scale=0.5, pad_x=0.0, pad_y=56.0)
    boxes, kept, points = decode_candidates(raw, scores, anchors, transform, min_score=0.5)
    assert boxes.shape == (1, 4) and points.shape == (1, 4, 2)
    # Input box [70, 82, 110, 142] → image (x / 0.5, (y − 56) / 0.5).
    np.testing.assert_allclose(boxes[0], (140, 52, 220, 172))
    np.testing.assert_allclose(points[0, 0], (172, 180))
    np.testing.assert_allclose(points[0, 1], (172, 68))
    assert kept[0] == pytest.approx(1 / (1 + math.exp(-3.0)))


def test_scores_are_clipped_sigmoids_and_low_ones_are_dropped() -> None:
    np.testing.assert_allclose(sigmoid_scores([0.0, 1e6, -1e6]), (0.5, 1.0, 0.0), atol=1e-40)
    assert np.all(np.isfinite(sigmoid_scores([1e30, -1e30])))
    anchors = ssd_anchor_centres()
    empty = decode_candidates(
        np.zeros((NUM_BOXES, 12)),
        np.full(NUM_BOXES, -5.0),
        anchors,
        Letterbox(scale=1.0, pad_x=0.0, pad_y=0.0),
        min_score=0.5,
    )
    assert empty[0].shape == (0, 4) and empty[1].shape == (0,)


def test_tiles_cover_the_image_from_corner_to_corner() -> None:
    assert tile_regions(100, 50, 1, 0.6) == [(0, 0, 100, 50)]
    assert tile_regions(100, 50, 2, 0.6) == [
        (0, 0, 100, 50),
        (0, 0, 60, 30),
        (40, 0, 100, 30),
        (0, 20, 60, 50),
        (40, 20, 100, 50),
    ]


# ---------------------------------------------------------------- NMS


def _three_boxes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], dtype=np.float64)
    scores = np.array([0.9, 0.6, 0.8])
    keypoints = np.stack([np.full((4, 2), v) for v in (0.0, 5.0, 100.0)])
    return boxes, scores, keypoints


def test_weighted_nms_merges_overlapping_boxes_by_score() -> None:
    boxes, scores, keypoints = _three_boxes()
    assert box_iou_xyxy(tuple(boxes[0]), tuple(boxes[1])) == pytest.approx(90 / 110)
    kept_boxes, kept_scores, kept_points = non_max_suppression(boxes, scores, keypoints, 0.3)
    np.testing.assert_allclose(kept_scores, (0.9, 0.8))  # the best score of each group
    np.testing.assert_allclose(kept_boxes[0], (0.4, 0, 10.4, 10))  # (0.9 A + 0.6 B) / 1.5
    np.testing.assert_allclose(kept_points[0], np.full((4, 2), 2.0))
    np.testing.assert_allclose(kept_boxes[1], boxes[2])
    np.testing.assert_allclose(kept_points[1], keypoints[2])


def test_plain_nms_keeps_the_best_box_itself() -> None:
    boxes, scores, keypoints = _three_boxes()
    kept_boxes, kept_scores, _ = non_max_suppression(boxes, scores, keypoints, 0.3, weighted=False)
    np.testing.assert_allclose(kept_boxes, boxes[[0, 2]])
    np.testing.assert_allclose(kept_scores, (0.9, 0.8))


def test_nms_keeps_boxes_overlapping_less_than_the_threshold() -> None:
    boxes, scores, keypoints = _three_boxes()
    _, kept_scores, _ = non_max_suppression(boxes, scores, keypoints, 0.9)
    assert len(kept_scores) == 3
    empty = non_max_suppression(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4, 2)), 0.3)
    assert [a.shape[0] for a in empty] == [0, 0, 0]


def test_detector_merges_candidates_of_all_tiles_and_orders_by_prominence() -> None:
    detector = PersonDetector(min_score=0.5)
    small = (np.array([[0.0, 0, 10, 10]]), np.array([0.99]), np.zeros((1, 4, 2)))
    keypoints = np.array([[[50.0, 50.0], [50.0, 10.0], [0, 0], [0, 0]]])
    large = (np.array([[40.0, 0, 60, 20]]), np.array([0.7]), keypoints)
    again = (np.array([[41.0, 0, 61, 20]]), np.array([0.6]), keypoints)  # same person, a tile
    people = detector.merge([small, large, again])
    assert len(people) == 2
    assert people[0].score == pytest.approx(0.7)  # a larger region first, despite its score
    assert people[0].roi().side == pytest.approx(2 * 40 * 1.25)


# ---------------------------------------------------------------- regions and crops


def _detection(hip: tuple[float, float], scale_point: tuple[float, float]) -> PersonDetection:
    return PersonDetection(box=(0, 0, 1, 1), keypoints=(hip, scale_point, hip, hip), score=0.9)


def test_roi_is_the_full_body_circle_enlarged_and_turned_upright() -> None:
    standing = _detection((100, 200), (100, 100)).roi()
    assert (standing.cx, standing.cy) == (100, 200)
    assert standing.side == pytest.approx(2 * 100 * 1.25)
    assert standing.rotation == pytest.approx(0)
    assert standing.box() == pytest.approx((-25, 75, 225, 325))
    head_right = _detection((100, 200), (180, 200)).roi()  # lying, head to the right
    assert head_right.rotation == pytest.approx(math.pi / 2)
    upside_down = _detection((100, 200), (100, 260)).roi()
    assert abs(upside_down.rotation) == pytest.approx(math.pi)


def test_roi_matrix_maps_the_input_square_onto_the_roi() -> None:
    roi = Roi(cx=300, cy=200, side=128, rotation=math.pi / 2)
    matrix = roi_to_image_matrix(roi, size=256)
    centre = matrix[:, :2] @ (128, 128) + matrix[:, 2]
    np.testing.assert_allclose(centre, (300, 200))
    # The top edge of the input (the person's head side) lies to the right of the centre.
    top = matrix[:, :2] @ (128, 0) + matrix[:, 2]
    np.testing.assert_allclose(top, (364, 200))


def _dot_image(x: int, y: int, size: tuple[int, int] = (400, 300)) -> np.ndarray:
    rgb = np.full((size[1], size[0], 3), 40, dtype=np.uint8)
    rgb[y - 1 : y + 2, x - 1 : x + 2] = 255
    return rgb


class _DotLandmarks:
    """Stands in for the landmark network: reports every landmark at the brightest spot of
    its input, in input pixels, so a crop and its back-projection can be checked."""

    def __init__(self) -> None:
        self.inputs: list[np.ndarray] = []

    def __call__(self, tensor: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        self.inputs.append(tensor)
        brightness = tensor[0].sum(axis=2)
        ys, xs = np.nonzero(brightness >= brightness.max() - 1e-6)
        raw = np.zeros((NUM_LANDMARKS, 5))
        raw[:, 0], raw[:, 1] = xs.mean() + 0.5, ys.mean() + 0.5
        raw[:, 3] = 5.0  # visibility logit
        heatmap = np.full((64, 64, NUM_LANDMARKS), -20.0)  # never confident: no refinement
        return raw.ravel(), 0.99, heatmap


@pytest.mark.parametrize("rotation", [0.0, math.pi / 2, -0.7])
def test_landmarks_in_a_crop_map_back_to_image_pixels(rotation: float) -> None:
    dot = (230, 140)
    rgb = _dot_image(*dot)
    model = LandmarkModel()
    fake = _DotLandmarks()
    model.raw_outputs = fake  # type: ignore[method-assign]
    roi = Roi(cx=200, cy=160, side=180, rotation=rotation)
    found = model.run(rgb, roi)
    assert found is not None
    assert fake.inputs[0].shape == (1, LANDMARK_INPUT_SIZE, LANDMARK_INPUT_SIZE, 3)
    assert fake.inputs[0].min() >= 0.0 and fake.inputs[0].max() <= 1.0  # [0, 1] input
    assert found.landmarks.shape == (33, 3)
    np.testing.assert_allclose(found.landmarks[:, :2], np.tile(dot, (33, 1)), atol=1.0)
    np.testing.assert_allclose(found.landmarks[:, 2], 1 / (1 + math.exp(-5.0)))


@pytest.mark.parametrize("rotation", [0.0, math.pi / 2, -0.7])
def test_image_points_map_into_the_crop_and_back(rotation: float) -> None:
    roi = Roi(cx=200, cy=160, side=180, rotation=rotation)
    points = np.array([[200.0, 160.0], [230.0, 140.0], [120.0, 250.0]])
    inside = image_points_to_roi(points, roi, LANDMARK_INPUT_SIZE)
    np.testing.assert_allclose(inside[0], [128.0, 128.0])  # the centre to the centre
    np.testing.assert_allclose(roi_points_to_image(inside, roi, LANDMARK_INPUT_SIZE), points)
    # Where the crop shows it: a dot at an image point lies at that point in the crop.
    rgb = _dot_image(230, 140)
    ys, xs = np.nonzero(crop_roi(rgb, roi)[0].sum(axis=2) > 1.5)
    assert abs(xs.mean() - inside[1, 0]) < 2 and abs(ys.mean() - inside[1, 1]) < 2


def test_a_crop_reaching_past_the_image_repeats_its_edge() -> None:
    rgb = np.zeros((100, 100, 3), dtype=np.uint8)
    rgb[:, -1] = 200  # the right-most column
    crop = crop_roi(rgb, Roi(cx=100, cy=50, side=100, rotation=0.0), size=64)
    assert crop[0, 32, 60, 0] == pytest.approx(200 / 255, abs=0.02)


def test_crop_of_a_lying_person_turns_them_upright() -> None:
    rgb = _dot_image(260, 150)  # towards the head, which is to the right of the hips
    crop = crop_roi(rgb, Roi(cx=200, cy=150, side=200, rotation=math.pi / 2), size=256)
    ys, xs = np.nonzero(crop[0].sum(axis=2) > 2.5)
    assert ys.mean() < 100 and abs(xs.mean() - 128) < 3  # above the centre of the crop


def test_presence_below_the_threshold_means_nobody() -> None:
    model = LandmarkModel()
    fake = _DotLandmarks()
    model.raw_outputs = fake  # type: ignore[method-assign]
    rgb = _dot_image(200, 150)
    roi = Roi(cx=200, cy=150, side=100, rotation=0.0)
    assert model.run(rgb, roi, min_presence=0.995) is None
    assert model.run(rgb, roi, min_presence=0.9) is not None


def test_heatmap_refines_confident_landmarks_only() -> None:
    heatmap = np.full((64, 64, 2), -20.0)
    heatmap[30, 20, 0] = 5.0  # a confident peak near landmark 0
    heatmap[40, 40, 1] = -1.0  # a weak one near landmark 1
    points = np.array([[21 / 64, 31 / 64], [41 / 64, 41 / 64]])
    refined = refine_from_heatmap(points, heatmap)
    np.testing.assert_allclose(refined[0], (20 / 64, 30 / 64), atol=1e-6)
    np.testing.assert_allclose(refined[1], points[1])


def test_decoded_landmarks_keep_the_33_pose_points() -> None:
    raw = np.zeros((NUM_LANDMARKS, 5))
    raw[:, 0], raw[:, 1] = 64.0, 192.0  # a quarter of the input in from the left and bottom
    raw[:, 3] = np.linspace(-3, 3, NUM_LANDMARKS)
    roi = Roi(cx=500, cy=400, side=512, rotation=0.0)
    landmarks = decode_landmarks(raw.ravel(), None, roi)
    assert landmarks.shape == (33, 3)
    np.testing.assert_allclose(landmarks[:, :2], np.tile((500 - 128, 400 + 128), (33, 1)))
    np.testing.assert_allclose(landmarks[:, 2], sigmoid_scores(raw[:33, 3]))


# ---------------------------------------------------------------- the search, at its seams

W, H = 640, 480

# A standing figure in units of its region's side, centred on the region: (x, y) per
# BlazePose landmark, head up. Only the shape matters; each landmark gets visibility 0.9.
_FIGURE = np.array(
    [(0.0, -0.32)] * 11  # face
    + [(0.07, -0.22), (-0.07, -0.22)]  # shoulders (subject's left on the image's right)
    + [(0.09, -0.08), (-0.09, -0.08), (0.1, 0.04), (-0.1, 0.04)]  # elbows, wrists
    + [(0.1, 0.05), (-0.1, 0.05)] * 3  # hand points
    + [(0.05, 0.02), (-0.05, 0.02)]  # hips
    + [(0.05, 0.17), (-0.05, 0.17), (0.05, 0.32), (-0.05, 0.32)]  # knees, ankles
    + [(0.05, 0.33), (-0.05, 0.33), (0.06, 0.34), (-0.06, 0.34)]  # feet
)
_FIGURE[:11, 0] += np.linspace(-0.03, 0.03, 11)  # a face with some width


class _FakePeople:
    """Stands in for the person detector: the detections of each round, in order."""

    def __init__(self, *rounds: list[PersonDetection]) -> None:
        self.rounds = list(rounds)
        self.images: list[Image.Image] = []
        self.tiles: list[int | None] = []

    def detect(self, image: Image.Image, tiles: int | None = None) -> list[PersonDetection]:
        self.images.append(image.copy())
        self.tiles.append(tiles)
        return self.rounds[len(self.images) - 1] if len(self.images) <= len(self.rounds) else []


class _FakeLandmarks:
    """Stands in for the landmark model: the standing figure filling each region, or, given
    `bodies`, the figure of the body nearest to the region (the model locks onto a person)."""

    def __init__(self, presence: float = 0.95, bodies: Sequence[Roi] = ()) -> None:
        self.presence = presence
        self.bodies = list(bodies)
        self.rois: list[Roi] = []

    def run(self, rgb: np.ndarray, roi: Roi, min_presence: float = 0.5) -> PersonLandmarks | None:
        self.rois.append(roi)
        if self.presence < min_presence:
            return None
        if self.bodies:
            roi = min(self.bodies, key=lambda b: math.hypot(b.cx - roi.cx, b.cy - roi.cy))
        xy = np.array([roi.cx, roi.cy]) + _FIGURE * roi.side
        return PersonLandmarks(np.column_stack([xy, np.full(33, 0.9)]), self.presence)


class _FakeGraph:
    def __init__(self, landmarks: np.ndarray | None = None) -> None:
        self.landmarks = landmarks
        self.frames = 0

    def process(self, rgb: np.ndarray) -> Any:
        from types import SimpleNamespace

        self.frames += 1
        if self.landmarks is None:
            return SimpleNamespace(pose_landmarks=None)
        points = [SimpleNamespace(x=x, y=y, visibility=v) for x, y, v in self.landmarks]
        return SimpleNamespace(pose_landmarks=SimpleNamespace(landmark=points))


def _person_at(cx: float, cy: float, side: float, score: float = 0.9) -> PersonDetection:
    """A detection whose region is centred on (cx, cy) with the given side."""
    radius = side / 2 / 1.25
    return PersonDetection(
        box=(cx - side / 8, cy - side / 2, cx + side / 8, cy - side / 4),
        keypoints=((cx, cy), (cx, cy - radius), (cx, cy), (cx, cy)),
        score=score,
    )


def _detector(
    people: _FakePeople,
    landmarks: _FakeLandmarks | None = None,
    graph: _FakeGraph | None = None,
    **options: Any,
) -> tuple[MediaPipePoseDetector, _FakeLandmarks, _FakeGraph]:
    # The search is under test here; hands (tests/test_hands.py), the human evidence and the
    # brightened second reading (tests/test_human_evidence.py) have their own tests.
    defaults = {"hands": False, "enhance_dark": False, "min_body_evidence": 0.0}
    detector = MediaPipePoseDetector(**{**defaults, **options})
    landmarks = landmarks or _FakeLandmarks()
    graph = graph or _FakeGraph()
    detector._search._people = people  # type: ignore[assignment]
    detector._search._landmark_model = landmarks  # type: ignore[assignment]
    detector._graph = graph
    return detector, landmarks, graph


def _hips(pose: Pose) -> np.ndarray:
    a = pose.array()
    return (a[COCO17_INDEX["left_hip"], :2] + a[COCO17_INDEX["right_hip"], :2]) / 2


def test_every_detected_person_gets_a_pose_in_image_pixels_largest_first() -> None:
    small, large = _person_at(150, 240, 200), _person_at(450, 240, 400)
    detector, landmarks, graph = _detector(_FakePeople([small, large]))
    poses = detector.detect(Image.new("RGB", (W, H)))
    assert len(poses) == 2
    assert [r.side for r in landmarks.rois] == [200, 400]  # each region read once
    np.testing.assert_allclose(_hips(poses[0]), (450, 240 + 0.02 * 400), atol=1e-3)
    np.testing.assert_allclose(_hips(poses[1]), (150, 240 + 0.02 * 200), atol=1e-3)
    assert prominence(poses[0]) > prominence(poses[1])
    assert graph.frames == 0  # people were found: no whole-image fallback


def test_two_detections_of_one_body_give_one_pose() -> None:
    first, shifted = _person_at(300, 240, 300), _person_at(360, 250, 250, score=0.6)
    assert box_iou_xyxy(first.roi().box(), shifted.roi().box()) < 0.85  # both are read
    body = _FakeLandmarks(bodies=[first.roi()])
    detector, landmarks, _ = _detector(_FakePeople([first, shifted]), body)
    (pose,) = detector.detect(Image.new("RGB", (W, H)))
    assert len(landmarks.rois) == 2
    np.testing.assert_allclose(_hips(pose), (300, 240 + 0.02 * 300), atol=1e-3)


def _figure_pose(cx: float, cy: float, side: float) -> Pose:
    found = _FakeLandmarks().run(np.zeros((H, W, 3), np.uint8), Roi(cx, cy, side, 0.0))
    assert found is not None
    coco = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
    return Pose.from_array(found.landmarks[coco])


def test_same_person_by_shared_head_or_close_joints() -> None:
    a = _figure_pose(300, 240, 300)
    assert same_person(a, _figure_pose(303, 242, 300), 0.1)  # joints within 10 % of the size
    assert not same_person(a, _figure_pose(500, 240, 300), 0.1)
    assert not same_person(a, _figure_pose(300, 400, 300), 0.1)  # one below the other
    other_body = a.array().astype(np.float64)
    other_body[5:, 0] += 150  # the same head on a body far to the right
    assert same_person(a, Pose.from_array(other_body), 0.1)
    x0, y0, x1, y1 = head_box(a)
    assert x0 < 300 < x1 and y0 < 240 - 0.32 * 300 < y1


def test_at_most_max_people_are_returned() -> None:
    people = [_person_at(80 + 120 * i, 240, 150) for i in range(5)]
    detector, _, _ = _detector(_FakePeople(people), max_people=3)
    assert len(detector.detect(Image.new("RGB", (W, H)))) == 3


def test_poses_below_min_pose_score_or_presence_are_dropped() -> None:
    people = _FakePeople([_person_at(300, 240, 300)])
    detector, _, graph = _detector(people, _FakeLandmarks(presence=0.6))
    assert detector.detect(Image.new("RGB", (W, H))) == []  # presence 0.6 < 0.8
    assert graph.frames == 1  # then the whole-image graph was asked, and found nobody
    strict, _, _ = _detector(_FakePeople([_person_at(300, 240, 300)]), min_pose_score=0.95)
    assert strict.detect(Image.new("RGB", (W, H))) == []  # visibility 0.9 < 0.95


def test_without_detections_the_whole_image_graph_answers_as_before() -> None:
    i = np.arange(33, dtype=np.float64)
    landmarks = np.column_stack([0.2 + i * 0.01, 0.1 + i * 0.02, np.full(33, 0.8)])
    detector, _, graph = _detector(_FakePeople(), graph=_FakeGraph(landmarks))
    (pose,) = detector.detect(Image.new("RGB", (W, H)))
    assert graph.frames == 1
    nose = pose.keypoints[0]
    assert nose == pytest.approx((0.2 * W, 0.1 * H, 0.8))


def test_single_person_mode_never_runs_the_person_detector() -> None:
    people = _FakePeople([_person_at(300, 240, 300)])
    detector, landmarks, graph = _detector(people, max_people=1)
    assert detector.detect(Image.new("RGB", (W, H))) == []
    assert people.images == [] and landmarks.rois == [] and graph.frames == 1


def test_later_rounds_look_again_with_found_heads_painted_over() -> None:
    front = _person_at(300, 260, 360)
    behind = _person_at(420, 250, 340, score=0.5)  # only found once the front head is hidden
    people = _FakePeople([front], [behind], [])
    detector, _, _ = _detector(people, search_rounds=3, tiles=2)
    poses = detector.detect(Image.new("RGB", (W, H), (10, 200, 10)))
    assert len(poses) == 2
    assert len(people.images) == 3  # a third round found no one new, so the search stopped
    assert people.tiles == [None, 1, 1]  # the tiles are read in the first round only
    assert people.images[0].getpixel((300, 145)) == (10, 200, 10)
    x0, y0, x1, y1 = head_box(poses[0])
    head = (round((x0 + x1) / 2), round((y0 + y1) / 2))
    assert people.images[1].getpixel(head) == (128, 128, 128)


def test_one_round_only_when_asked() -> None:
    people = _FakePeople([_person_at(300, 240, 300)], [_person_at(500, 240, 200)])
    detector, _, _ = _detector(people, search_rounds=1)
    assert len(detector.detect(Image.new("RGB", (W, H)))) == 1
    assert len(people.images) == 1


def test_model_id_names_every_option_that_changes_the_output() -> None:
    default = keypoint_models.backend_class("mediapipe")()
    assert default.model_id.startswith("mediapipe-blazepose-full@0.10.21(")
    assert default.model_id == keypoint_models.backend_class("mediapipe")().model_id  # stable
    changed = {
        "min_detection_confidence": 0.5,
        "retry_padding": 0.1,
        "min_pose_score": 0.5,
        "max_people": 4,
        "min_person_score": 0.6,
        "min_person_presence": 0.7,
        "nms_iou": 0.4,
        "tiles": 3,
        "search_rounds": 1,
        "duplicate_distance": 0.2,
        "hands": False,
    }
    ids = {
        keypoint_models.backend_class("mediapipe")(**{k: v}).model_id for k, v in changed.items()
    }
    assert len(ids) == len(changed) and default.model_id not in ids
    single = keypoint_models.backend_class("mediapipe")(max_people=1).model_id
    assert "people" not in single and "tiles" not in single  # unused options stay out


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="max_people"):
        MediaPipePoseDetector(max_people=0)
    with pytest.raises(ValueError, match="search_rounds"):
        MediaPipePoseDetector(search_rounds=0)


# ---------------------------------------------------------------- evalset (real models)

MIN_LABELLED = 5  # annotated people with fewer labelled joints are not counted


def pose_distance_scale(gt: np.ndarray) -> float:
    """Torso length (mid-shoulder to mid-hip) of a ground truth `(17, 3)`, or a third of the
    diagonal of its labelled joints when the torso is not labelled."""
    torso = [COCO17_INDEX[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    if np.all(gt[torso, 2] > 0):
        shoulders = (gt[torso[0], :2] + gt[torso[1], :2]) / 2
        hips = (gt[torso[2], :2] + gt[torso[3], :2]) / 2
        return float(np.linalg.norm(shoulders - hips))
    seen = gt[gt[:, 2] > 0, :2]
    return float(np.linalg.norm(seen.max(axis=0) - seen.min(axis=0))) / 3


def pck(gt: Pose, pose: Pose, threshold: float = 0.2) -> tuple[int, int]:
    """(correct, labelled): joints within `threshold` × the torso of the ground truth."""
    g = gt.array().astype(np.float64)
    labelled = g[:, 2] > 0
    distance = np.linalg.norm(pose.array()[:, :2] - g[:, :2], axis=1)
    return int(((distance <= threshold * pose_distance_scale(g)) & labelled).sum()), int(
        labelled.sum()
    )


def detected_box(pose: Pose, enlarge: float = 1.1) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) around the joints scoring above 0, enlarged 10 %."""
    box = pose.bbox(0.0)
    if box is None:
        return None
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return cx - w * enlarge / 2, cy - h * enlarge / 2, cx + w * enlarge / 2, cy + h * enlarge / 2


def match_people(
    annotated: list[dict[str, Any]], poses: Sequence[Pose], by: str
) -> list[tuple[int, int]]:
    """Greedy one-to-one (annotated, detected) pairs, best first: `by="pck"` pairs a person
    whose PCK@0.2 reaches 0.5, `by="iou"` one whose annotated box has IoU ≥ 0.5 with the
    detected joints' box."""
    pairs = []
    for a, person in enumerate(annotated):
        for d, pose in enumerate(poses):
            if by == "pck":
                correct, labelled = pck(gt_pose(person), pose)
                quality = correct / labelled
            else:
                x, y, w, h = person["bbox"]
                box = detected_box(pose)
                quality = box_iou_xyxy((x, y, x + w, y + h), box) if box else 0.0
            if quality >= 0.5:
                pairs.append((quality, a, d))
    taken_a: set[int] = set()
    taken_d: set[int] = set()
    matched = []
    for _, a, d in sorted(pairs, reverse=True):
        if a not in taken_a and d not in taken_d:
            taken_a.add(a)
            taken_d.add(d)
            matched.append((a, d))
    return matched


def counted_people(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        p for p in entry["people"] if sum(k[2] > 0 for k in p["keypoints_coco17"]) >= MIN_LABELLED
    ]


def evalset_figures(detections: Mapping[str, Sequence[Pose]]) -> dict[str, Any]:
    """Person recall (PCK and IoU matching), false people on negatives, PCK of the matched."""
    annotated = iou_matched = pck_matched = correct = labelled = 0
    false_people, false_images, unmatched_on_complete = 0, 0, 0
    for entry in evalset_images():
        poses = detections[entry["file"]]
        if not entry["people"]:
            false_people += len(poses)
            false_images += bool(poses)
            continue
        people = counted_people(entry)
        matched = match_people(people, poses, "pck")
        annotated += len(people)
        pck_matched += len(matched)
        iou_matched += len(match_people(people, poses, "iou"))
        if entry["all_people_annotated"].startswith(("yes", "single")):
            unmatched_on_complete += len(poses) - len(matched)
        for a, d in matched:
            c, n = pck(gt_pose(people[a]), poses[d])
            correct, labelled = correct + c, labelled + n
    negatives = sum(1 for e in evalset_images() if not e["people"])
    return {
        "annotated": annotated,
        "pck_matched": pck_matched,
        "iou_matched": iou_matched,
        "false_people": false_people,
        "false_images": false_images,
        "negatives": negatives,
        "unmatched_on_complete": unmatched_on_complete,
        "pck": correct / labelled if labelled else 0.0,
        "joints": (correct, labelled),
    }


def _report(label: str, f: dict[str, Any]) -> str:
    n = f["annotated"]
    return (
        f"| {label} | {f['pck_matched']}/{n} ({f['pck_matched'] / n:.2f}) "
        f"| {f['iou_matched']}/{n} ({f['iou_matched'] / n:.2f}) "
        f"| {f['false_people']} on {f['false_images']} of {f['negatives']} "
        f"| {f['unmatched_on_complete']} "
        f"| {f['pck']:.3f} ({f['joints'][0]}/{f['joints'][1]}) |"
    )


# Measured with the defaults (mediapipe 0.10.21, ai-edge-litert 2.3.0): 32 of the 44 annotated
# people (≥ 5 labelled joints) matched by PCK (the single-person path: 18), 25 by box IoU, one
# false person on one of the 11 negatives. The floors leave two people of room.
RECALL_FLOOR = 30 / 44
MAX_FALSE_PEOPLE = 2
# Images where the defaults match at least two annotated people (of 2, 4, 5, 3, 2).
MULTI_PERSON_IMAGES = (
    "coco__000000040083.jpg",
    "coco__000000196141.jpg",
    "coco__000000197388.jpg",
    "aic__ff945ae2e729f24eea992814639d59b3bdec8bd8.jpg",
    "crowdpose__103319.jpg",
)


def _entry(name: str) -> dict[str, Any]:
    return next(e for e in evalset_images() if e["file"].endswith(name))


@pytest.mark.evalset
@requires_evalset
@pytest.mark.parametrize("name", MULTI_PERSON_IMAGES)
def test_several_annotated_people_are_found_in_group_photos(name: str) -> None:
    entry = _entry(name)
    poses = mediapipe_detections()[entry["file"]]
    matched = match_people(counted_people(entry), poses, "pck")
    report = f"{name}: {len(poses)} people found, {len(matched)} of them annotated ones"
    print(report)
    assert len(poses) >= 2 and len(matched) >= 2, report


@pytest.mark.evalset
@requires_evalset
def test_person_recall_and_false_people_on_the_evalset() -> None:
    figures = evalset_figures(mediapipe_detections())
    report = (
        "| detector | recall (PCK match) | recall (IoU ≥ 0.5) | false people on negatives "
        "| unmatched on fully annotated | PCK@0.2 of matched |\n"
        + _report("mediapipe defaults", figures)
    )
    print(report)
    assert figures["pck_matched"] / figures["annotated"] >= RECALL_FLOOR, report
    assert figures["false_people"] <= MAX_FALSE_PEOPLE, report


@pytest.mark.evalset
@requires_evalset
def test_single_person_photos_still_give_their_person() -> None:
    detections = mediapipe_detections()
    photos = [e for e in evalset_images() if e["medium"] == "photo" and len(e["people"]) == 1]
    found = [e["file"] for e in photos if match_people(e["people"], detections[e["file"]], "pck")]
    report = f"{len(found)} of {len(photos)} single-person photos give their person"
    print(report)
    # The single-person path matched 10 of these 12 (by the same PCK ≥ 0.5 rule).
    assert len(found) >= 10, report


@pytest.mark.evalset
@requires_evalset
def test_the_whole_image_path_still_answers_for_figures_the_detector_misses() -> None:
    # On this Human-Art photo the person detector proposes nobody and only the legacy graph
    # finds the figure: recall must not drop. (A toy figurine: the human-evidence check then
    # rejects it, so it is off here; the face detector proposes its face, so that is off too.)
    entry = _entry("humanart__000000005603.jpg")
    image, _ = decode_image(evalset_bytes(entry))
    detector = keypoint_models.load("mediapipe", min_body_evidence=0.0, face_proposals=False)
    assert detector._every_person(image) == []  # type: ignore[attr-defined]
    assert len(detector.detect(image)) == 1
    assert keypoint_models.load("mediapipe", face_proposals=False).detect(image) == []


@pytest.mark.evalset
@requires_evalset
def test_threads_sharing_one_detector_get_the_serial_answers() -> None:
    from concurrent.futures import ThreadPoolExecutor

    detector = keypoint_models.load("mediapipe")
    images = [decode_image(evalset_bytes(_entry(name)))[0] for name in MULTI_PERSON_IMAGES[:2]]
    serial = [detector.detect(image) for image in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(detector.detect, images * 2))
    for got, want in zip(threaded, serial * 2, strict=True):
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a.array(), b.array(), atol=1e-4)


# ---------------------------------------------------------------- benchmark


def _run(
    detector: MediaPipePoseDetector,
) -> tuple[dict[str, tuple[Pose, ...]], float, float, float]:
    out: dict[str, tuple[Pose, ...]] = {}
    wall = cpu = slowest = 0.0
    images = [(e["file"], decode_image(evalset_bytes(e))[0]) for e in evalset_images()]
    detector.detect(images[0][1])  # load the models outside the timing
    for name, image in images:
        start, start_cpu = time.perf_counter(), time.process_time()
        out[name] = tuple(detector.detect(image))
        seconds = time.perf_counter() - start
        wall, slowest = wall + seconds, max(slowest, seconds)
        cpu += time.process_time() - start_cpu
    return out, wall / len(images), slowest, cpu / len(images)


def main() -> None:
    """Print the evalset table: the single-person path and the multi-person defaults (both
    without hands, which `python -m tests.test_hands` measures)."""
    if not (EVALSET_DIR / "annotations.json").is_file():
        sys.exit(f"no evalset at {EVALSET_DIR}")
    variants: list[tuple[str, Callable[[], MediaPipePoseDetector]]] = [
        (
            "single person (max_people=1)",
            lambda: MediaPipePoseDetector(max_people=1, hands=False),
        ),
        ("multi-person defaults", lambda: MediaPipePoseDetector(hands=False)),
    ]
    print(
        "| detector | recall (PCK match) | recall (IoU ≥ 0.5) | false people on negatives "
        "| unmatched on fully annotated | PCK@0.2 of matched | wall s/image (slowest) "
        "| CPU s/image |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, build in variants:
        detections, wall, slowest, cpu = _run(build())
        figures = _report(label, evalset_figures(detections))
        print(f"{figures} {wall:.3f} ({slowest:.2f}) | {cpu:.3f} |")


if __name__ == "__main__":
    main()
