"""Every person in an image: BlazePose's detector proposes regions, its landmark model reads each.

MediaPipe's legacy `solutions.pose` graph finds one person: its detector's best box, then the
landmark model on that box's region. `PeopleSearch` runs the same two models directly
(`pipelines.pose.person_detection`) for every candidate the detector keeps, over a grid of
tiles where small people look bigger, and again with the heads of the people found so far
painted over (the detector keys on faces, and someone in front often hides the person
behind; the landmark model still reads the untouched image). In photos, the wheel's
full-range face detector proposes the people whose faces it finds and whom the person
detector did not (`pipelines.pose.face_proposals`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from pipelines.pose.blazepose import accepted_pose
from pipelines.pose.face_proposals import Face, FaceDetector
from pipelines.pose.figure_geometry import head_box, prominence, same_person, seen_height
from pipelines.pose.landmarks import LandmarkModel
from pipelines.pose.person_detection import PersonDetector, Roi, box_iou_xyxy, tile_regions
from pipelines.records import Pose

# The detector proposes at most this many candidates per person asked for.
MAX_CANDIDATES_PER_PERSON = 3
# Candidate regions overlapping a region already read by more than this are skipped.
SAME_REGION_IOU = 0.85
# Masking a found person's head: mid grey over its head box.
MASK_FILL = (128, 128, 128)
# Where a person found is small (their joints span less than FINE_BELOW of the image's
# height), others near them are likely small too, below what the detector sees at its tiles:
# it reads a finer grid, FINE_TILES × FINE_TILES crops each FINE_FRACTION of the image (a
# 640-pixel photo's crops at 1.4 × the detector's input scale). Only where that person is
# one (`every_person`'s `is_person`): on photos of nobody the finer crops find parts and
# patterns, and an animal read as a "person" would open it on its own photo. Grids of
# 4 × 0.35 (until 2026-12-07), 5 × 0.3 and 6 × 0.25 were compared in a one-off study (its
# script not kept) on the evalset, its 2 × 2 crowds and the photo negatives' halves;
# `benchmarks.crowd_eval` measures the one kept. Where the person found is large, finer
# crops read parts of them:
# at FINE_BELOW 0.6 (chosen by `benchmarks.loso --grid proposals` over 0.3 on the strength
# of one COCO photo) the squares of the evalset's photos (`benchmarks.drawn_eval`'s
# `gt_photo_square`) got more "people" (three on a one-person Human3.6M photo) and the
# subject's reading replaced by a crop's clearer but wrong one (PCK 0.669 → 0.602), so it
# stays at 0.3 (the README has the figures).
FINE_BELOW = 0.3
FINE_TILES = 6
FINE_FRACTION = 0.25
# The face detector reads every photo's crops: the person detector's first grid and this one,
# the grid the face proposals were measured with. (In one-off runs of `benchmarks.crowd_eval`
# on variants not kept, the face detector reading the finer grid above made every photo
# about a third slower; reading it only where the person detector does found no one more.)
FACE_TILES = 4
FACE_FRACTION = 0.35


class PeopleSearch:
    """The multi-person search of `MediaPipePoseDetector` (see its docstring for the options)."""

    def __init__(
        self,
        variant: str,
        min_pose_score: float,
        max_people: int,
        min_person_score: float,
        min_person_presence: float,
        nms_iou: float,
        tiles: int,
        search_rounds: int,
        duplicate_distance: float,
        fine_tiles: bool = True,
        face_proposals: bool = True,
        fine_below: float = FINE_BELOW,
    ) -> None:
        self.variant = variant
        self.fine_tiles = fine_tiles
        self.fine_below = fine_below
        self.face_proposals = face_proposals
        self.min_pose_score = min_pose_score
        self.max_people = max_people
        self.min_person_score = min_person_score
        self.min_person_presence = min_person_presence
        self.nms_iou = nms_iou
        self.tiles = tiles
        self.search_rounds = search_rounds
        self.duplicate_distance = duplicate_distance
        self._people: PersonDetector | None = None
        self._landmark_model: LandmarkModel | None = None
        self._faces: FaceDetector | None = None
        # The LiteRT models lock their own interpreters; this guards their lazy creation.
        self._build_lock = threading.Lock()

    def person_detector(self) -> PersonDetector:
        with self._build_lock:
            if self._people is None:
                self._people = PersonDetector(
                    min_score=self.min_person_score,
                    nms_iou=self.nms_iou,
                    max_people=MAX_CANDIDATES_PER_PERSON * self.max_people,
                    tiles=self.tiles,
                )
            return self._people

    def face_detector(self) -> FaceDetector:
        with self._build_lock:
            if self._faces is None:
                self._faces = FaceDetector()
            return self._faces

    def landmarker(self) -> LandmarkModel:
        with self._build_lock:
            if self._landmark_model is None:
                self._landmark_model = LandmarkModel(self.variant)
            return self._landmark_model

    def person_landmarks(self, rgb: np.ndarray, region: Roi) -> np.ndarray | None:
        """(33, 3) normalised (x, y, visibility) of the person in `region`, or None."""
        found = self.landmarker().run(rgb, region, self.min_person_presence)
        if found is None:
            return None
        height, width = rgb.shape[:2]
        return found.landmarks / np.array([width, height, 1.0])

    def merged(self, people: list[Pose], found: list[Pose]) -> list[Pose]:
        """`people` and `found` as one person each (of two poses of one body the clearer
        stays: `admit`), most prominent first."""
        if not people:
            return found
        out = list(people)
        for pose in found:
            admit(out, pose, self.duplicate_distance)
        return sorted(out, key=prominence, reverse=True)[: self.max_people]

    def every_person(
        self,
        image: Image.Image,
        photo: bool = True,
        is_person: Callable[[Pose], bool] | None = None,
    ) -> list[Pose]:
        """One pose per person the detectors find, largest and clearest first. In a `photo`
        (drawings are the drawn-figure model's) also the finer grid where a person (smaller
        than `fine_below` of its height) is found (`fine_tiles`) and the people the face
        detector proposes (`face_proposals`).

        `is_person`, where given, is the test a pose must pass to count as a person, and
        only those are returned: a pose opens the finer grid only if a person, of two poses
        of one body a person is kept before a clearer pose that is not (`admit`), a face is
        read unless a person's nose is on it already, and only people count towards
        `max_people`. Without it, poses that fail the test would stand in for the readings
        that pass it, and take the places of people.
        """
        test = is_person or _anyone
        rgb = np.ascontiguousarray(np.asarray(image))
        masked = image.copy()
        poses: list[Pose] = []
        read: list[tuple[float, float, float, float]] = []
        for search in range(self.search_rounds):
            # Small people are found in the first round; the ones hidden behind others are
            # large, and the whole image is enough to find them.
            candidates = self.person_detector().detect(masked, None if search == 0 else 1)
            found_new = False
            for person in candidates:
                found_new |= self._read_region(rgb, image, person.roi(), read, poses, test)
                if self._full(poses, test):
                    break
            if not found_new or self._full(poses, test):
                break
            draw = ImageDraw.Draw(masked)
            for pose in poses:
                draw.rectangle(head_box(pose), fill=MASK_FILL)
        if (
            photo
            and self.fine_tiles
            and not self._full(poses, test)
            and any(
                seen_height(pose) < self.fine_below * image.height and test(pose) for pose in poses
            )
        ):
            for person in self.person_detector().detect(masked, FINE_TILES, FINE_FRACTION):
                self._read_region(rgb, image, person.roi(), read, poses, test)
                if self._full(poses, test):
                    break
        if photo and self.face_proposals and not self._full(poses, test):
            self._read_faces(rgb, image, read, poses, test)
        people = [pose for pose in poses if test(pose)]
        return sorted(people, key=prominence, reverse=True)[: self.max_people]

    def _full(self, poses: list[Pose], is_person: Callable[[Pose], bool]) -> bool:
        """Whether `poses` hold `max_people` people (by `is_person`)."""
        return sum(1 for pose in poses if is_person(pose)) >= self.max_people

    def _read_faces(
        self,
        rgb: np.ndarray,
        image: Image.Image,
        read: list[tuple[float, float, float, float]],
        poses: list[Pose],
        is_person: Callable[[Pose], bool] | None = None,
    ) -> None:
        """The people whose faces the face detector finds (over the whole image, the
        person detector's first grid and the `FACE_TILES` grid) and who are none of `poses`
        yet (none `is_person` confirms, where given), into `poses` (in place), until they
        hold `max_people` people."""
        test = is_person or _anyone
        share = self.person_detector().tile_fraction
        regions = tile_regions(image.width, image.height, self.tiles, share)
        regions += tile_regions(image.width, image.height, FACE_TILES, FACE_FRACTION)[1:]
        for face in self.face_detector().detect(image, regions):
            if any(
                face.is_at(pose.array()[0, :2])
                for pose in poses
                if pose.array()[0, 2] > 0 and test(pose)
            ):
                continue  # a person found already: their nose is on this face
            self._read_region(rgb, image, face.person_region(), read, poses, test, face)
            if self._full(poses, test):
                return

    def _read_region(
        self,
        rgb: np.ndarray,
        image: Image.Image,
        region: Roi,
        read: list[tuple[float, float, float, float]],
        poses: list[Pose],
        is_person: Callable[[Pose], bool],
        face: Face | None = None,
    ) -> bool:
        """Read the person in `region` into `poses` (in place); whether it is a new person.

        A region like one already read gives the same pose again and is skipped; of two
        poses of one body the clearer stays (a person by `is_person` before one that is
        not), in the place of the first one seen. A region proposed by a
        `face` keeps only a person whose nose is on that face.
        """
        if any(box_iou_xyxy(region.box(), seen) > SAME_REGION_IOU for seen in read):
            return False
        read.append(region.box())
        pose = accepted_pose(self.person_landmarks(rgb, region), image, self.min_pose_score)
        if pose is None or (face is not None and not face.is_at(pose.array()[0, :2])):
            return False
        return admit(poses, pose, self.duplicate_distance, is_person)


def _anyone(pose: Pose) -> bool:
    """The person test where none is given: every pose counts."""
    return True


def admit(
    poses: list[Pose],
    pose: Pose,
    tolerance: float,
    is_person: Callable[[Pose], bool] | None = None,
) -> bool:
    """Add `pose` to `poses` (in place) unless it is one of them (`same_person` within
    `tolerance`); of two poses of one body the clearer stays, in the place of the first one
    seen, and where `is_person` is given a person stays before a clearer pose that is not
    one. Whether it is a new person."""
    same = [i for i, kept in enumerate(poses) if same_person(pose, kept, tolerance)]
    if not same:
        poses.append(pose)
        return True

    def rank(candidate: Pose) -> tuple[bool, float]:
        return (is_person is None or is_person(candidate), candidate.score)

    if rank(pose) > max(rank(poses[i]) for i in same):
        poses[same[0]] = pose
        for i in reversed(same[1:]):
            del poses[i]
    return False
