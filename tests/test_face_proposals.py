"""People proposed by their faces: the full-range face detector's outputs decode to faces in
image pixels, a face proposes the region of the body below it (turned with the face), and
the people search reads those regions in photos only, for faces on nobody found yet, keeping
a reading only where its nose is on the face. On real crowds it finds people the person
detector missed, and no person on animal photos. (The figures are
`python -m benchmarks.crowd_eval`'s, not asserted here.)"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from benchmarks.crowd_eval import tiled
from benchmarks.pose_eval_matching import MIN_JOINTS_10PLUS, load_evalset, match_image
from pipelines.catalog import keypoint_models
from pipelines.images import decode_image
from pipelines.pose.face_proposals import (
    BODY_RADIUS,
    FULL_RANGE_INPUT,
    HIP_BELOW_FACE,
    MIN_FACE_SCORE,
    Face,
    FaceDetector,
)
from pipelines.pose.keypoints import MediaPipePoseDetector
from pipelines.pose.people_search import PeopleSearch
from pipelines.pose.person_detection import ROI_SCALE


def _face(cx: float, cy: float, width: float, roll: float = 0.0) -> Face:
    """A face of `width` centred at (cx, cy), its eyes' line turned `roll` radians."""
    along = np.array([math.cos(roll), math.sin(roll)]) * width * 0.3
    centre = np.array([cx, cy])
    keypoints = np.array([centre - along, centre + along, *[centre] * 4])
    half = width / 2
    return Face((cx - half, cy - half, cx + half, cy + half), keypoints, 0.9)


def test_a_known_face_decodes_to_image_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    detector = FaceDetector()
    anchors = detector._anchors
    assert anchors.shape == (48 * 48, 2)
    index = 48 * 20 + 30  # row 20, column 30: centre (122, 82) of the 192-pixel input
    np.testing.assert_allclose(anchors[index] * FULL_RANGE_INPUT, (122, 82))
    raw = np.zeros((anchors.shape[0], 16))
    raw[index, :4] = (4.0, -2.0, 20.0, 24.0)  # box centre (126, 80), 20 × 24 input pixels
    raw[index, 4:6] = (-5.0, -4.0)  # the right eye at (117, 78)
    raw[index, 6:8] = (5.0, -4.0)  # the left eye at (127, 78)
    scores = np.full(anchors.shape[0], -8.0)
    scores[index] = 2.0
    monkeypatch.setattr(detector, "raw_outputs", lambda tensor: (raw, scores))
    # A 384 × 192 image is scaled by 0.5 into the input, with 48 pixels of padding above.
    faces = detector.detect(Image.new("RGB", (384, 192)), [(0, 0, 384, 192)])
    assert len(faces) == 1
    face = faces[0]
    np.testing.assert_allclose(face.box, (232, 40, 272, 88))
    np.testing.assert_allclose(face.keypoints[0], (234, 60))
    np.testing.assert_allclose(face.keypoints[1], (254, 60))
    assert face.score == pytest.approx(1 / (1 + math.exp(-2.0)))
    scores[index] = math.log(MIN_FACE_SCORE / (1 - MIN_FACE_SCORE)) - 0.1
    assert detector.detect(Image.new("RGB", (384, 192)), [(0, 0, 384, 192)]) == []


def test_the_body_is_below_an_upright_face_and_turns_with_it() -> None:
    upright = _face(100, 50, 20).person_region()
    assert (upright.cx, upright.cy) == pytest.approx((100, 50 + HIP_BELOW_FACE * 20))
    assert upright.side == pytest.approx(2 * BODY_RADIUS * 20 * ROI_SCALE)
    assert upright.rotation == pytest.approx(0.0)
    # Lying with the head to the right (eyes' line vertical, the right eye above): the body
    # stretches to the left of the face and the region is turned a quarter.
    lying = _face(300, 100, 20, roll=math.pi / 2).person_region()
    assert (lying.cx, lying.cy) == pytest.approx((300 - HIP_BELOW_FACE * 20, 100))
    assert abs(lying.rotation) == pytest.approx(math.pi / 2)
    assert _face(100, 50, 20).is_at((110, 60)) and not _face(100, 50, 20).is_at((130, 50))


class _NoPeople:
    tile_fraction = 0.6

    def detect(self, image: Image.Image, tiles: Any = None, fraction: Any = None) -> list[Any]:
        return []


class _Faces:
    def __init__(self, faces: list[Face]) -> None:
        self.faces = faces
        self.calls = 0

    def detect(self, image: Image.Image, regions: list[Any]) -> list[Face]:
        self.calls += 1
        assert regions[0] == (0, 0, image.width, image.height)
        return self.faces


