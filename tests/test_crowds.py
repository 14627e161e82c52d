"""Small people in crowds: where a small person is found (with human evidence; smaller than
`fine_below` of the image), the detector reads a finer grid of crops; photos of large people
or of nobody, and drawings, never get it, nor a photo whose "person" is an animal; of
two readings of one body a person stays before a clearer pose that is not one; the keypoint
model id names it all, so turning it on re-reads the index. (Its effect on real pictures is measured
by `python -m benchmarks.crowd_eval`, not asserted here.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

from pipelines.pose.keypoints import MediaPipePoseDetector
from pipelines.pose.people_search import (
    FACE_FRACTION,
    FACE_TILES,
    FINE_BELOW,
    FINE_FRACTION,
    FINE_TILES,
    PeopleSearch,
    admit,
)
from pipelines.pose.person_detection import tile_regions
from pipelines.records import Pose


class _Candidate:
    def roi(self) -> None:
        return None


class _RecordingDetector:
    """Proposes one region on the first call; records the grid each call asks for."""

    tile_fraction = 0.6

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []

    def detect(
        self, image: Image.Image, tiles: int | None = None, fraction: float | None = None
    ) -> list[_Candidate]:
        self.calls.append((tiles, fraction))
        return [_Candidate()] if len(self.calls) == 1 else []


def _standing(height: float) -> Pose:
    joints = np.zeros((17, 3))
    joints[:, 0] = 200
    joints[:, 1] = np.linspace(100, 100 + height, 17)
    joints[:, 2] = 0.9
    return Pose.from_array(joints)


def _search(
    found: Pose,
    monkeypatch: pytest.MonkeyPatch,
    fine_tiles: bool = True,
    faces: bool = False,
    fine_below: float = FINE_BELOW,
) -> Any:
    search = PeopleSearch("full", 0.4, 10, 0.4, 0.8, 0.3, 2, 3, 0.1, fine_tiles, faces, fine_below)
    detector = _RecordingDetector()
    monkeypatch.setattr(search, "person_detector", lambda: detector)

    def read(
        rgb: Any, image: Any, region: Any, read: list[Any], poses: list[Pose], *rest: Any
    ) -> bool:
        if poses:
            return False
        poses.append(found)
        return True

    monkeypatch.setattr(search, "_read_region", read)
    return search, detector


@pytest.mark.parametrize(
    ("height", "fine", "fine_tiles", "fine_below", "finer"),
    [
        (60, True, True, FINE_BELOW, True),  # a small person (60 of 400 pixels): look closer
        (200, True, True, FINE_BELOW, False),  # half the frame: the first grid saw the people
        (300, True, True, FINE_BELOW, False),  # filling the frame: the same
        (200, True, True, 0.6, True),  # unless larger people open it
        (300, True, True, 1.0, True),  # or any person
        (60, False, True, FINE_BELOW, False),  # a drawing: never
        (60, True, False, FINE_BELOW, False),  # switched off
    ],
)
def test_the_finer_grid_is_read_only_where_a_person_is_found(
    monkeypatch: pytest.MonkeyPatch,
    height: float,
    fine: bool,
    fine_tiles: bool,
    fine_below: float,
    finer: bool,
) -> None:
    search, detector = _search(_standing(height), monkeypatch, fine_tiles, fine_below=fine_below)
    people = search.every_person(Image.new("RGB", (400, 400)), photo=fine)
    assert len(people) == 1
    assert ((FINE_TILES, FINE_FRACTION) in detector.calls) is finer


def test_a_candidate_without_human_evidence_opens_no_finer_grid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An animal read as a "person" on its photo: the finer crops would find more
    # patterns there, so only a person with human evidence asks for them.
    small = _standing(60)
    search, detector = _search(small, monkeypatch)
    asked: list[Pose] = []

    def an_animal(pose: Pose) -> bool:
        asked.append(pose)
        return False

    assert search.every_person(Image.new("RGB", (400, 400)), is_person=an_animal) == []
    assert asked and all(pose is small for pose in asked)
    assert (FINE_TILES, FINE_FRACTION) not in detector.calls
    search, detector = _search(small, monkeypatch)
    search.every_person(Image.new("RGB", (400, 400)), is_person=lambda pose: True)
    assert (FINE_TILES, FINE_FRACTION) in detector.calls


def test_the_reader_asks_for_human_evidence_before_the_finer_grid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    detector = MediaPipePoseDetector(hands=False, enhance_dark=False)
    small = _standing(60)
    passed: list[list[Pose]] = []
    monkeypatch.setattr(
        detector, "_humans", lambda poses, image, drawn, faces_only=False: passed.append(poses)
    )
    seen: dict[str, Any] = {}

    def every_person(image: Image.Image, photo: bool = True, is_person: Any = None) -> list[Pose]:
        seen["photo"], seen["confirms"] = photo, is_person(small)
        return []

    monkeypatch.setattr(detector._search, "every_person", every_person)
    detector._every_person(Image.new("RGB", (400, 400)))
    assert seen == {"photo": True, "confirms": False} and passed == [[small]]


@pytest.mark.parametrize("height", [60, 300])
def test_the_face_detector_reads_its_own_grid_small_people_or_not(
    monkeypatch: pytest.MonkeyPatch, height: float
) -> None:
    search, _ = _search(_standing(height), monkeypatch, faces=True)
    asked: list[list[tuple[int, int, int, int]]] = []

    class _Faces:
        def detect(self, image: Image.Image, regions: list[tuple[int, int, int, int]]) -> list:
            asked.append(regions)
            return []

    monkeypatch.setattr(search, "face_detector", lambda: _Faces())
    search.every_person(Image.new("RGB", (400, 400)))
    first = tile_regions(400, 400, 2, _RecordingDetector.tile_fraction)
    assert asked == [first + tile_regions(400, 400, FACE_TILES, FACE_FRACTION)[1:]]


def test_nobody_found_means_no_finer_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    search, detector = _search(_standing(60), monkeypatch)
    monkeypatch.setattr(search, "_read_region", lambda *args: False)
    assert search.every_person(Image.new("RGB", (400, 400))) == []
    assert (FINE_TILES, FINE_FRACTION) not in detector.calls


def test_the_keypoint_model_id_names_the_finer_grid() -> None:
    on = MediaPipePoseDetector(hands=False).model_id
    off = MediaPipePoseDetector(hands=False, fine_tiles=False).model_id
    assert f"fine={FINE_TILES}x{FINE_FRACTION:g}<0.3|human" in on and "fine=" not in off
    larger = MediaPipePoseDetector(hands=False, fine_below=0.6).model_id
    assert f"fine={FINE_TILES}x{FINE_FRACTION:g}<0.6|human" in larger
    no_evidence = MediaPipePoseDetector(hands=False, min_body_evidence=0.0).model_id
    assert f"fine={FINE_TILES}x{FINE_FRACTION:g}<0.3," in no_evidence
    # The person test ranks the poses of one body only where there is one.
    assert "|persons-first|people-only," in on and "persons-first" not in no_evidence


def test_of_two_poses_of_one_body_a_person_stays_before_a_clearer_pose_that_is_not() -> None:
    # Two readings of one body from different regions: the clearer one failing the person
    # test must not take the place of the one passing it (the body would then be dropped
    # with it), whichever came first; without a test the clearer stays.
    person = Pose.from_array(_standing(200).array(), score=0.8)
    clearer = Pose.from_array(_standing(202).array(), score=0.9)

    def is_person(pose: Pose) -> bool:
        return pose is person

    for first, second in ((person, clearer), (clearer, person)):
        poses = [first]
        assert not admit(poses, second, 0.1, is_person)
        assert poses == [person]
    poses = [person]
    admit(poses, clearer, 0.1)
    assert poses == [clearer]
    poses = [person]
    admit(poses, clearer, 0.1, lambda pose: True)
    assert poses == [clearer]
    # Someone else is added, person or not.
    other = Pose.from_array(_standing(200).array() + np.array([150.0, 0.0, 0.0]), score=0.5)
    assert admit(poses, other, 0.1, is_person) and poses == [clearer, other]


class _TwoCandidates:
    tile_fraction = 0.6

    def detect(self, image: Image.Image, tiles: Any = None, fraction: Any = None) -> list[Any]:
        return [_Candidate(), _Candidate()]


def test_only_people_take_the_places_of_max_people(monkeypatch: pytest.MonkeyPatch) -> None:
    # Room for one person; the first region read is an animal's "person", the second a
    # person's: the animal must not fill the only place, nor be returned.
    animal = _standing(100)
    person = Pose.from_array(_standing(100).array() + np.array([150.0, 0.0, 0.0]))

    def people_found(is_person: Any) -> list[Pose]:
        search = PeopleSearch("full", 0.4, 1, 0.4, 0.8, 0.3, 2, 3, 0.1, False, False)
        monkeypatch.setattr(search, "person_detector", lambda: _TwoCandidates())
        readings = iter([animal, person])

        def read(
            rgb: Any, image: Any, region: Any, read: Any, poses: list[Pose], *rest: Any
        ) -> bool:
            pose = next(readings, None)
            if pose is None:
                return False
            poses.append(pose)
            return True

        monkeypatch.setattr(search, "_read_region", read)
        return search.every_person(Image.new("RGB", (400, 400)), is_person=is_person)

    assert people_found(lambda pose: pose is person) == [person]
    assert people_found(None) == [animal]  # without a test, the first pose fills it
