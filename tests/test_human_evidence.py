"""The new stages of the keypoint reader: human evidence, the photo/drawing split, the dim
photo's brightened second reading and the landmark-refined region. Synthetic images; the
face models are the wheel's real ones where a test says so, fakes at the seams elsewhere."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from benchmarks import degraded_eval, photo_negatives
from benchmarks.dim_eval import underexposed
from benchmarks.pose_eval_matching import (
    MIN_JOINTS_10PLUS,
    EvalImage,
    detect_pictures,
    load_evalset,
)
from pipelines.catalog import keypoint_models
from pipelines.images import decode_image
from pipelines.pose import keypoints as keypoints_module
from pipelines.pose.blazepose import BLAZEPOSE_TO_COCO17
from pipelines.pose.human_evidence import (
    LIMBS,
    MIN_LIMB_COVERAGE,
    FaceEvidence,
    Reread,
    flat_share,
    is_human,
    joint_agreement,
    limb_coverage,
    looks_drawn,
    mesh_region,
    own_region,
    quarter_turn,
    reread,
)
from pipelines.pose.keypoints import KeypointDetector, MediaPipePoseDetector
from pipelines.pose.landmarks import (
    LANDMARK_INPUT_SIZE,
    PersonLandmarks,
    RegionReading,
    image_points_to_roi,
)
from pipelines.pose.low_light import (
    LIFT_SMOOTHING,
    TARGET_MEDIAN,
    brightened,
    is_dim,
    luminance,
)
from pipelines.pose.person_detection import Roi
from pipelines.records import Pose
from tests.synthetic import STANDING, make_pose


def drawing() -> Image.Image:
    """A stick figure in black lines on white paper."""
    image = Image.new("RGB", (320, 480), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((130, 40, 190, 100), outline="black", width=4)
    for line in ((160, 100, 160, 260), (160, 140, 100, 220), (160, 140, 220, 220)):
        draw.line(line, fill="black", width=4)
    draw.line((160, 260, 110, 420), fill="black", width=4)
    draw.line((160, 260, 210, 420), fill="black", width=4)
    return image


def photo(brightness: float = 1.0, seed: int = 0) -> Image.Image:
    """Smooth gradients and sensor noise, as a camera gives them."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:480, 0:320]
    base = np.stack([40 + 0.5 * xs, 40 + 0.3 * ys, 60 + 0.2 * (xs + ys)], axis=-1)
    noisy = (base + rng.normal(0, 6, base.shape)) * brightness
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def scaled_pose(score: float) -> Pose:
    arr = make_pose(STANDING).array().astype(np.float64)
    arr[:, :2] *= 2.5
    arr[:, 2] = score
    return Pose.from_array(arr)


# ---------------------------------------------------------------------- photo or drawing


def test_a_drawing_is_flat_and_a_photo_is_not() -> None:
    assert flat_share(drawing()) > 0.9 and looks_drawn(drawing())
    assert flat_share(photo()) < 0.3 and not looks_drawn(photo())
    assert flat_share(Image.new("RGB", (1, 1))) == 1.0  # too small to tell: no photo gate


def test_a_sketch_on_grainy_paper_is_still_a_drawing() -> None:
    """A scanned page's grain (a grey level or two of noise on every pixel) is no photo."""
    rng = np.random.default_rng(3)
    page = np.asarray(drawing(), dtype=np.float64) * 0.9 + 12
    grainy = Image.fromarray(
        np.clip(page + rng.normal(0, 2.0, page.shape), 0, 255).astype(np.uint8)
    )
    assert looks_drawn(grainy)
    assert not looks_drawn(photo(seed=4))


# ---------------------------------------------------------------------- human evidence


def test_a_face_or_a_clear_body_makes_a_person() -> None:
    clear, unclear = scaled_pose(0.9), scaled_pose(0.6)
    assert is_human(unclear, face=0.8, min_face_evidence=0.5, min_body_evidence=0.85)
    assert is_human(clear, face=0.0, min_face_evidence=0.5, min_body_evidence=0.85)
    assert not is_human(unclear, face=0.2, min_face_evidence=0.5, min_body_evidence=0.85)


def test_the_face_models_see_no_face_in_paper_or_noise() -> None:
    evidence = FaceEvidence()
    for image in (drawing(), photo()):
        rgb = np.asarray(image)
        score = evidence.score(rgb, (120.0, 30.0, 200.0, 110.0))
        assert 0.0 <= score < 0.5


