"""Keypoint detectors behind a registry, each mapping into canonical COCO-17 (+ extras)."""

from __future__ import annotations

import abc
import copy
import functools
import math
import threading
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from pipelines.pose.blazepose import accepted_pose
from pipelines.pose.drawn.reader import (
    FIGURE_GAP,
    FIGURE_SIZE,
    DrawnFigureReader,
    DrawnReading,
    committed_reader,
)
from pipelines.pose.face_proposals import BODY_RADIUS, HIP_BELOW_FACE, MIN_FACE_SCORE
from pipelines.pose.figure_geometry import head_box, keypoint_box
from pipelines.pose.hands import HandFinder
from pipelines.pose.human_evidence import (
    DRAWN_FLAT_SHARE,
    JOINT_DISTANCE,
    MESH_TURNS,
    MIN_JOINT_AGREEMENT,
    MIN_LIMB_COVERAGE,
    MIN_MESH_PRESENCE,
    PAGE_GRAIN,
    PAGE_SHARE,
    PAPER_SHARE,
    TURNS_READ,
    FaceEvidence,
    Reread,
    is_human,
    quarter_turn,
    reread,
)
from pipelines.pose.landmarks import MIN_POSE_PRESENCE
from pipelines.pose.low_light import (
    DIM_CONTRAST,
    DIM_LUMINANCE,
    LIFT_SMOOTHING,
    TARGET_MEDIAN,
    brightened,
    is_dark,
    is_dim,
)
from pipelines.pose.medium import read_medium
from pipelines.pose.people_search import (
    FACE_FRACTION,
    FACE_TILES,
    FINE_BELOW,
    FINE_FRACTION,
    FINE_TILES,
    PeopleSearch,
)
from pipelines.pose.person_detection import PersonDetector
from pipelines.pose.stick_figures import STICK_FIGURES_VERSION, read_stick_figure
from pipelines.records import NUM_JOINTS, Pose
from pipelines.registry import Registry


class KeypointDetector(abc.ABC):
    """Finds people in an upright RGB image and returns one canonical `Pose` per person."""

    name: str

    @property
    @abc.abstractmethod
    def model_id(self) -> str:
        """Name plus weights tag: changes whenever the detector's output could change."""

    @abc.abstractmethod
    def detect(self, image: Image.Image) -> list[Pose]:
        """People in `image`, most confident first; an empty list when there is nobody."""

    def load(self) -> None:
        """Load the models now rather than on the first image (a service does this at start):
        a detection on a blank image builds whatever the backend builds lazily."""
        self.detect(Image.new("RGB", (64, 64), "white"))

    def for_queries(self) -> KeypointDetector:
        """The reader of query images (the search service's): this one unless a backend reads
        a query, which someone sent as a figure, more willingly than an image to index."""
        return self


keypoint_models: Registry[KeypointDetector] = Registry("keypoint")


