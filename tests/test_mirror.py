"""Mirror search: a left-right flipped copy of a picture finds the picture, scored as identical.

The detector is not left-right symmetric (BlazePose's reading of a mirrored picture, reflected
back, lies 2.3 % of the figure's size from its reading of the picture, median on the evalset),
so an image query's mirror variant is the detector's own reading of the mirrored picture: the
reading the index holds for the picture whose mirror image was uploaded. The fake detector
here has such a bias built in, so reflecting its reading alone would not score 1.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageOps

from pipelines.catalog import keypoint_models
from pipelines.pose.embedding import GeometricPoseEmbedder
from pipelines.pose.keypoints import KeypointDetector
from pipelines.query import (
    NoFigureFoundError,
    figure_from_image,
    focus_joints,
    focus_pose,
    mirror_joints,
    mirror_pose,
)
from pipelines.records import COCO17_INDEX, COCO17_MIRROR, COCO17_NAMES, Pose
from serving.app import create_app
from tests.conftest import make_settings
from tests.synthetic import STANDING, make_pose, transformed

ASYMMETRIC_MODEL = "mirror-asymmetric-test"
WIDTH, HEIGHT = 200, 340
MARKER = 24  # side of the black square that says on which side the raised arm is
MISSED_ON_THE_LEFT = 1  # fill's green bit: the detector misses the figure when its marker is left
ANKLE_OUT = 2  # fill's green bit: the figure's right ankle is out of frame (score 0)


def picture(angle: int, marker_left: bool, flags: int = 0, seed: int = 0) -> Image.Image:
    """A synthetic picture the fake detector reads: the fill's red value is the raised arm's
    angle in degrees, its green value carries flags, the black square marks the arm's side;
    a few pale blocks make pictures tell apart (perceptual hashes)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (angle, 100 + flags, 200))
    draw = ImageDraw.Draw(image)
    rng = np.random.default_rng(seed)
    for _ in range(6):
        x, y = int(rng.integers(0, WIDTH - 40)), int(rng.integers(60, HEIGHT - 60))
        draw.rectangle((x, y, x + 40, y + 40), fill=(230, 230, int(rng.integers(150, 255))))
    x = 10 if marker_left else WIDTH - 10 - MARKER
    draw.rectangle((x, 10, x + MARKER - 1, 10 + MARKER - 1), fill=(0, 0, 0))
    return image


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