def _detector_finding(
    pose: Pose,
    face: float,
    again: float = 1.0,
    covered: float = 1.0,
    agreed: float = 0.0,
    **options: object,
) -> MediaPipePoseDetector:
    """The real detector with its person search, face model and re-reading's model replaced
    at their seams (`again`: the landmark model's presence where it reads the pose again;
    `covered`: the share of the pose's limbs its person mask covers there; `agreed`: the
    share of the joints seen clearly it reads where they were)."""
    detector = MediaPipePoseDetector(hands=False, **options)  # type: ignore[arg-type]
    detector._every_person = lambda image, drawn=False, is_person=None: [pose]  # type: ignore[method-assign]
    detector._whole_image = lambda image: []  # type: ignore[method-assign]
    detector.read_again = lambda rgb, pose, turn=0.0: Reread(again, covered, agreed)  # type: ignore[method-assign]
    if detector._faces is not None:
        detector._faces.score = lambda rgb, head, turn=0.0: face  # type: ignore[method-assign]
        detector._faces.turned_score = lambda rgb, head, turn, bar: 0.0  # type: ignore[method-assign, assignment]
    return detector


def test_in_a_photo_a_pose_without_human_evidence_is_dropped() -> None:
    unclear = scaled_pose(0.6)
    assert _detector_finding(unclear, face=0.1).detect(photo()) == []  # an animal, say
    assert _detector_finding(unclear, face=0.9).detect(photo()) == [unclear]
    assert _detector_finding(scaled_pose(0.9), face=0.1).detect(photo()) != []
    # Off: every pose the landmark model accepts is kept, as before.
    assert _detector_finding(unclear, face=0.1, min_body_evidence=0.0).detect(photo()) != []


def test_in_a_drawing_the_face_check_does_not_apply() -> None:
    # A stick figure has no face and no photo-clear body; drawings keep the old acceptance.
    assert _detector_finding(scaled_pose(0.6), face=0.0).detect(drawing()) != []