@keypoint_models.register("mediapipe")
class MediaPipePoseDetector(KeypointDetector):
    """BlazePose full (model_complexity=1) from the mediapipe 0.10.21 wheel, for every person
    in the image; fully offline.

    MediaPipe's legacy `solutions.pose` graph finds one person: its detector's best box, then
    the landmark model on that box's region. Here the same two models run directly
    (`pipelines.pose.person_detection`). The detector keeps every candidate scoring at least
    `min_person_score` after non-maximum suppression at `nms_iou`; with `tiles` > 1 it also
    reads a `tiles` × `tiles` grid of overlapping crops, where small people look bigger. The
    landmark model then reads each candidate's region, and the person is kept when the model
    is at least `min_person_presence` sure someone is there and the mean COCO-17 visibility
    reaches `min_pose_score`. Of two poses on one body (a shared head, or joints on average
    within `duplicate_distance` × the pose's size) the clearer one stays.

    The detector keys on faces, and someone in front often hides the person behind, so the
    search runs up to `search_rounds` times: the heads of the people found so far are
    painted over and the detector looks at the whole image again (the landmark model still
    reads the untouched image). With `fine_tiles`, where a person found is small (their
    joints span less than `fine_below` of the image's height) and has human evidence (below:
    an animal read as a "person" opens none) the detector also reads a finer grid
    (`FINE_TILES` × `FINE_TILES` crops, `FINE_FRACTION` of the image each): small people
    stand near small people, below what the first grid sees (`benchmarks.crowd_eval`); photos
    of large people (finer crops read their parts) or of nobody, and drawings, never get it.
    With `face_proposals`, the wheel's full-range face detector reads a photo and the same
    crops, and each face on nobody found yet proposes the region of the body below it
    (`pipelines.pose.face_proposals`); the reading is kept when its nose is on that face.
    At most `max_people` are returned, largest and clearest first; the search asks the
    checks below as it goes, so a pose that fails them takes no person's place.

    In a photo a person needs human evidence (`pipelines.pose.human_evidence`): a human face
    at the head (`min_face_evidence`) or a body seen clearly (`min_body_evidence`), and with
    `reread` (the default) the landmark model must still see a person when it reads them
    again from the region their own joints give and from its mirror image (with a mean
    presence of at least `min_reread_presence`; by default the `min_person_presence` its
    first reading met), with its person mask along their limbs: animals it was sure of from
    the detector's region fall there (`benchmarks.photo_negatives`). Where that presence
    misses the bar but reaches MediaPipe's own (0.5), a person is kept when the re-reading
    places at least `min_reread_agreement` of the joints first seen clearly where they were:
    blur, shake and coarse JPEG lower the presence on people whose joints stay put
    (`benchmarks.degraded_eval`); above 1, presence alone decides, as before 2026-12-07.

    With `enhance_dark` (the default), a dim photo is also read from a copy brightened as an
    exposure correction would (`pipelines.pose.low_light`), after smoothing it by a Gaussian
    of `lift_smoothing` pixels (0: none) so its grain and few grey levels are not stretched;
    of two readings of one person in the two views, the clearer stays (`benchmarks.dim_eval`).

    Where this finds nobody, the legacy graph runs on the whole image exactly as before (with
    detection threshold `min_detection_confidence`), so recall never falls below the
    single-person path's; `max_people=1` is that path alone. `retry_padding` > 0 retries such
    an image inside a white border of that fraction of its longer side (off by default: on
    the evalset it found no further figure and added a false one).

    Measured on the evalset (`python -m tests.test_person_detection`, see its module
    docstring): of 44 annotated people, the single-person path matched 18 and these defaults
    32, with one false person on one of the 11 images without people; `min_person_score` 0.5
    matched 31 with two, 0.3 let in a dozen.

    With `several_figures` (the default), a drawing whose ink falls into groups drawn apart
    is read group by group, and every group the drawn-figure model sees a figure in is a
    figure (`benchmarks.drawn_pairs`); otherwise a drawing gives the model one figure.

    With `drawn_mirror` (the default) the drawn-figure model sees a figure only where it reads
    most of its joints alike from the drawing's mirror image (`pipelines.pose.drawn.reader`):
    its figure output is sure of letters, hats and chess pawns it never saw
    (`benchmarks.drawn_negatives`). Off, only the model's figure output decides.

    `drawn_weights` names other drawn-figure weights (a retraining, compared with
    `benchmarks.drawn_eval --weights`); they read the drawings this detector reads, but the
    medium stored at ingest and a query's mirror default keep the committed weights
    (`pipelines.pose.medium`): to serve other weights, replace the committed file.

    With `hands` (the default) every person's hands are added as extras `left_hand_0` …
    `left_hand_20` and `right_hand_0` … `right_hand_20` (MediaPipe's 21 hand landmarks, scored
    by the hand model's presence), found from the pose's wrists as MediaPipe's holistic graph
    does and given to people and sides by proximity (`pipelines.pose.hands`). On the evalset
    (`python -m tests.test_hands`) that found 28 hands, 24 of them on the 57 wrists annotated
    as visible of matched people and none far from its annotated wrist, for about 0.05 s per
    image; the legacy hand graph on the whole image found 9.
    """

    name = "mediapipe"

    def __init__(
        self,
        min_detection_confidence: float = 0.3,
        model_complexity: int = 1,
        retry_padding: float = 0.0,
        min_pose_score: float = 0.4,
        max_people: int = 10,
        min_person_score: float = 0.4,
        min_person_presence: float = 0.8,
        nms_iou: float = 0.3,
        tiles: int = 2,
        search_rounds: int = 3,
        duplicate_distance: float = 0.1,
        fine_tiles: bool = True,
        face_proposals: bool = True,
        fine_below: float = FINE_BELOW,
        hands: bool = True,
        min_face_evidence: float = 0.5,
        min_body_evidence: float = 0.85,
        reread: bool = True,
        min_reread_presence: float | None = None,
        min_reread_agreement: float = MIN_JOINT_AGREEMENT,
        enhance_dark: bool = True,
        lift_smoothing: float = LIFT_SMOOTHING,
        stick_figures: bool = True,
        drawn_model: bool = True,
        several_figures: bool = True,
        drawn_weights: str | None = None,
        drawn_mirror: bool = True,
    ) -> None:
        if max_people < 1:
            raise ValueError("max_people must be at least 1")
        if search_rounds < 1:
            raise ValueError("search_rounds must be at least 1")
        self.min_detection_confidence = min_detection_confidence
        self.model_complexity = model_complexity
        self.retry_padding = retry_padding
        self.hands = hands
        self.min_face_evidence = min_face_evidence
        self.min_body_evidence = min_body_evidence
        self._faces = FaceEvidence() if min_body_evidence > 0 else None
        self.reread = reread
        # Read again, a person must be as sure a person as when first found.
        self.min_reread_presence = (
            min_person_presence if min_reread_presence is None else min_reread_presence
        )
        self.min_reread_agreement = min_reread_agreement
        self.enhance_dark = enhance_dark
        if lift_smoothing < 0:
            raise ValueError("lift_smoothing must be zero or more pixels")
        self.lift_smoothing = lift_smoothing
        self.stick_figures = stick_figures
        self.several_figures = several_figures
        reader = DrawnFigureReader(Path(drawn_weights)) if drawn_weights else committed_reader()
        if not drawn_mirror:
            reader = reader.with_agreement(0.0)
        self._drawn = reader if drawn_model else None
        self._hand_finder = HandFinder() if hands else None
        # The multi-person search holds its own options (max_people, min_pose_score, ...).
        self._search = PeopleSearch(
            self.variant, min_pose_score, max_people, min_person_score, min_person_presence,
            nms_iou, tiles, search_rounds, duplicate_distance, fine_tiles, face_proposals,
            fine_below,
        )  # fmt: skip
        self._graph: Any = None
        # The MediaPipe graph keeps per-call state: one image at a time per instance.
        self._lock = threading.Lock()

    @property
    def variant(self) -> str:
        return {0: "lite", 1: "full", 2: "heavy"}.get(self.model_complexity, "custom")

    @property
    def model_id(self) -> str:
        try:
            version = metadata.version("mediapipe")
        except metadata.PackageNotFoundError:
            version = "missing"
        search = self._search
        options = (
            f"conf={self.min_detection_confidence:g},retry_padding={self.retry_padding:g},"
            f"min_pose_score={search.min_pose_score:g}"
        )
        if search.max_people > 1:
            options += (
                f",people={search.max_people},person_score={search.min_person_score:g},"
                f"presence={search.min_person_presence:g},nms_iou={search.nms_iou:g},"
                f"tiles={search.tiles},rounds={search.search_rounds},"
                f"duplicate={search.duplicate_distance:g}"
            )
            if self._faces is not None:
                # The person test ranks two poses of one body, lets a face be read again,
                # and only people count and are returned (`PeopleSearch.every_person`).
                options += "|persons-first|people-only"
            if search.fine_tiles:
                options += f",fine={FINE_TILES}x{FINE_FRACTION:g}<{search.fine_below:g}"
                if self._faces is not None:
                    options += "|human"
            if search.face_proposals:
                options += (
                    f",faces=full{MIN_FACE_SCORE:g}|hip{HIP_BELOW_FACE:g}|r{BODY_RADIUS:g}"
                    f"|grid{FACE_TILES}x{FACE_FRACTION:g}"
                )
        if self._faces is not None:
            options += (
                f",human=face{self.min_face_evidence:g}|body{self.min_body_evidence:g}"
                f"|turns{''.join(map(str, TURNS_READ))}"
                f"+mesh{''.join(map(str, MESH_TURNS))}@{MIN_MESH_PRESENCE:g}"
            )
            if self.reread:
                options += (
                    f"|reread{self.min_reread_presence:g}|mask{MIN_LIMB_COVERAGE:g}"
                    f"|agree{self.min_reread_agreement:g}@{JOINT_DISTANCE:g}"
                    f"^{MIN_POSE_PRESENCE:g}"
                )
        if self.enhance_dark:
            options += f",dim={DIM_LUMINANCE:g}|{DIM_CONTRAST:g}|gamma{TARGET_MEDIAN:g}"
            if self.lift_smoothing > 0:
                options += f"~{self.lift_smoothing:g}"
        if self.stick_figures:
            options += f",sticks={STICK_FIGURES_VERSION}"
        if self._drawn is not None:
            options += f",drawn={self._drawn.tag}"
            options += (
                f",drawing=flat{DRAWN_FLAT_SHARE:g}|paper{PAPER_SHARE:g}|page{PAGE_SHARE:g}m{PAGE_GRAIN}"
                ",prefer=model,dark=human|lifted"
            )
            if self.several_figures:
                options += f",figures=apart{FIGURE_GAP:g}|{FIGURE_SIZE:g}|comparable{FIGURE_SIZE:g}"
        if self._hand_finder is not None:
            options += f",hands={self._hand_finder.tag}"
        return f"mediapipe-blazepose-{self.variant}@{version}({options})"

    def for_queries(self) -> KeypointDetector:
        """This reader, but a drawing's figure needs only the drawn-figure model's figure
        output, not its mirror check or joint-heat bar, and a drawing it sees no figure in
        is read again turned (`DrawnFigureReader.for_queries`): whoever sends a drawing
        as a query means a figure, and a rough reading (which the web page shows and lets
        them adjust) serves them better than "no figure"; in the index a doubtful figure
        would answer every pose search. The joints read are the same where both readers see
        a figure. Shares the models."""
        if self._drawn is None:
            return self
        lenient = copy.copy(self)
        lenient._drawn = self._drawn.for_queries()
        return lenient

    def _load(self) -> Any:
        if self._graph is None:
            try:
                import mediapipe as mp
            except ImportError as exc:  # pragma: no cover - mediapipe is a core dependency
                raise RuntimeError(
                    "the 'mediapipe' keypoint backend needs mediapipe==0.10.21 installed"
                ) from exc
            self._graph = mp.solutions.pose.Pose(
                static_image_mode=True,
                model_complexity=self.model_complexity,
                min_detection_confidence=self.min_detection_confidence,
            )
        return self._graph

    def _landmarks(self, image: Image.Image) -> np.ndarray | None:
        """(33, 3) normalised (x, y, visibility) by the graph, or None when nobody is found."""
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        with self._lock:
            result = self._load().process(rgb)
        if result.pose_landmarks is None:
            return None
        return np.array(
            [(lm.x, lm.y, lm.visibility) for lm in result.pose_landmarks.landmark],
            dtype=np.float64,
        )

    def _whole_image(self, image: Image.Image) -> list[Pose]:
        """The single most prominent person, by the legacy graph on the whole image."""
        landmarks = self._landmarks(image)
        if landmarks is None and self.retry_padding > 0:
            border = round(max(image.size) * self.retry_padding)
            padded = ImageOps.expand(image.convert("RGB"), border=border, fill=(255, 255, 255))
            found = self._landmarks(padded)
            if found is not None:
                # Back from the padded frame to the original image's normalised coordinates.
                found[:, 0] = (found[:, 0] * padded.width - border) / image.width
                found[:, 1] = (found[:, 1] * padded.height - border) / image.height
                landmarks = found
        pose = accepted_pose(landmarks, image, self._search.min_pose_score)
        return [] if pose is None else [pose]

    def _humans(
        self, poses: list[Pose], image: Image.Image, drawn: bool, faces_only: bool = False
    ) -> list[Pose]:
        """The poses with human evidence (a face, or a clearly seen body), in a photo; with
        `reread`, only those the landmark model still sees a person in when it reads them
        again from the region their own joints give (and its mirror image).

        Drawings are left as they are: a stick figure has neither a face nor the clear body
        a photo gives; the drawn-figure model tells a drawing's people from its animals
        (`_drawn_figures`).
        """
        if self._faces is None or not poses or drawn:
            return poses
        rgb = np.ascontiguousarray(np.asarray(image))
        return [pose for pose in poses if self._is_human(rgb, pose, faces_only)]

    def _is_human(self, rgb: np.ndarray, pose: Pose, faces_only: bool) -> bool:
        """`_humans` for one pose: it fails none of the checks (`failed_check`)."""
        return self.failed_check(rgb, pose, faces_only) is None

    def failed_check(self, rgb: np.ndarray, pose: Pose, faces_only: bool = False) -> str | None:
        """The first human-evidence check a photo's pose fails, or None for a person:
        `"face_or_body"` (no human face at the head, and the body not seen clearly enough
        to need one; with `faces_only`, a face alone counts) or `"reread"` (the landmark
        model read again does not still see a person). `benchmarks.where_lost` counts them.

        A person lying or upside down (`quarter_turn`) has their face read turned upright
        too, and where the face detector sees a human face so (and, for a person lying, the
        face mesh model confirms it: `FaceEvidence.turned_score`), they are also read again
        turned upright: the surer reading counts. An animal read as an upside-down or lying
        "person" shows no face turned (a goose's, 0.16) or none the face mesh model
        confirms, and its turned reading would pass."""
        if self._faces is None:
            raise ValueError("this reader checks no human evidence (min_body_evidence=0)")
        head = head_box(pose)
        face = self._faces.score(rgb, head)
        turn = quarter_turn(pose)
        turned_face = (
            self._faces.turned_score(rgb, head, turn, self.min_face_evidence) if turn else 0.0
        )
        if not is_human(
            pose,
            max(face, turned_face),
            self.min_face_evidence,
            math.inf if faces_only else self.min_body_evidence,
        ):
            return "face_or_body"
        upright = turn if turned_face >= self.min_face_evidence else 0.0
        if self.reread and not self._reread(rgb, pose, upright):
            return "reread"
        return None

    def _reread(self, rgb: np.ndarray, pose: Pose, turn: float = 0.0) -> bool:
        """Whether the landmark model still sees a person in `pose` read again from its own
        region and that region's mirror image (and turned by `turn` too, where not 0)."""
        return self.read_again(rgb, pose, turn).still_a_person(
            self.min_reread_presence, min_agreement=self.min_reread_agreement
        )

    def read_again(self, rgb: np.ndarray, pose: Pose, turn: float = 0.0) -> Reread:
        """What the landmark model says of `pose` read again from its own region and that
        region's mirror image, and turned by `turn` where not 0, the surer reading
        (`human_evidence.reread`; `benchmarks.reread_bars`)."""
        return reread(self._search.landmarker(), rgb, pose, turn)

    def person_detector(self) -> PersonDetector:
        """The person detector whose regions the landmark model reads (its first round's
        proposals are what `benchmarks.crowd_eval` counts)."""
        return self._search.person_detector()

    def _person_test(self, image: Image.Image, drawn: bool) -> Callable[[Pose], bool]:
        """Whether a pose read in `image` has human evidence (`_humans`), each pose judged
        once (a `Pose` is a frozen value): the search asks it of a pose wherever it
        decides, and `detect` once more at the end."""

        @functools.cache
        def is_person(pose: Pose) -> bool:
            return bool(self._humans([pose], image, drawn))

        return is_person

    def _every_person(
        self,
        image: Image.Image,
        drawn: bool = False,
        is_person: Callable[[Pose], bool] | None = None,
    ) -> list[Pose]:
        """One pose per person the detector finds that passes `is_person` (by default
        `_person_test`), largest and clearest first (in a drawing without the finer grid:
        the drawn-figure model reads drawings). The search asks the test as it decides
        (`PeopleSearch.every_person`)."""
        test = is_person or self._person_test(image, drawn)
        return self._search.every_person(image, photo=not drawn, is_person=test)

    def detect(self, image: Image.Image) -> list[Pose]:
        rgb = image.convert("RGB")
        # A dark or flat photo is also read brightened: same geometry, so the poses found
        # in either view are in the image's pixels and merge by their joints.
        # Read smoothed (`low_light.LIFT_SMOOTHING`); the medium decision lifts its own
        # copy, unsmoothed, and only for a dark image that looks flat.
        lifted = brightened(rgb, self.lift_smoothing) if self.enhance_dark and is_dim(rgb) else None
        unsmoothed = lifted if not self.lift_smoothing else None
        drawn, reading = read_medium(rgb, self._drawn, unsmoothed)
        views = [rgb] if lifted is None else [rgb, lifted]
        people: list[Pose] = []
        for view in views:
            is_person = self._person_test(view, drawn)
            found = (
                self._every_person(view, drawn, is_person) if self._search.max_people > 1 else []
            )
            # Kept whatever the search returns (at no cost: each pose is judged once).
            people = self._search.merged(people, [pose for pose in found if is_person(pose)])
        if not people:
            for view in views:
                found = self._whole_image(view)
                people = self._search.merged(people, self._humans(found, view, drawn))
        if drawn:
            people = self._drawn_figures(rgb, people, reading)
        if self._hand_finder is not None and people:
            people = self._hand_finder.find(rgb, people)
        return people

    def _drawn_figures(
        self, rgb: Image.Image, people: list[Pose], reading: DrawnReading | None
    ) -> list[Pose]:
        """A drawing's figures, the drawn-figure model's `reading` of it given or made here.

        Where the model sees no human figure, only BlazePose's people with a human face stay
        (a photo taken for a drawing keeps its people; BlazePose's drawn animals go). Where
        it sees one, BlazePose's people stay if they are several (of comparable size: a
        speck BlazePose takes for a tiny person beside the figure makes no second one,
        `comparable_people`) or pass the photo test of a person (a face or a clearly seen
        body); otherwise the model's reading is the figure:
        on drawings it reads joints far better than BlazePose (`benchmarks.drawn_eval`).
        With `several_figures`, figures drawn apart (separate groups of ink the model sees
        a figure in, `DrawnFigureReader.read_figures`) are each read, and where they
        outnumber BlazePose's people they are the drawing's figures (`benchmarks.drawn_pairs`).

        A dark image is not what the model learnt (ink on paper), and a dark photo is flat
        too: the model is not asked there, BlazePose's people who pass the photo test of a
        person are its figures (a dim animal photo's animals do not), else the stick figure
        read by its structure (chalk on a board).
        """
        dark = is_dark(rgb)
        if reading is None and self._drawn is not None and not dark:
            reading = self._drawn.read(rgb)
        if reading is not None:
            if not reading.shows_figure:
                return self._humans(people, rgb, drawn=False, faces_only=True)
            if reading.pose is None or self._drawn is None:
                figures = []
            elif self.several_figures:
                readings = self._drawn.read_figures(rgb, reading)
                figures = [r.pose for r in readings if r.pose is not None]
            else:
                figures = [reading.pose]
            several = len(comparable_people(people))
            if len(figures) <= max(several, 1) and (
                several > 1 or self._humans(people, rgb, drawn=False)
            ):
                return people
            return figures or people
        if dark:
            people = self._humans(people, rgb, drawn=False)
        if people:
            return people
        # Thin strokes give BlazePose nothing to see: read the drawing by its structure.
        figure = read_stick_figure(rgb) if self.stick_figures else None
        return [] if figure is None else [figure]


def comparable_people(people: list[Pose]) -> list[Pose]:
    """The people whose joints span at least `FIGURE_SIZE` of the largest one's longer side:
    the bar at which separate groups of a drawing's ink count as figures of their own."""
    sides = []
    for pose in people:
        box = keypoint_box(pose.array())
        sides.append(0.0 if box is None else max(box[2], box[3]))
    largest = max(sides, default=0.0)
    return [pose for pose, side in zip(people, sides, strict=True) if side >= FIGURE_SIZE * largest]


def pose_from_keypoint_list(keypoints: list[list[float]]) -> Pose:
    """A canonical Pose from a request's `[[x, y, score] × 17]`, validated."""
    if len(keypoints) != NUM_JOINTS or any(len(k) != 3 for k in keypoints):
        raise ValueError("keypoints must be 17 COCO-17 triples [x, y, score]")
    return Pose.from_array(np.asarray(keypoints, dtype=np.float64))