class AsymmetricDetector(KeypointDetector):
    """Reads `picture`s: a figure standing facing the viewer, the arm on the marker's side
    raised. Like BlazePose it is not left-right symmetric: it places the subject's left wrist
    and right knee a few pixels off in the picture's own x and y, whichever way the picture
    faces, so its reading of a mirrored picture is not the reflection of its reading."""

    name = ASYMMETRIC_MODEL

    @property
    def model_id(self) -> str:
        return f"{self.name}:v1"

    def detect(self, image: Image.Image) -> list[Pose]:
        pixels = np.asarray(image.convert("RGB")).astype(int)
        marker = np.argwhere(pixels.sum(axis=2) < 60)
        if marker.size == 0:
            return []
        marker_left = bool(marker[:, 1].mean() < image.width / 2)
        angle, green, _ = pixels[image.height - 1, image.width // 2]
        flags = int(green) - 100
        if flags & MISSED_ON_THE_LEFT and marker_left:
            return []
        scale = min(image.width / 100, image.height / 170)
        arr = make_pose(STANDING).array().astype(np.float64)
        # Facing the viewer, the subject's right arm is on the picture's left.
        side = "right" if marker_left else "left"
        outward = -1.0 if marker_left else 1.0
        shoulder = arr[COCO17_INDEX[f"{side}_shoulder"], :2]
        theta = np.radians(float(angle))
        for joint, reach in (("elbow", 22.0), ("wrist", 44.0)):
            direction = np.array([outward * np.sin(theta), np.cos(theta)])
            arr[COCO17_INDEX[f"{side}_{joint}"], :2] = shoulder + reach * direction
        arr[COCO17_INDEX["left_wrist"], 0] += 6.0  # the bias, in the picture's own frame
        arr[COCO17_INDEX["right_knee"], 1] += 5.0
        arr[:, :2] *= scale
        if flags & ANKLE_OUT:
            arr[COCO17_INDEX["right_ankle"], 2] = 0.0
        return [Pose.from_array(arr)]


if ASYMMETRIC_MODEL not in keypoint_models.names():
    keypoint_models.register(ASYMMETRIC_MODEL)(AsymmetricDetector)

EMBEDDER = GeometricPoseEmbedder()


def _random_pose(seed: int, unseen: int = 0) -> Pose:
    rng = np.random.default_rng(seed)
    arr = np.column_stack([rng.uniform(0, 400, 17), rng.uniform(0, 600, 17), np.ones(17)])
    arr[rng.choice(17, unseen, replace=False), 2] = 0.0
    extras = (("left_heel", 10.0, 20.0, 0.9), ("right_hand_index_tip", 30.0, 40.0, 0.8))
    return Pose.from_array(arr, extras=extras)


def _similarity(a: Pose, b: Pose) -> float:
    va, vb = EMBEDDER.embed(a), EMBEDDER.embed(b)
    assert va is not None and vb is not None
    return float(va @ vb)


# ---------------------------------------------------------------- the mirror of a pose


def test_mirror_pose_reflects_in_the_mirrored_pictures_frame() -> None:
    pose = _random_pose(0)
    mirrored = mirror_pose(pose, 400.0)
    arr, original = mirrored.array(), pose.array()
    for name in COCO17_NAMES:
        other = name.replace("left_", "#").replace("right_", "left_").replace("#", "right_")
        i, j = COCO17_INDEX[name], COCO17_INDEX[other]
        assert arr[i, 0] == pytest.approx(400.0 - original[j, 0])
        assert arr[i, 1:] == pytest.approx(original[j, 1:])
    assert mirrored.extras == (
        ("right_heel", 390.0, 20.0, 0.9),
        ("left_hand_index_tip", 370.0, 40.0, 0.8),
    )
    np.testing.assert_allclose(mirror_pose(mirrored, 400.0).array(), original, atol=1e-4)
    assert mirror_pose(mirrored, 400.0).extras == pose.extras
    # The frame is only a translation: about x = 0 it is the same pose for the embedding.
    assert _similarity(mirrored, mirror_pose(pose)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("unseen", [0, 3])
def test_mirroring_both_poses_keeps_their_similarity(unseen: int) -> None:
    """The embedding is exactly mirror-consistent: mirroring a query and a stored pose alike
    changes nothing, for the stored vectors and for the exact "don't care" re-scoring."""
    for seed in range(10):
        a, b = _random_pose(seed, unseen), _random_pose(100 + seed, unseen)
        assert _similarity(mirror_pose(a), mirror_pose(b)) == pytest.approx(
            _similarity(a, b), abs=1e-5
        )
        exact = EMBEDDER.similarity_to(a, b.array()[None])[0]
        mirrored = EMBEDDER.similarity_to(mirror_pose(a), mirror_pose(b).array()[None])[0]
        assert mirrored == pytest.approx(exact, abs=1e-5)


def test_a_mirror_image_of_a_chiral_pose_is_another_pose() -> None:
    pose = _random_pose(3)
    assert _similarity(pose, mirror_pose(pose)) < 0.9


def test_focus_commutes_with_the_mirror() -> None:
    left_arm = focus_joints(["left_arm"])
    assert mirror_joints(left_arm) == focus_joints(["right_arm"])
    assert mirror_joints(focus_joints(["head"])) == focus_joints(["head"])
    pose = _random_pose(4)
    np.testing.assert_allclose(
        mirror_pose(focus_pose(pose, left_arm)).array(),
        focus_pose(mirror_pose(pose), mirror_joints(left_arm)).array(),
    )


# ---------------------------------------------------------------- the figure of an image


class StubDetector(KeypointDetector):
    """Gives fixed readings of a picture and of its mirror image (told apart by a black
    pixel in the top-left corner); counts its calls."""

    name = "stub"

    def __init__(self, direct: list[Pose], mirrored: list[Pose]) -> None:
        self.direct, self.mirrored, self.calls = direct, mirrored, 0

    @property
    def model_id(self) -> str:
        return "stub"

    def detect(self, image: Image.Image) -> list[Pose]:
        self.calls += 1
        return self.direct if image.getpixel((0, 0)) == (0, 0, 0) else self.mirrored


def _stub_upload() -> bytes:
    image = Image.new("RGB", (300, 400), "white")
    image.putpixel((0, 0), (0, 0, 0))
    return png(image)


STANDING_POSE = transformed(make_pose(STANDING), scale=1.0, dx=40.0, dy=100.0)


def test_the_mirror_variant_is_the_detectors_reading_of_the_mirrored_picture() -> None:
    reading = transformed(mirror_pose(STANDING_POSE, 300.0), dx=3.0, dy=-2.0)  # read off a bit
    other = transformed(STANDING_POSE, dx=150.0)  # someone else, more prominent
    detector = StubDetector([STANDING_POSE], [other, reading])
    figure = figure_from_image(_stub_upload(), detector, mirror=True)
    assert figure.pose == STANDING_POSE and (figure.width, figure.height) == (300, 400)
    assert figure.mirrored == reading  # the same body, as read in the mirrored picture


def test_without_a_reading_of_the_same_body_the_reflection_stands_in() -> None:
    elsewhere = transformed(STANDING_POSE, dx=180.0)  # in the mirror image: another person
    figure = figure_from_image(_stub_upload(), StubDetector([STANDING_POSE], [elsewhere]), True)
    assert figure.mirrored == mirror_pose(STANDING_POSE, 300.0)
    figure = figure_from_image(_stub_upload(), StubDetector([STANDING_POSE], []), True)
    assert figure.mirrored == mirror_pose(STANDING_POSE, 300.0)


def test_a_figure_seen_only_in_the_mirrored_picture_is_the_query() -> None:
    reading = mirror_pose(STANDING_POSE, 300.0)
    figure = figure_from_image(_stub_upload(), StubDetector([], [reading]), mirror=True)
    assert figure.mirrored == reading
    np.testing.assert_allclose(figure.pose.array(), STANDING_POSE.array(), atol=1e-4)
    with pytest.raises(NoFigureFoundError):
        figure_from_image(_stub_upload(), StubDetector([], [reading]), mirror=False)
    with pytest.raises(NoFigureFoundError):
        figure_from_image(_stub_upload(), StubDetector([], []), mirror=True)


def test_no_mirror_no_second_detection() -> None:
    detector = StubDetector([STANDING_POSE], [STANDING_POSE])
    figure = figure_from_image(_stub_upload(), detector)
    assert figure.mirrored is None and detector.calls == 1
    assert figure.agreement is None and not figure.unsure  # nothing to compare with


def _limbs_moved(pose: Pose, width: float, names: list[str]) -> Pose:
    """`pose` as read in the mirrored picture, with the joints `names` read 80 px off."""
    arr = mirror_pose(pose, width).array().astype(np.float64)
    for name in names:
        arr[COCO17_INDEX[name], 0] += 80.0
    return Pose.from_array(arr)


def test_a_figure_read_alike_from_its_mirror_image_is_sure() -> None:
    read_off = transformed(mirror_pose(STANDING_POSE, 300.0), dx=2.0, dy=-1.0)
    figure = figure_from_image(_stub_upload(), StubDetector([STANDING_POSE], [read_off]), True)
    assert figure.agreement == 1.0 and not figure.unsure
    # Sides swapped (a drawing's front or back view) agree too.
    swapped = Pose.from_array(mirror_pose(STANDING_POSE, 300.0).array()[list(COCO17_MIRROR)])
    figure = figure_from_image(_stub_upload(), StubDetector([STANDING_POSE], [swapped]), True)
    assert figure.agreement == 1.0
    # One arm elsewhere: 11 of the 13 body joints agree.
    arm = ["left_elbow", "left_wrist"]
    figure = figure_from_image(
        _stub_upload(), StubDetector([STANDING_POSE], [_limbs_moved(STANDING_POSE, 300, arm)]), True
    )
    assert figure.agreement == pytest.approx(11 / 13) and not figure.unsure


def test_a_figure_read_otherwise_from_its_mirror_image_is_unsure() -> None:
    limbs = ["left_elbow", "left_wrist", "right_elbow", "right_wrist", "left_knee"]
    limbs += ["left_ankle", "right_knee", "right_ankle"]  # 8 of 13 joints elsewhere
    moved = _limbs_moved(STANDING_POSE, 300, limbs)
    figure = figure_from_image(_stub_upload(), StubDetector([STANDING_POSE], [moved]), True)
    assert figure.mirrored == moved  # still the same body (it shares the head)
    assert figure.agreement == pytest.approx(5 / 13) and figure.unsure
    # No reading of the same body in the mirrored picture, or a figure only it shows.
    figure = figure_from_image(_stub_upload(), StubDetector([STANDING_POSE], []), True)
    assert figure.agreement == 0.0 and figure.unsure
    only = mirror_pose(STANDING_POSE, 300.0)
    figure = figure_from_image(_stub_upload(), StubDetector([], [only]), True)
    assert figure.agreement == 0.0 and figure.unsure


# ---------------------------------------------------------------- through the API

PICTURES = {
    "raised-20.png": (20, True, 0),
    "raised-30.png": (30, False, 0),
    "raised-40.png": (40, True, ANKLE_OUT),
    "raised-50.png": (50, False, MISSED_ON_THE_LEFT),
    "raised-60.png": (60, True, 0),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, index_settings_for) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    from assets.indexing import index_folder

    root = tmp_path_factory.mktemp("mirror")
    (root / "pictures").mkdir()
    for seed, (name, (angle, marker_left, flags)) in enumerate(PICTURES.items()):
        picture(angle, marker_left, flags, seed).save(root / "pictures" / name)
    settings = index_settings_for(root / "home", keypoint_model=ASYMMETRIC_MODEL)
    assert index_folder(root / "pictures", settings, batch_id="mirror").success
    with TestClient(create_app(make_settings(root / "home", keypoint_model=ASYMMETRIC_MODEL))) as c:
        yield c


def _search(client: TestClient, image: Image.Image, **options: Any) -> list[dict[str, Any]]:
    body = {"image": base64.b64encode(png(image)).decode(), "k": 3, **options}
    response = client.post("/search", json=body)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def _flipped(name: str) -> Image.Image:
    angle, marker_left, flags = PICTURES[name]
    return ImageOps.mirror(picture(angle, marker_left, flags, list(PICTURES).index(name)))


def test_the_fake_detector_is_not_mirror_symmetric() -> None:
    """Reflecting the reading of a flipped copy does not give the original's reading back, so
    the test below needs the detector's own reading of the mirrored picture."""
    detector = AsymmetricDetector()
    original = detector.detect(picture(30, False))[0]
    reflected = mirror_pose(detector.detect(ImageOps.mirror(picture(30, False)))[0])
    assert _similarity(original, reflected) < 0.999


@pytest.mark.parametrize("name", list(PICTURES))
def test_a_flipped_copy_finds_its_picture_scored_as_identical(
    client: TestClient, name: str
) -> None:
    best = _search(client, _flipped(name), mirror=True)[0]
    assert Path(best["source_uri"]).name == name
    assert best["mirrored"] is True
    assert best["pose_raw"] == pytest.approx(1.0, abs=1e-5)
    # As identical as the picture itself sent as the query.
    itself = _search(client, ImageOps.mirror(_flipped(name)))[0]
    assert Path(itself["source_uri"]).name == name and itself["mirrored"] is False
    assert best["score"] == pytest.approx(itself["score"], abs=1e-5)


def test_a_flipped_copy_with_body_part_focus(client: TestClient) -> None:
    """The focus names the query figure's joints; its mirror image compares the mirrored ones."""
    for parts in (["left_arm", "head"], ["right_arm", "left_leg"], ["legs"]):
        best = _search(client, _flipped("raised-20.png"), mirror=True, joints=parts)[0]
        assert Path(best["source_uri"]).name == "raised-20.png", parts
        assert best["pose_raw"] == pytest.approx(1.0, abs=1e-5), parts
        # Standing legs look the same either way round: there the unmirrored pose ties.
        assert best["mirrored"] is (parts != ["legs"]), parts


def test_without_mirror_a_flipped_copy_is_another_pose(client: TestClient) -> None:
    results = _search(client, _flipped("raised-60.png"), k=5, mirror=False)
    assert all(not r["mirrored"] for r in results)
    itself = [r for r in results if Path(r["source_uri"]).name == "raised-60.png"]
    assert all(r["pose_raw"] < 0.95 for r in itself)


def test_the_unflipped_picture_is_not_marked_mirrored(client: TestClient) -> None:
    best = _search(client, ImageOps.mirror(_flipped("raised-60.png")), mirror=True)[0]
    assert Path(best["source_uri"]).name == "raised-60.png" and best["mirrored"] is False


def test_a_drawn_query_is_mirror_invariant_by_default(client: TestClient) -> None:
    # These flat-coloured pictures are drawings: left and right are ambiguous there (a front
    # or a back view), so without a `mirror` option the mirrored pose counts too.
    best = _search(client, _flipped("raised-60.png"))[0]
    assert Path(best["source_uri"]).name == "raised-60.png"
    assert best["mirrored"] is True and best["pose_raw"] == pytest.approx(1.0, abs=1e-5)