def test_in_a_dark_flat_image_a_person_needs_human_evidence() -> None:
    # A dim photo is flat, so its statistics call it a drawing, and the drawn-figure model
    # (ink on paper) is not asked: BlazePose's people there pass the photo test or go (a
    # dim animal photo's animals).
    dim = photo(brightness=0.12)
    dim = Image.fromarray((np.asarray(dim) // 8 * 8).astype(np.uint8))  # a flat, dark frame
    assert looks_drawn(dim) and float(luminance(dim).mean()) < 0.3
    unclear = scaled_pose(0.6)
    assert _detector_finding(unclear, face=0.1).detect(dim) == []
    assert _detector_finding(unclear, face=0.9).detect(dim) == [unclear]
    assert _detector_finding(scaled_pose(0.9), face=0.1).detect(dim) != []  # a clear body


def test_the_checks_name_themselves_in_the_model_id() -> None:
    default = keypoint_models.load("mediapipe").model_id
    checks = "human=face0.5|body0.85|turns123+mesh13@0.5|reread0.8|mask0.25|agree0.8@0.1^0.5"
    assert checks in default
    assert ",dim=" in default
    lenient = keypoint_models.load("mediapipe", min_reread_presence=0.5).model_id
    assert "|reread0.5|mask0.25" in lenient and lenient != default
    presence_alone = keypoint_models.load("mediapipe", min_reread_agreement=2).model_id
    assert "|agree2@" in presence_alone and presence_alone != default
    no_reread = keypoint_models.load("mediapipe", reread=False).model_id
    assert "human=face0.5|body0.85|turns123+mesh13@0.5," in no_reread
    plain = keypoint_models.load("mediapipe", min_body_evidence=0.0, enhance_dark=False)
    assert "human=" not in plain.model_id and "dim=" not in plain.model_id


# ---------------------------------------------------------------------- the re-reading


def test_a_pose_gives_its_own_region() -> None:
    pose = scaled_pose(0.9)
    joints = pose.array()
    region = own_region(pose)
    assert region is not None and region.rotation == 0.0
    width, height = joints[:, :2].max(axis=0) - joints[:, :2].min(axis=0)
    # The joints' box, 10 % wider each side and a head's room higher, × BlazePose's margin.
    assert region.side == pytest.approx(max(1.2 * width, 1.35 * height) * 1.25)
    assert joints[:, 0].min() > region.cx - region.side / 2
    assert joints[:, 1].max() < region.cy + region.side / 2
    arr = joints.copy()
    arr[1:, 2] = 0.0  # one joint placed: no region, and nothing re-read
    assert own_region(Pose.from_array(arr)) is None


def _turned(pose: Pose, quarters: int, width: float, height: float) -> Pose:
    """`pose` in its picture (`width` × `height`) turned `quarters` quarter turns
    anticlockwise: (x, y) → (y, width − x) each quarter."""
    arr = pose.array().astype(np.float64)
    for _ in range(quarters):
        arr[:, :2] = np.column_stack([arr[:, 1], width - arr[:, 0]])
        width, height = height, width
    return Pose.from_array(arr)


def test_a_person_lying_or_upside_down_is_read_again_turned_upright() -> None:
    # An acrobat upside down, a gymnast in a handstand, a model reclining: the region their
    # joints give can be turned so that the landmark model sees them as it sees a standing
    # person.
    pose = scaled_pose(0.9)
    upright = own_region(pose)
    assert upright is not None and quarter_turn(pose) == 0.0
    seen = image_points_to_roi(pose.array()[:, :2], upright, LANDMARK_INPUT_SIZE)
    for quarters, turn in ((1, -math.pi / 2), (2, math.pi), (3, math.pi / 2)):
        turned = _turned(pose, quarters, 500.0, 600.0)
        region = own_region(turned, turn)
        assert region is not None and region.side == pytest.approx(upright.side)
        # The model's input shows the turned person exactly as it showed the standing one.
        again = image_points_to_roi(turned.array()[:, :2], region, LANDMARK_INPUT_SIZE)
        assert np.allclose(again, seen, atol=1e-6)
        # The turn that brings them upright is the one read from their joints.
        assert quarter_turn(turned) == pytest.approx(turn)
    # A leaning person (a third of a quarter turn) is read as they stand; so is a pose whose
    # hips or shoulders are not placed.
    arr = pose.array().astype(np.float64)
    centre = arr[:, :2].mean(axis=0)
    for lean in (math.pi / 6, math.pi - math.pi / 6):
        rot = np.array([[math.cos(lean), -math.sin(lean)], [math.sin(lean), math.cos(lean)]])
        leaning = arr.copy()
        leaning[:, :2] = (arr[:, :2] - centre) @ rot.T + centre
        assert quarter_turn(Pose.from_array(leaning)) == (0.0 if lean < 1 else math.pi)
    no_hips = _turned(pose, 2, 500.0, 600.0).array().copy()
    no_hips[[11, 12], 2] = 0.0
    assert quarter_turn(Pose.from_array(no_hips)) == 0.0


class _HeadUpModel:
    """A landmark model that sees a person only where the upper half of its input is the
    brighter (a head up), and whose person mask is everywhere."""

    def __init__(self) -> None:
        self.calls = 0

    def region_reading(self, tensor: np.ndarray, landmarks: bool = True) -> RegionReading:
        self.calls += 1
        half = tensor.shape[1] // 2
        up = float(tensor[0, :half].mean()) > float(tensor[0, half:].mean())
        return RegionReading(
            1.0 if up else 0.0, np.full((256, 256), 5.0), np.zeros((33, 2)) if landmarks else None
        )


def test_the_reread_of_a_person_upside_down_takes_the_surer_of_both_turns() -> None:
    standing = scaled_pose(0.9)
    upside_down = _turned(standing, 2, 500.0, 600.0)
    image = np.zeros((600, 500, 3), dtype=np.uint8)
    image[300:] = 255  # bright below: where the upside-down person's head is
    model = _HeadUpModel()
    assert reread(model, image, upside_down, math.pi).presence == 1.0  # type: ignore[arg-type]
    assert model.calls == 4  # as the picture stands and turned, each with its mirror image
    model = _HeadUpModel()
    assert reread(model, image, upside_down).presence == 0.0  # type: ignore[arg-type]
    assert model.calls == 2  # not turned: read as the picture stands only


@pytest.mark.parametrize("quarters", [1, 2, 3])
def test_a_person_lying_or_upside_down_is_read_turned_where_their_face_is_seen_turned(
    quarters: int,
) -> None:
    # An animal read as an upside-down or lying "person" passes the turned re-reading (a
    # goose did, at 0.99; a quadruped's body lies as a lying person's does) but shows no
    # human face turned upright that the face mesh model confirms; an acrobat does.
    turned = _turned(scaled_pose(0.95), quarters, 500.0, 600.0)
    turns: list[float] = []
    for turned_face, read_turned in ((0.9, True), (0.0, False)):
        detector = _detector_finding(turned, face=0.1)
        detector._faces.turned_score = (  # type: ignore[method-assign, union-attr]
            lambda rgb, head, turn, bar, f=turned_face: f
        )

        def read_again(rgb: np.ndarray, pose: Pose, turn: float = 0.0) -> Reread:
            turns.append(turn)
            return Reread(0.9 if turn else 0.1, 1.0)

        detector.read_again = read_again  # type: ignore[method-assign]
        found = detector.detect(photo())
        assert (found == [turned]) is read_turned
        assert turns[-1] == (quarter_turn(turned) if read_turned else 0.0)
        assert quarter_turn(turned) != 0.0


def test_the_face_mesh_reads_the_face_where_the_detector_found_it_turned_with_it() -> None:
    # A 40-pixel face a little above the middle of the detector's 128-pixel input, its eyes
    # level there; the input read from a 256-pixel region (2 image pixels a pixel).
    box = np.array([44.0, 40.0, 84.0, 80.0])
    level = np.array([[54.0, 55.0], [74.0, 55.0], [64.0, 62.0], [64.0, 70.0], [46, 58], [82, 58]])
    upright = mesh_region(box, level, Roi(300.0, 200.0, 256.0, 0.0))
    assert (upright.cx, upright.cy) == pytest.approx((300.0, 192.0))
    assert upright.side == pytest.approx(40 * 2 * 1.5) and upright.rotation == pytest.approx(0.0)
    # Read half a turn: the face is upright in the input, upside down in the image.
    turned = mesh_region(box, level, Roi(300.0, 200.0, 256.0, math.pi))
    assert (turned.cx, turned.cy) == pytest.approx((300.0, 208.0))
    assert abs(turned.rotation) == pytest.approx(math.pi)
    for turn in (math.pi / 2, -math.pi / 2):
        region = mesh_region(box, level, Roi(300.0, 200.0, 256.0, turn))
        assert region.rotation == pytest.approx(turn) and region.side == pytest.approx(120.0)
    # Eyes tilted in the input tilt the region by as much (MediaPipe's convention).
    tilted = level.copy()
    tilted[1] = [74.0, 75.0]
    assert mesh_region(box, tilted, Roi(300.0, 200.0, 256.0, 0.0)).rotation == pytest.approx(
        math.pi / 4
    )


def test_a_face_seen_turned_counts_only_where_the_face_mesh_sees_a_face() -> None:
    evidence = FaceEvidence()
    head = (120.0, 30.0, 200.0, 110.0)
    for image in (drawing(), photo()):
        rgb = np.asarray(image)
        # Any face score passes the bar here: the face mesh model sees no face in paper or
        # noise, so none counts.
        assert evidence.mesh_presence(rgb, evidence.read(rgb, head, math.pi / 2)) < 0.5
        assert evidence.turned_score(rgb, head, math.pi / 2, 0.0) == 0.0
    # Where the face mesh model says "a face" (at its seam), the detector's score counts
    # if it reaches the bar.
    rgb = np.asarray(photo(seed=3))
    score = evidence.score(rgb, head, math.pi / 2)
    evidence._mesh = lambda tensor: {"conv2d_31": np.full((1, 1, 1, 1), 5.0)}  # type: ignore[assignment]
    assert evidence.turned_score(rgb, head, math.pi / 2, 0.0) == pytest.approx(score)
    assert evidence.turned_score(rgb, head, math.pi / 2, score + 0.01) == 0.0
    # Upside down, the face detector alone decides; lying either way, the face mesh too.
    evidence._mesh = lambda tensor: {"conv2d_31": np.full((1, 1, 1, 1), -5.0)}  # type: ignore[assignment]
    assert evidence.turned_score(rgb, head, math.pi, 0.0) == pytest.approx(
        evidence.score(rgb, head, math.pi)
    )
    assert evidence.turned_score(rgb, head, -math.pi / 2, 0.0) == 0.0


def test_the_face_evidence_reads_a_turned_head_upright() -> None:
    evidence = FaceEvidence()
    rgb = np.asarray(photo(seed=3)).copy()
    head = (120.0, 30.0, 200.0, 110.0)
    upside_down = np.ascontiguousarray(rgb[::-1, ::-1])
    height, width = rgb.shape[:2]
    turned_head = (width - head[2], height - head[3], width - head[0], height - head[1])
    # Half a turn of the picture and of the crop: the detector reads the same pixels.
    assert evidence.score(upside_down, turned_head, math.pi) == pytest.approx(
        evidence.score(rgb, head), abs=0.02
    )


class _OneSidedModel:
    """A landmark model that sees a person only where the left half of its input is bright,
    and whose person mask is the input's bright pixels."""

    def __init__(self, landmarks: np.ndarray | None = None) -> None:
        self.inputs: list[np.ndarray] = []
        self.landmarks = np.zeros((33, 2)) if landmarks is None else landmarks

    def region_reading(self, tensor: np.ndarray, landmarks: bool = True) -> RegionReading:
        self.inputs.append(tensor)
        left = float(tensor[0, :, : tensor.shape[2] // 2].mean())
        right = float(tensor[0, :, tensor.shape[2] // 2 :].mean())
        mask = np.where(tensor[0].mean(axis=2) > 0.5, 10.0, -10.0)
        return RegionReading(
            1.0 if left > right else 0.0, mask, self.landmarks if landmarks else None
        )


def _limb_points(joints: np.ndarray) -> np.ndarray:
    steps = np.linspace(0.0, 1.0, 9)[:, None]
    return np.concatenate([joints[a] * (1 - steps) + joints[b] * steps for a, b in LIMBS])


def test_the_reread_is_the_mean_over_the_region_and_its_mirror_image() -> None:
    pose = scaled_pose(0.9)
    image = np.zeros((600, 500, 3), dtype=np.uint8)
    bright = 150  # bright on the figure's left of the picture: its left arm and leg
    image[:, :bright] = 255
    model = _OneSidedModel()
    seen = reread(model, image, pose)  # type: ignore[arg-type]
    assert seen.presence == pytest.approx(0.5)
    plain, mirrored = model.inputs
    assert np.allclose(plain[:, :, ::-1], mirrored)
    # Both readings' masks (the mirror's turned back) are where the picture is bright: the
    # coverage is the share of the limbs' points on the bright side, in the image's pixels.
    points = _limb_points(pose.array()[:, :2])
    assert 0.1 < seen.coverage < 0.9
    assert seen.coverage == pytest.approx(float((points[:, 0] < bright).mean()), abs=0.03)
    arr = pose.array().copy()
    arr[1:, 2] = 0.0
    assert reread(model, image, Pose.from_array(arr)) == Reread(0.0, 0.0)  # type: ignore[arg-type]


def test_limb_coverage_is_the_share_of_the_limbs_on_the_mask() -> None:
    joints = scaled_pose(0.9).array()[:, :2] / 2.5  # within a 256-pixel mask
    mask = np.full((256, 256), -5.0)
    assert limb_coverage(mask, joints) == 0.0
    mask[:, :] = 5.0
    assert limb_coverage(mask, joints) == 1.0
    middle = float(np.median(joints[:, 1]))
    mask[int(middle) :, :] = -5.0  # the person's upper half only
    points = _limb_points(joints)
    assert limb_coverage(mask, joints) == pytest.approx(float((points[:, 1] < middle).mean()))
    # Points beyond the mask do not count: the figure half out of it is covered where it
    # is inside; wholly out of it, nothing is.
    everywhere = np.full((256, 256), 5.0)
    assert limb_coverage(everywhere, joints + np.array([0.0, 100.0])) == 1.0
    assert limb_coverage(everywhere, joints + np.array([0.0, 400.0])) == 0.0


def test_in_a_photo_a_person_the_reread_does_not_see_is_dropped() -> None:
    # A face and a clear body are not enough where, read again from its own joints' region,
    # the landmark model sees nobody (the animals it was sure of from the detector's region).
    clear = scaled_pose(0.95)
    assert _detector_finding(clear, face=0.9, again=0.3).detect(photo()) == []
    assert _detector_finding(clear, face=0.9, again=0.9).detect(photo()) == [clear]
    # Read again, it must be as sure a person as its first reading was (the reader's
    # min_person_presence): MediaPipe's 0.5 let a donkey or a goose through at 0.5 to 0.65.
    assert _detector_finding(clear, face=0.9, again=0.7).detect(photo()) == []
    lenient = _detector_finding(clear, face=0.9, again=0.7, min_reread_presence=0.5)
    assert lenient.detect(photo()) == [clear]
    assert _detector_finding(clear, face=0.9, again=0.7, min_person_presence=0.6).detect(
        photo()
    ) == [clear]
    off = _detector_finding(clear, face=0.9, again=0.3, reread=False)
    assert off.detect(photo()) == [clear]
    # Seen with presence, but its person mask beside its limbs (a rat, a shelled walnut).
    beside = _detector_finding(clear, face=0.9, covered=MIN_LIMB_COVERAGE / 2)
    assert beside.detect(photo()) == []
    assert _detector_finding(clear, face=0.9, covered=0.9).detect(photo()) == [clear]
    # Drawings are the drawn-figure model's: no re-reading there.
    assert _detector_finding(scaled_pose(0.6), face=0.0, again=0.0).detect(drawing()) != []


def test_a_person_read_less_surely_again_is_kept_where_their_joints_are_read_alike() -> None:
    # Blur, shake or a coarse JPEG lower the presence on people too; their joints stay put
    # where the model reads them again, and an animal's, framed by joints made to fit it, do
    # not.
    clear = scaled_pose(0.95)
    assert _detector_finding(clear, face=0.9, again=0.7, agreed=0.9).detect(photo()) == [clear]
    assert _detector_finding(clear, face=0.9, again=0.7, agreed=0.5).detect(photo()) == []
    # Below MediaPipe's own bar for a person, no agreement keeps it; nor beside its mask.
    assert _detector_finding(clear, face=0.9, again=0.4, agreed=1.0).detect(photo()) == []
    assert (
        _detector_finding(clear, face=0.9, again=0.7, agreed=1.0, covered=0.1).detect(photo()) == []
    )
    # The bar is the reader's option; above 1 presence alone decides.
    strict = _detector_finding(clear, face=0.9, again=0.7, agreed=0.9, min_reread_agreement=0.95)
    assert strict.detect(photo()) == []
    off = _detector_finding(clear, face=0.9, again=0.7, agreed=1.0, min_reread_agreement=2.0)
    assert off.detect(photo()) == []
    # And the first gate still holds: no face and an unclear body go, however alike.
    assert _detector_finding(scaled_pose(0.6), face=0.1, agreed=1.0).detect(photo()) == []


def test_the_check_a_pose_fails_is_named() -> None:
    # What `benchmarks.where_lost` counts: the first check a pose fails, in the reader's order.
    rgb = np.asarray(photo())
    unclear, clear = scaled_pose(0.6), scaled_pose(0.95)
    assert _detector_finding(unclear, face=0.1).failed_check(rgb, unclear) == "face_or_body"
    # The first gate fails before the re-reading is asked (it would fail too).
    assert _detector_finding(unclear, face=0.1, again=0.0).failed_check(rgb, unclear) == (
        "face_or_body"
    )
    assert _detector_finding(clear, face=0.9, again=0.3).failed_check(rgb, clear) == "reread"
    assert _detector_finding(clear, face=0.9, again=0.9).failed_check(rgb, clear) is None
    # A face alone counts where asked (`faces_only`): a clear body without one does not.
    body_only = _detector_finding(clear, face=0.1)
    assert body_only.failed_check(rgb, clear) is None
    assert body_only.failed_check(rgb, clear, faces_only=True) == "face_or_body"
    assert (
        _detector_finding(clear, face=0.9, again=0.3, reread=False).failed_check(rgb, clear) is None
    )
    with pytest.raises(ValueError, match="no human evidence"):
        _detector_finding(clear, face=0.9, min_body_evidence=0.0).failed_check(rgb, clear)


def test_joint_agreement_counts_the_clearly_seen_joints_read_where_they_were() -> None:
    first = scaled_pose(0.9).array().copy()
    first[[15, 16], 2] = 0.3  # the ankles barely seen: they do not count
    width = first[:, 0].max() - first[:, 0].min()
    height = first[:, 1].max() - first[:, 1].min()
    size = max(1.2 * width, 1.35 * height)  # the keypoint box's longer side
    again = first[:, :2].copy()
    assert joint_agreement(first, again) == 1.0
    again[[0, 1, 2], 0] += 0.2 * size  # the head read elsewhere
    again[[15, 16], 0] += 0.5 * size  # the unseen ankles too
    assert joint_agreement(first, again) == pytest.approx(12 / 15)
    again[[9, 10], 1] += 0.09 * size  # the wrists, near enough
    assert joint_agreement(first, again) == pytest.approx(12 / 15)
    unseen = first.copy()
    unseen[:, 2] = 0.2
    assert joint_agreement(unseen, first[:, :2]) == 0.0


def test_the_reread_reads_the_joints_from_the_plain_region() -> None:
    pose = scaled_pose(0.9)
    region = own_region(pose)
    assert region is not None
    joints = image_points_to_roi(pose.array()[:, :2], region, LANDMARK_INPUT_SIZE)
    landmarks = np.zeros((33, 2))
    landmarks[list(BLAZEPOSE_TO_COCO17)] = joints  # the model reads each joint where it was
    image = np.zeros((600, 500, 3), dtype=np.uint8)
    assert reread(_OneSidedModel(landmarks), image, pose).agreement == 1.0  # type: ignore[arg-type]
    landmarks[list(BLAZEPOSE_TO_COCO17)] = joints + 40.0  # everything elsewhere
    assert reread(_OneSidedModel(landmarks), image, pose).agreement == 0.0  # type: ignore[arg-type]


# ---------------------------------------------------------------------- dim photos


def test_dim_photos_are_told_and_brightened() -> None:
    dark = photo(brightness=0.15)
    assert is_dim(dark) and not is_dim(photo())
    assert is_dim(Image.new("RGB", (100, 100), (128, 128, 128)))  # flat: no contrast at all
    lifted = brightened(dark)
    assert lifted is not None and lifted.size == dark.size and lifted.mode == "RGB"
    assert float(np.median(luminance(lifted))) == pytest.approx(TARGET_MEDIAN, abs=0.03)
    # As an exposure correction: a dark red stays red, brighter (not a grey of it).
    red = Image.new("RGB", (64, 64), (60, 8, 8))
    lit = brightened(red)
    assert lit is not None
    r, g, b = np.asarray(lit)[0, 0].astype(int)
    assert r > 120 and r > 1.8 * max(g, b)
    # Light and flat (a hazy photo): its local contrast raised, not its light lifted.
    hazy = Image.blend(photo(), Image.new("RGB", (320, 480), (230, 230, 230)), 0.75)
    assert is_dim(hazy)
    equalised = brightened(hazy)
    assert equalised is not None
    assert _local_contrast(equalised) > 2 * _local_contrast(hazy)
    assert abs(float(np.median(luminance(equalised))) - float(np.median(luminance(hazy)))) < 0.1
    # Light with contrast: nothing to brighten.
    assert brightened(photo()) is None


def test_a_camera_s_dark_frame_is_lifted_without_stretching_its_grain() -> None:
    # 0.5 % of the light: a few grey levels and shot noise, which a steep lift makes grain.
    dark = underexposed(photo(seed=3), 0.005, 10000.0, 3.0, seed=3)
    plain, smoothed = brightened(dark), brightened(dark, LIFT_SMOOTHING)
    assert plain is not None and smoothed is not None and LIFT_SMOOTHING > 0
    assert _grain(smoothed) < 0.5 * _grain(plain)
    for lifted in (plain, smoothed):  # lifted alike: the median luminance to the target
        assert float(np.median(luminance(lifted))) == pytest.approx(TARGET_MEDIAN, abs=0.05)
    with pytest.raises(ValueError, match="smoothing"):
        brightened(dark, -1.0)
    with pytest.raises(ValueError, match="lift_smoothing"):
        MediaPipePoseDetector(hands=False, lift_smoothing=-1.0)
    # The smoothing is part of what the reader is: a change re-reads the index.
    ids = {MediaPipePoseDetector(hands=False, lift_smoothing=s).model_id for s in (0.0, 1.0)}
    assert len(ids | {MediaPipePoseDetector(hands=False).model_id}) == 3


def test_the_reader_reads_the_smoothed_lift_and_the_medium_the_plain_one() -> None:
    dark = underexposed(photo(seed=4), 0.005, 10000.0, 3.0, seed=4)
    grains: list[float] = []

    def every_person(
        image: Image.Image, drawn: bool = False, is_person: object = None
    ) -> list[Pose]:
        grains.append(_grain(image))
        return []

    asked: list[Image.Image | None] = []

    def read_medium(image: Image.Image, reader: object, lifted: Image.Image | None = None):  # type: ignore[no-untyped-def]
        asked.append(lifted)
        return False, None

    plain, smoothed = brightened(dark), brightened(dark, LIFT_SMOOTHING)
    assert plain is not None and smoothed is not None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keypoints_module, "read_medium", read_medium)
        for smoothing, view in ((0.0, plain), (LIFT_SMOOTHING, smoothed)):
            detector = MediaPipePoseDetector(hands=False, lift_smoothing=smoothing)
            detector._every_person = every_person  # type: ignore[method-assign]
            detector._whole_image = lambda image: []  # type: ignore[method-assign]
            grains.clear()
            assert detector.detect(dark) == []
            assert grains[1] == pytest.approx(_grain(view))  # the second view: that lift
    # The medium decision is handed the plain lift, or lifts its own (None): never the
    # smoothed copy, which is flatter, as drawings are.
    assert asked[0] is not None and _grain(asked[0]) == pytest.approx(_grain(plain))
    assert asked[1] is None


def _grain(image: Image.Image) -> float:
    """The noise's standard deviation in grey levels (Immerkær's Laplacian estimate)."""
    import cv2

    grey = np.asarray(image.convert("L"), dtype=np.float64)
    mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    residual = cv2.filter2D(grey, -1, mask)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2) * np.abs(residual).mean() / 6.0)


def _local_contrast(image: Image.Image) -> float:
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    return float(np.abs(np.diff(grey, axis=1)).mean())


def test_a_dim_photo_is_also_read_brightened_and_poses_merge() -> None:
    pose = scaled_pose(0.95)
    seen: list[float] = []

    def every_person(
        image: Image.Image, drawn: bool = False, is_person: object = None
    ) -> list[Pose]:
        mean = float(luminance(image).mean())
        seen.append(mean)
        return [pose] if mean > 0.3 else []  # only the brightened view shows the person

    for enhance, expected in ((True, [pose]), (False, [])):
        detector = MediaPipePoseDetector(hands=False, enhance_dark=enhance)
        detector._every_person = every_person  # type: ignore[method-assign]
        detector._reread = lambda rgb, pose, turn=0.0: True  # type: ignore[method-assign]
        detector._whole_image = lambda image: []  # type: ignore[method-assign]
        assert detector.detect(photo(brightness=0.15)) == expected
    assert len(seen) == 3  # two views with the second reading, one without

    # Found in both views: one person, not two.
    detector = MediaPipePoseDetector(hands=False)
    detector._every_person = lambda image, drawn=False, is_person=None: [pose]  # type: ignore[method-assign]
    detector._reread = lambda rgb, pose, turn=0.0: True  # type: ignore[method-assign]
    assert detector.detect(photo(brightness=0.15)) == [pose]

    # Read in both views, the clearer reading stays, whichever view gave it.
    unsure = scaled_pose(0.88)  # a clear body too, but less sure
    for dark_view, lifted_view in ((unsure, pose), (pose, unsure)):
        detector._every_person = _by_view(dark_view, lifted_view)  # type: ignore[method-assign]
        assert detector.detect(photo(brightness=0.15)) == [pose]


def test_each_view_s_people_are_judged_in_that_view() -> None:
    # A face the dark frame shows and the lifted copy does not (a lifted copy is not always
    # the clearer): the person read in the dark view keeps the evidence of the dark view.
    pose = scaled_pose(0.6)  # no clear body: the face decides
    detector = _detector_finding(pose, face=0.0)
    detector._every_person = _by_view(pose, [])  # type: ignore[method-assign]
    assert detector._faces is not None

    def face_in_the_dark(rgb: np.ndarray, head: tuple[float, ...]) -> float:
        return 0.9 if float(rgb.mean()) < 0.3 * 255 else 0.1

    detector._faces.score = face_in_the_dark  # type: ignore[method-assign]
    assert detector.detect(photo(brightness=0.15)) == [pose]


def _by_view(dark: Pose | list[Pose], lifted: Pose | list[Pose]) -> Callable[..., list[Pose]]:
    """A person search that reads `dark` in a dark view and `lifted` in a brightened one
    (a pose, or a list of them)."""

    def every_person(
        image: Image.Image, drawn: bool = False, is_person: object = None
    ) -> list[Pose]:
        found = lifted if float(luminance(image).mean()) > 0.3 else dark
        return found if isinstance(found, list) else [found]

    return every_person


# ---------------------------------------------------------------------- refined region


def test_the_landmarks_give_their_own_region() -> None:
    landmarks = PersonLandmarks(
        landmarks=np.zeros((33, 3)),
        presence=1.0,
        alignment=np.array([[100.0, 200.0], [100.0, 120.0]]),  # hip, then straight up
    )
    roi = landmarks.refined_roi()
    assert roi is not None
    assert (roi.cx, roi.cy) == (100.0, 200.0)
    assert roi.side == pytest.approx(2 * 80 * 1.25)
    assert roi.rotation == pytest.approx(0.0, abs=1e-9)
    leaning = PersonLandmarks(
        landmarks=np.zeros((33, 3)),
        presence=1.0,
        alignment=np.array([[100.0, 200.0], [180.0, 200.0]]),  # lying to the right
    ).refined_roi()
    assert leaning is not None and abs(leaning.rotation) == pytest.approx(math.pi / 2)
    assert PersonLandmarks(np.zeros((33, 3)), 1.0).refined_roi() is None


# ---------------------------------------------------------------------- real photos


def _images_with_people(detector: MediaPipePoseDetector, folder: Path) -> int:
    return sum(
        bool(detector.detect(decode_image(path.read_bytes())[0]))
        for path in sorted(folder.glob("*.jpg"))
    )


def test_on_real_animal_photos_the_reread_drops_most_animals(tmp_path: Path) -> None:
    """Tux Paint's photographic animals set into photos of scenes (`make photos`): the
    held-out half, which no setting was chosen on."""
    if not (photo_negatives.STAMPS.is_dir() and photo_negatives.SCENES.is_dir()):
        pytest.skip("Debian's tuxpaint-stamps-default and tuxpaint-data are not installed")
    photo_negatives.build(tmp_path, kinds=("animals",))
    held_out = tmp_path / "animals" / "held_out"
    found = {
        reread: _images_with_people(
            keypoint_models.load("mediapipe", hands=False, reread=reread), held_out
        )
        for reread in (False, True)
    }
    assert found[False] >= 6  # without it, animals pass for people
    assert found[True] <= found[False] / 2


def _evalset_photos(evalset: Path) -> list[tuple[EvalImage, Image.Image]]:
    """The evalset's photos of people, each decoded once, with their annotations."""
    photos = [i for i in load_evalset(evalset) if i.medium == "photo" and i.people]
    return [(i, decode_image((evalset / i.file).read_bytes())[0]) for i in photos]


def _people_found(detector: KeypointDetector, pictures: list[tuple[EvalImage, Image.Image]]) -> int:
    """How many annotated people with ≥ 10 labelled joints `detector` finds in `pictures`."""
    return sum(
        m.labelled >= MIN_JOINTS_10PLUS and m.detection is not None
        for result in detect_pictures(detector, pictures)
        for m in result.matches
    )


def test_on_the_evalset_photos_the_reread_keeps_the_people(evalset: Path) -> None:
    pictures = _evalset_photos(evalset)
    matched = {
        again: _people_found(keypoint_models.load("mediapipe", hands=False, reread=again), pictures)
        for again in (False, True)
    }
    assert matched[False] >= 25
    assert matched[True] >= matched[False] - 1


def test_on_the_evalset_photos_turned_a_quarter_most_people_are_found_lying(
    evalset: Path,
) -> None:
    """Everyone lying on their side (`benchmarks.degraded_eval`'s `turn90`): before the
    lying were read turned upright, a third as many people were found as upright."""
    pictures = _evalset_photos(evalset)
    detector = keypoint_models.load("mediapipe", hands=False)
    found = {}
    for quarters in (0, 1):
        turn = degraded_eval.turned(quarters)
        found[quarters] = _people_found(
            detector, [turn(image, picture, 0) for image, picture in pictures]
        )
    assert found[0] >= 25
    assert found[1] >= found[0] / 2