def _landmarks_with_nose_at(x: float, y: float, size: int = 400) -> np.ndarray:
    """Normalised BlazePose landmarks of an upright body whose nose is at (x, y)."""
    points = np.zeros((33, 3))
    points[:, 0] = x / size
    points[:, 1] = (y + np.linspace(0, 120, 33)) / size
    points[:, 2] = 0.9
    return points


def _search(
    monkeypatch: pytest.MonkeyPatch, faces: list[Face], nose: tuple[float, float], **options: Any
) -> tuple[PeopleSearch, _Faces, list[Any]]:
    search = PeopleSearch("full", 0.4, 10, 0.4, 0.8, 0.3, 2, 3, 0.1, **options)
    face_detector = _Faces(faces)
    regions: list[Any] = []
    monkeypatch.setattr(search, "person_detector", lambda: _NoPeople())
    monkeypatch.setattr(search, "face_detector", lambda: face_detector)

    def landmarks(rgb: Any, region: Any) -> np.ndarray:
        regions.append(region)
        return _landmarks_with_nose_at(*nose)

    monkeypatch.setattr(search, "person_landmarks", landmarks)
    return search, face_detector, regions


def test_a_face_proposes_its_person_in_photos_only(monkeypatch: pytest.MonkeyPatch) -> None:
    face = _face(200, 100, 16)
    search, _, regions = _search(monkeypatch, [face], nose=(201, 101))
    image = Image.new("RGB", (400, 400))
    people = search.every_person(image)
    assert len(people) == 1 and people[0].array()[0, :2] == pytest.approx((201, 101))
    assert regions == [face.person_region()]
    assert search.every_person(image, photo=False) == []  # a drawing: the drawn model's
    off, off_faces, _ = _search(monkeypatch, [face], nose=(201, 101), face_proposals=False)
    assert off.every_person(image) == [] and off_faces.calls == 0


def test_a_reading_whose_nose_is_off_the_face_is_someone_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The region below a face also holds a neighbour, whom the landmark model reads instead.
    search, _, regions = _search(monkeypatch, [_face(200, 100, 16)], nose=(260, 100))
    assert search.every_person(Image.new("RGB", (400, 400))) == []
    assert len(regions) == 1


def test_a_face_on_a_person_found_is_not_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    search, _, regions = _search(
        monkeypatch, [_face(200, 100, 16), _face(201, 102, 16)], nose=(201, 101)
    )
    assert len(search.every_person(Image.new("RGB", (400, 400)))) == 1
    assert len(regions) == 1


def test_a_face_is_read_where_the_pose_on_it_is_no_person(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A crop read a pose there that fails the person test (it will be dropped): the face's
    # own region is read all the same, or the person would be lost with it.
    face = _face(200, 100, 16)
    image = Image.new("RGB", (400, 400))
    for is_person, reads in ((lambda pose: False, 1), (lambda pose: True, 0), (None, 0)):
        search, _, regions = _search(monkeypatch, [face], nose=(201, 101))
        found = search.every_person(image)  # the face's reading, with no test
        assert len(regions) == 1
        poses = list(found)
        search._read_faces(np.asarray(image), image, [], poses, is_person)
        assert len(regions) == 1 + reads


def test_the_keypoint_model_id_names_the_face_proposals() -> None:
    on = MediaPipePoseDetector(hands=False).model_id
    off = MediaPipePoseDetector(hands=False, face_proposals=False).model_id
    assert f"faces=full{MIN_FACE_SCORE:g}" in on and "faces=" not in off


def _people_found(detector: Any, evalset: Path, images: list[Any]) -> tuple[int, int]:
    """(≥ 10-joint people matched, poses on images with nobody) over `images` tiled 2 × 2."""
    matched = false = 0
    for image in images:
        picture = decode_image((evalset / image.file).read_bytes())[0]
        crowd_image, crowd = tiled(image, picture, 2)
        found = detector.detect(crowd)
        if not image.people:
            false += len(found)
        for m in match_image(crowd_image, found).matches:
            matched += m.labelled >= MIN_JOINTS_10PLUS and m.detection is not None
    return matched, false


def test_on_real_crowds_faces_find_people_the_detector_missed(evalset: Path) -> None:
    photos = [i for i in load_evalset(evalset) if i.medium == "photo"]
    crowds = [i for i in photos if i.source == "coco"]
    animals = [i for i in photos if not i.people and i.source != "mmpose"]
    assert crowds and animals
    found = {}
    for faces in (False, True):
        detector = keypoint_models.load(
            "mediapipe", hands=False, max_people=40, face_proposals=faces
        )
        found[faces] = _people_found(detector, evalset, crowds + animals)
    assert found[True][0] > found[False][0]
    assert found[True][1] <= found[False][1]
