"""The drawn-figure model: drawings it never trained on are read as figures, with their
joints in place; drawings of nobody are not; a drawing indexed by the real job gets its
figure and `medium = drawing`; the training recipe runs and its weights load."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from benchmarks.drawn_eval import TEST_SEED, drawn
from benchmarks.stick_renders import StickRender, pck
from pipelines.catalog import keypoint_models
from pipelines.pose.drawn.figures import FLIP, JOINTS, figure_from_keypoints, sample_figure
from pipelines.pose.drawn.ink import INPUT, STRIDE, decode, ink_crop
from pipelines.pose.drawn.reader import (
    DrawnFigureReader,
    committed_reader,
    mirror_agreement,
    turned_back,
)
from pipelines.pose.drawn.render import STYLES, scribbles
from pipelines.pose.keypoints import comparable_people
from pipelines.query import figure_agreement
from pipelines.records import COCO17_INDEX, Pose
from storage.store import Store
from tests.conftest import REPO
from tests.synthetic import STANDING, make_pose, transformed


def test_the_model_sees_the_ink_not_the_paper_grain() -> None:
    rng = np.random.default_rng(0)
    page = np.clip(0.9 + rng.normal(0, 0.03, (300, 400)), 0, 1).astype(np.float32)
    assert ink_crop(page) is None  # grain alone is no drawing
    page[100:200, 150:170] = 0.2  # a dark bar, 100 × 20
    x, crop = ink_crop(page)  # type: ignore[misc]
    assert x.shape == (INPUT, INPUT) and x.max() == pytest.approx(1.0)
    # The crop is the bar's square box with its margin, not the page.
    top_left, bottom_right = crop.to_drawing(np.array([[0.0, 0.0], [INPUT, INPUT]]))
    assert 80 < top_left[1] < 100 and 200 < bottom_right[1] < 220
    assert bottom_right[0] - top_left[0] < 130


def test_under_light_falling_off_across_the_page_the_ink_is_still_the_strokes() -> None:
    """A phone's photo of a sketch: the page darkens by half from left to right and towards
    a corner. The paper is the smooth surface under the strokes, so the crop still hugs the
    dark bar, and the evened page is one grey again."""
    from pipelines.pose.drawn.ink import evenly_lit, ink_of, paper_map

    rng = np.random.default_rng(1)
    h, w = 300, 400
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    light = 1.0 - 0.5 * x - 0.2 * (x - 0.3) ** 2 - 0.3 * y**2
    page = np.full((h, w), 0.9, np.float32)
    page[100:200, 150:170] = 0.2
    shot = np.clip(page * light + rng.normal(0, 0.01, page.shape), 0, 1).astype(np.float32)
    paper = paper_map(shot)
    assert np.abs(paper - 0.9 * light)[50:250].max() < 0.03  # the bar is no part of the paper
    ink, _ = ink_of(shot)
    assert (ink > 0.3)[100:200, 150:170].mean() > 0.95 and (ink > 0.12).mean() < 0.03
    even = evenly_lit(shot)
    assert np.percentile(even[:, :140], 99) - np.percentile(even[:, :140], 1) < 0.1
    _, crop = ink_crop(shot)  # type: ignore[misc]
    top_left, bottom_right = crop.to_drawing(np.array([[0.0, 0.0], [INPUT, INPUT]]))
    assert 80 < top_left[1] < 100 and 200 < bottom_right[1] < 220
    # On a page lit evenly the paper is its one grey, as the border's median says.
    flat = np.clip(0.9 + rng.normal(0, 0.02, (h, w)), 0, 1).astype(np.float32)
    assert np.abs(paper_map(flat) - 0.9).max() < 0.01


def test_drawings_photographed_by_a_phone_are_drawings_read_by_the_model() -> None:
    """Held-out stick and mannequin drawings as a phone photographs them (light falling off
    across the page, warm paper, noise, blur, JPEG: `benchmarks.sketch_pages`): drawings to
    the medium decision, read with their joints in place."""
    from benchmarks.sketch_pages import photographed

    drawings, read, pck_mean = _read_pages(
        TEST_SEED + 6, 12, lambda image, truth, rng: (photographed(image, rng), truth)
    )
    assert drawings >= 10 and read >= 10, (drawings, read)
    assert pck_mean >= 0.6, pck_mean
    assert "evenlight|rules|sheet" in committed_reader().tag  # the index re-reads its drawings


def test_the_rules_of_ruled_paper_are_no_ink_but_a_drawn_line_is() -> None:
    """Rules running edge to edge, several of them, are the paper's; one long line drawn
    across the page (a horizon) is the drawing's, and a stroke crossing a rule stays."""
    from pipelines.pose.drawn.ink import ink_of

    page = np.full((300, 400), 0.95, np.float32)
    page[::20, :] = 0.7  # light rules every 20 pixels
    page[100:200, 150:153] = 0.1  # a dark stroke down the page, crossing five rules
    ink, _ = ink_of(page)
    assert ink[::20][:, :140].max() == 0.0 and ink[::20][:, 160:].max() == 0.0
    assert (ink[100:200, 150:153] > 0.5).all()
    drawn = np.full((300, 400), 0.95, np.float32)
    drawn[150, 10:390] = 0.1  # one line across the page
    drawn[100:200, 150:153] = 0.1
    assert (ink_of(drawn)[0][150, 10:390] > 0.5).all()


def test_drawings_on_ruled_and_squared_paper_are_read() -> None:
    """Held-out stick and mannequin drawings on a notebook's ruled or squared paper
    (`benchmarks.sketch_pages`) are read with their joints in place."""
    from benchmarks.sketch_pages import on_ruled_paper

    _, read, pck_mean = _read_pages(
        TEST_SEED + 7,
        12,
        lambda image, truth, rng: (on_ruled_paper(image, rng, squared=rng.random() < 0.5), truth),
    )
    assert read >= 9, read
    assert pck_mean >= 0.6, pck_mean


def test_a_sheet_on_a_desk_is_found_but_not_a_page_or_a_wall() -> None:
    from pipelines.pose.drawn.ink import sheet_of

    rng = np.random.default_rng(2)
    desk = np.clip(0.35 + rng.normal(0, 0.03, (300, 400)), 0, 1).astype(np.float32)
    desk[40:260, 90:330] = 0.9  # the sheet
    desk[100:200, 200:205] = 0.1  # a stroke on it
    top, bottom, left, right = sheet_of(desk)  # type: ignore[misc]
    assert 40 <= top < 50 and 250 < bottom <= 260 and 90 <= left < 100 and 320 < right <= 330
    page = np.full((300, 400), 0.9, np.float32)
    page[100:200, 200:205] = 0.1
    assert sheet_of(page) is None  # the paper fills the picture
    wall = desk.copy()
    wall[:, 150:] = 0.9  # a bright wall running off the picture on three sides
    assert sheet_of(wall) is None


def test_drawings_photographed_lying_on_a_desk_are_read_on_the_sheet() -> None:
    """Held-out stick and mannequin drawings photographed on a desk (`benchmarks.sketch_pages`):
    drawings, read on the sheet, their joints in the picture's pixels."""
    from benchmarks.drawn_eval import _on_desk

    drawings, read, pck_mean = _read_pages(TEST_SEED + 8, 10, _on_desk)
    assert drawings >= 8 and read >= 8, (drawings, read)
    assert pck_mean >= 0.6, pck_mean


def _read_pages(
    seed: int,
    count: int,
    page: Callable[
        [Image.Image, StickRender, np.random.Generator], tuple[Image.Image, StickRender]
    ],
) -> tuple[int, int, float]:
    """Held-out stick and mannequin drawings (alternately) put on a `page`: how many the
    medium decision takes for drawings, how many the keypoint reader reads, and their mean
    PCK@0.2 against the pose drawn (moved with the drawing)."""
    from pipelines.pose.medium import medium_of

    detector = keypoint_models.load("mediapipe", hands=False)
    rng = np.random.default_rng(seed)
    drawings, read, scores = 0, 0, []
    for i in range(count):
        image, truth = drawn(sample_figure(rng), rng, STYLES[i % 2])
        picture, moved = page(image, truth, rng)
        drawings += medium_of(picture) == "drawing"
        people = detector.detect(picture)
        if people:
            read += 1
            scores.append(pck(people[0].array().astype(np.float64), moved))
    return drawings, read, float(np.mean(scores)) if scores else 0.0


def test_heatmap_peaks_decode_to_input_pixels() -> None:
    heat = np.zeros((len(JOINTS), INPUT // STRIDE, INPUT // STRIDE), np.float32)
    for j in range(len(JOINTS)):
        heat[j, j + 2, 2 * j + 1] = 0.8
    joints = decode(heat)
    assert np.allclose(joints[:, 0], (2 * np.arange(len(JOINTS)) + 1.5) * STRIDE - 0.5)
    assert np.allclose(joints[:, 1], (np.arange(len(JOINTS)) + 2.5) * STRIDE - 0.5)
    assert np.allclose(joints[:, 2], 0.8)


def test_a_labelled_pose_without_hips_cannot_be_drawn() -> None:
    keypoints = np.zeros((17, 3))
    keypoints[5:11] = (100, 100, 1)
    assert figure_from_keypoints(keypoints) is None


@pytest.fixture(scope="module")
def reader() -> DrawnFigureReader:
    return DrawnFigureReader()


@pytest.mark.parametrize("style", STYLES)
def test_held_out_drawings_are_read_with_their_joints_in_place(
    reader: DrawnFigureReader, style: str
) -> None:
    rng = np.random.default_rng(TEST_SEED + 1)
    found, scores = 0, []
    for _ in range(30):
        image, truth = drawn(sample_figure(rng), rng, style)
        reading = reader.read(image)
        if reading.shows_figure and reading.pose is not None:
            found += 1
            scores.append(pck(reading.pose.array().astype(np.float64), truth))
    assert found >= 24, f"{style}: {found} of 30 read as a figure"
    assert np.mean(scores) >= 0.6, f"{style}: PCK@0.2 {np.mean(scores):.2f}"


@pytest.fixture(scope="module")
def keypoint_reader() -> Any:
    return keypoint_models.load("mediapipe", hands=False)


@pytest.mark.parametrize("style", ["stick", "mannequin", "stick_thin", "stick_transparent"])
def test_drawings_from_a_renderer_the_model_never_saw_are_read(
    keypoint_reader: Any, style: str
) -> None:
    """The keypoint reader reads drawings made with PIL's lines and ellipses, sharing no code
    with the renders it learnt from (`benchmarks.other_renderer`), uploaded as files."""

    def figure(image: Image.Image) -> Pose | None:
        people = keypoint_reader.detect(image)
        return people[0] if people else None

    found, scores, count = _second_renderer(figure, style, 20, TEST_SEED + 1)
    assert found >= 0.85 * count, f"{style}: {found} of {count} read as a figure"
    assert np.mean(scores) >= 0.6, f"{style}: PCK@0.2 {np.mean(scores):.2f}"


def _second_renderer(
    read: Callable[[Image.Image], Pose | None], style: str, count: int, seed: int
) -> tuple[int, list[float], int]:
    """`count` held-out poses drawn in `style` by `benchmarks.other_renderer`, each decoded
    as an upload and read by `read`: (how many read as a figure, their PCK@0.2, count)."""
    from benchmarks.other_renderer import drawable, drawing, sampled_poses
    from pipelines.images import decode_image

    poses = [k for k in sampled_poses(2 * count) if drawable(k)][:count]
    rng = np.random.default_rng(seed)
    scores = []
    for keypoints in poses:
        data, truth = drawing(keypoints, style, rng)
        pose = read(decode_image(data)[0])
        if pose is not None:
            scores.append(pck(pose.array().astype(np.float64), truth))
    return len(scores), scores, len(poses)


@pytest.mark.parametrize(
    "style", ["stick_upside_down", "mannequin_upside_down", "stick_lying", "mannequin_lying"]
)
def test_a_figure_drawn_upside_down_or_lying_is_read_turned_back(
    reader: DrawnFigureReader, style: str
) -> None:
    """Handstands and figures lying on their side, drawn by the second renderer (held-out
    poses turned over or a quarter) and sent as queries: where the model sees no figure, the
    query reader reads the drawing again upside down and turned a quarter either way, and
    the joints come back in the drawing's pixels (7 to 8 in 10 were read before each turn
    was read; the index reads them as before)."""
    queries = reader.for_queries()

    def figure(image: Image.Image) -> Pose | None:
        reading = queries.read(image)
        return reading.pose if reading.shows_figure else None

    found, scores, count = _second_renderer(figure, style, 30, TEST_SEED + 9)
    assert found >= 0.9 * count, f"{found} of {count} read as a figure"
    assert np.mean(scores) >= 0.6, f"PCK@0.2 {np.mean(scores):.2f}"
    assert queries.tag.endswith("|turned0.9m0.5") and "turned" not in reader.tag


def test_a_figure_lying_down_is_read_turned_back_upright(reader: DrawnFigureReader) -> None:
    """Held-out stick and mannequin drawings turned a quarter (a figure lying down) are read
    as figures with their joints in place in the turned drawing: the first reading's feet
    lie beside its head, so the drawing is read again stood up."""
    rng = np.random.default_rng(TEST_SEED + 3)
    found, scores = 0, []
    for k in range(16):
        image, truth = drawn(sample_figure(rng), rng, STYLES[k % 2])
        width = image.width
        turned = image.rotate(90 if k % 4 < 2 else -90, expand=True, fillcolor="white")
        points = truth.truth.copy()
        if k % 4 < 2:  # a quarter counter-clockwise: (x, y) → (y, width − 1 − x)
            points[:, 0], points[:, 1] = truth.truth[:, 1], width - 1 - truth.truth[:, 0]
        else:  # clockwise: (x, y) → (height − 1 − y, x)
            points[:, 0], points[:, 1] = image.height - 1 - truth.truth[:, 1], truth.truth[:, 0]
        reading = reader.read(turned)
        if reading.shows_figure and reading.pose is not None:
            found += 1
            scores.append(
                pck(reading.pose.array().astype(np.float64), replace(truth, truth=points))
            )
    assert found >= 12, f"{found} of 16 turned drawings read as a figure"
    assert np.mean(scores) >= 0.6, f"PCK@0.2 {np.mean(scores):.2f}"
    assert "upright" in reader.tag


def test_turned_joints_map_back_to_the_drawings_pixels() -> None:
    drawing = np.zeros((5, 7))
    drawing[1, 2] = 1.0
    for quarters in (0, 1, 2, 3):
        row, col = np.argwhere(np.rot90(drawing, quarters) == 1.0)[0]
        back = turned_back(np.array([[col, row]], dtype=float), quarters, drawing.shape)
        np.testing.assert_allclose(back, [[2.0, 1.0]])


def _figure_joints(width: float) -> np.ndarray:
    """13 joints of a standing figure (the model's order), centred at x = width / 2."""
    joints = np.zeros((len(JOINTS), 3))
    for j, name in enumerate(JOINTS):
        side = -1 if name.startswith("left") else 1 if name.startswith("right") else 0
        height = {"nose": 20, "shoulder": 60, "elbow": 100, "wrist": 140, "hip": 150,
                  "knee": 220, "ankle": 290}[name.split("_")[-1]]  # fmt: skip
        # The arms reach out on the right only: the figure is not its own mirror image.
        reach = 30 + (150 if side == 1 and "wrist" in name else 0)
        joints[j] = (width / 2 + side * reach, height, 0.9)
    return joints


def test_the_mirror_reading_agrees_where_it_finds_the_same_joints() -> None:
    joints = _figure_joints(401)
    mirrored = joints.copy()
    mirrored[:, 0] = 400 - joints[:, 0]  # what a faithful reader finds in the mirror image
    assert mirror_agreement(joints, mirrored, 401) == 1.0
    # A drawing's sides are ambiguous: the same joints with left and right swapped agree.
    assert mirror_agreement(joints, mirrored[list(FLIP)], 401) == 1.0
    # A reading that does not move with the drawing misses the one arm held out.
    unmoved = mirror_agreement(joints, joints, 401)
    assert unmoved < 1.0
    scattered = mirrored.copy()
    scattered[: len(JOINTS) // 2 + 1, 1] += 150  # most joints somewhere else
    assert mirror_agreement(joints, scattered, 401) < 0.5


class _FakeReader(DrawnFigureReader):
    """The figure output always sure; the joints of the mirror image as `mirror` says."""

    def __init__(self, mirror: str, min_agreement: float = 0.5) -> None:
        super().__init__(min_agreement=min_agreement)
        self.mirror = mirror
        self.reads = 0

    def _joints(self, grey: np.ndarray) -> tuple[np.ndarray, float] | None:
        self.reads += 1
        joints = _figure_joints(grey.shape[1])
        if self.reads == 2 and self.mirror == "elsewhere":
            joints[:, 1] = joints[::-1, 1]  # upside down: the joints are guesses
        elif self.reads == 2:
            joints[:, 0] = grey.shape[1] - 1 - joints[:, 0]
        return joints, 0.95


def test_a_figure_the_mirror_image_reads_elsewhere_is_nobody() -> None:
    page = Image.new("RGB", (401, 300), "white")
    same = _FakeReader("same").read(page)
    assert same.shows_figure and same.agreement == 1.0
    elsewhere = _FakeReader("elsewhere").read(page)
    assert not elsewhere.shows_figure and elsewhere.agreement is not None
    assert elsewhere.agreement < 0.5 and elsewhere.figure == 0.95 and elsewhere.pose is not None
    unchecked = _FakeReader("elsewhere", min_agreement=0.0)
    assert unchecked.read(page).shows_figure and unchecked.reads == 1  # no mirror read
    assert "mirror" in DrawnFigureReader().tag
    assert "mirror" not in DrawnFigureReader(min_agreement=0.0).tag


class _TurnedFigureReader(DrawnFigureReader):
    """The figure output sure of a figure (`sure`) only in the drawing turned a quarter
    counter-clockwise (numpy's one quarter turn), unsure upright and at the other turns; the
    turned drawing's mirror image read as its mirror (`mirror="same"`) or with the joints
    elsewhere. Which view it is given it tells by where the drawing's corner mark lands."""

    def __init__(self, sure: float, mirror: str, **options: Any) -> None:
        super().__init__(**options)
        self.sure, self.mirror = sure, mirror
        self.views: list[str] = []

    def _joints(self, grey: np.ndarray) -> tuple[np.ndarray, float] | None:
        rows, cols = grey.shape
        y, x = np.unravel_index(int(np.argmin(grey)), grey.shape)
        corner = ("top" if y < rows / 2 else "bottom") + ("-left" if x < cols / 2 else "-right")
        view = {"bottom-left": "quarter", "bottom-right": "quarter mirrored"}.get(corner, corner)
        view = view if rows > cols else f"landscape {corner}"
        self.views.append(view)
        joints = _figure_joints(cols)
        if view == "quarter mirrored" and self.mirror == "same":
            joints[:, 0] = cols - 1 - joints[:, 0]
        elif view == "quarter mirrored":
            joints[:, 1] = joints[::-1, 1]  # upside down: the joints are guesses
        return joints, self.sure if view == "quarter" else 0.3


def test_a_query_figure_seen_only_turned_must_read_alike_from_its_mirror_image() -> None:
    """The query reader reads a drawing it sees no figure in at each quarter turn; the turn
    it is sure of counts only where the turned drawing's mirror image reads the same joints
    (a drawn animal stood on end is a figure to the figure output, its joints guesses)."""
    page = Image.new("RGB", (401, 300), "white")
    ImageDraw.Draw(page).rectangle((4, 4, 6, 6), fill="black")  # tells the views apart

    queries = DrawnFigureReader().for_queries()
    as_queries = {"min_agreement": 0.0, "turned": True, "min_heat": 0.0}
    assert as_queries == {k: getattr(queries, k) for k in as_queries}

    agreeing = _TurnedFigureReader(0.97, "same", **as_queries).read(page)
    assert agreeing.shows_figure and agreeing.figure == 0.97 and agreeing.pose is not None
    # Read turned, mapped back: the figure stands along the page's width, head to the right.
    joints = agreeing.pose.array()
    assert np.ptp(joints[:, 0]) > np.ptp(joints[:, 1])
    assert joints[COCO17_INDEX["nose"], 0] > joints[COCO17_INDEX["left_ankle"], 0]

    elsewhere = _TurnedFigureReader(0.97, "elsewhere", **as_queries)
    refused = elsewhere.read(page)
    assert not refused.shows_figure and refused.figure == 0.3
    assert "quarter mirrored" in elsewhere.views
    # A turn the model is less sure of than the turned bar is refused before any mirror read.
    unsure = _TurnedFigureReader(0.85, "same", **as_queries)
    assert not unsure.read(page).shows_figure
    assert sorted(unsure.views) == [
        "landscape bottom-right",
        "landscape top-left",
        "quarter",
        "top-right",
    ]
    # The index never reads a drawing turned when it sees no figure upright.
    indexer = _TurnedFigureReader(0.97, "same")
    assert not indexer.read(page).shows_figure and indexer.views == ["landscape top-left"]


class _FaintReader(DrawnFigureReader):
    """The figure output sure of a figure whose joints it reads with peaks of `heat`."""

    def __init__(self, heat: float, **options: Any) -> None:
        super().__init__(**options)
        self.heat = heat

    def _joints(self, grey: np.ndarray) -> tuple[np.ndarray, float] | None:
        joints = _figure_joints(grey.shape[1])
        joints[:, 2] = self.heat
        return joints, 0.95


def test_a_figure_whose_joints_are_faint_guesses_is_nobody_in_the_index() -> None:
    page = Image.new("RGB", (401, 300), "white")
    assert _FaintReader(0.9).read(page).shows_figure
    faint = _FaintReader(0.1).read(page)
    assert not faint.shows_figure and faint.figure == 0.95 and faint.pose is not None
    assert _FaintReader(0.1, min_heat=0.0).read(page).shows_figure
    # A query means a figure: its reader has no bar (nor the index's model id's tag).
    queries = DrawnFigureReader().for_queries()
    assert queries.min_heat == 0.0 and "heat" not in queries.tag
    assert "heat0.2" in DrawnFigureReader().tag
    assert "heat0.2" in keypoint_models.load("mediapipe", hands=False).model_id


def test_the_joint_heat_bar_keeps_every_drawn_figure_and_drops_shapes_that_are_none(
    tmp_path: Path, reader: DrawnFigureReader
) -> None:
    """Held-out renders of every training style (poses and seed no training used) read as
    figures keep their figure; of the figures the model sees on Tux Paint's stamps without
    people (the held-out half: letters, hats, toys, drawn animals, none trained on), a
    fifth or more are faint guesses the bar drops."""
    from benchmarks import drawn_negatives
    from benchmarks.drawn_eval import sampled_cases

    unbarred = DrawnFigureReader(min_heat=0.0)
    for name, items in sampled_cases(12).items():
        for image, _ in items:
            if unbarred.read(image).shows_figure:
                assert reader.read(image).shows_figure, name
    if not drawn_negatives.STAMPS.is_dir():
        pytest.skip("Debian's tuxpaint-stamps-default is not installed")
    drawn_negatives.build(tmp_path)
    stamps = [Image.open(p).convert("RGB") for p in sorted(tmp_path.glob("*/held_out/*.png"))]
    before = sum(unbarred.read(stamp).shows_figure for stamp in stamps)
    after = sum(reader.read(stamp).shows_figure for stamp in stamps)
    assert before >= 10 and after <= 0.8 * before


def test_on_drawn_stamps_nobody_trained_on_the_mirror_check_halves_the_figures(
    tmp_path: Path,
) -> None:
    """Tux Paint's stamps without people on white paper (`benchmarks.drawn_negatives`), the
    held-out half: letters, hats, chess pieces, drawn animals the figure output is sure of."""
    from benchmarks import drawn_negatives

    if not drawn_negatives.STAMPS.is_dir():
        pytest.skip("Debian's tuxpaint-stamps-default is not installed")
    drawn_negatives.build(tmp_path)
    stamps = sorted(tmp_path.glob("*/held_out/*.png"))
    figures = {}
    for agreement in (0.0, 0.5):
        reader = DrawnFigureReader(min_agreement=agreement, min_heat=0.0)  # the mirror alone
        figures[agreement] = sum(
            reader.read(Image.open(p).convert("RGB")).shows_figure for p in stamps
        )
    assert figures[0.0] >= 20  # without it, the figure output alone sees figures
    assert figures[0.5] <= 0.55 * figures[0.0]


def test_a_query_reader_sees_the_figures_the_mirror_check_leaves_out() -> None:
    """The search service reads queries with `for_queries`: the same joints, and a figure
    where the model's figure output alone sees one (someone sent it as a figure)."""
    indexer = keypoint_models.load("mediapipe", hands=False)
    queries = indexer.for_queries()
    assert "mirror" in indexer.model_id and "mirror" not in queries.model_id
    policeman = Image.open(REPO / "samples" / "corpus" / "policeman-stop.png").convert("RGB")
    assert indexer.detect(policeman) == []
    read = queries.detect(policeman)
    unchecked = DrawnFigureReader(min_agreement=0.0, min_heat=0.0).read(policeman)
    assert len(read) == 1 and read[0] == unchecked.pose
    assert queries._drawn is not None and indexer._drawn is not None
    assert queries._drawn._network is indexer._drawn._network  # one network, loaded once
    # Where both see the figure, both read the same joints.
    stick = Image.open(REPO / "samples" / "corpus" / "stickman-arms-up.png").convert("RGB")
    assert indexer.detect(stick) == queries.detect(stick) != []
    drawn_alone = keypoint_models.load("drawn")
    assert "mirror" not in drawn_alone.for_queries().model_id
    unchecked_alone = keypoint_models.load("drawn", min_agreement=0.0)
    assert "turned0.9" in unchecked_alone.for_queries().model_id  # reads turned too
    assert "turned" not in unchecked_alone.model_id and "turned" not in indexer.model_id


def test_a_speck_beside_a_drawn_figure_is_no_second_person(reader: DrawnFigureReader) -> None:
    """BlazePose reads the clip-art stick man with its arms up as a figure and a tiny
    "person" on a speck of ink below it, but not so in the mirror image: a person a fifth
    the figure's size makes no second figure, so the drawing is the model's one figure, read
    alike either way round (the mirror image's reading, reflected back)."""
    stick = Image.open(REPO / "samples" / "corpus" / "stickman-arms-up.png").convert("RGB")
    detector = keypoint_models.load("mediapipe", hands=False)
    read = detector.detect(stick)
    assert len(read) == 1
    model = reader.read(stick).pose
    assert model is not None and read[0] == model
    mirrored = detector.detect(ImageOps.mirror(stick))
    assert len(mirrored) == 1 and figure_agreement(read[0], mirrored[0], stick.width) == 1.0


def test_people_count_as_several_when_of_comparable_size() -> None:
    figure = transformed(make_pose(STANDING), scale=1.0)
    other = transformed(make_pose(STANDING), scale=0.5, dx=200.0)
    speck = transformed(make_pose(STANDING), scale=0.2, dx=300.0)
    assert comparable_people([figure, other, speck]) == [figure, other]
    assert comparable_people([speck]) == [speck]
    assert comparable_people([]) == []


def test_scribbles_are_nobody(reader: DrawnFigureReader) -> None:
    rng = np.random.default_rng(TEST_SEED + 2)
    figures = sum(
        reader.read(Image.fromarray((scribbles(rng) * 255).astype(np.uint8))).figure >= 0.5
        for _ in range(30)
    )
    assert figures <= 4


def test_a_drawn_animal_shape_is_not_a_person_for_the_keypoint_reader() -> None:
    """A four-legged body with a head on a neck and a tail (a drawn dog): BlazePose's
    candidates in a drawing need the drawn-figure model's yes."""
    image = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse([100, 100, 300, 170], outline="black", width=4)  # body
    draw.ellipse([280, 50, 340, 100], outline="black", width=4)  # head
    for x in (120, 150, 250, 280):
        draw.line([(x, 160), (x + 5, 250)], fill="black", width=4)  # legs
    draw.line([(100, 130), (50, 100)], fill="black", width=4)  # tail
    detector = keypoint_models.load("mediapipe", hands=False)
    assert detector.detect(image) == []


def _on_coarse_grain(image: Image.Image, seed: int) -> Image.Image:
    """`image` on textured paper: grain of ~10 grey levels, too coarse for a 3 × 3 median."""
    rng = np.random.default_rng(seed)
    grey = np.asarray(image.convert("L"), dtype=np.float64) * 0.85 + 20
    return Image.fromarray(np.clip(grey + rng.normal(0, 10.0, grey.shape), 0, 255).astype(np.uint8))


def test_a_figure_on_coarse_grained_paper_is_a_drawing_and_is_read_by_the_model() -> None:
    """Its statistics pass for a photo's; the page of one grey and the model's figure say
    drawing, and its joints come from the model (BlazePose reads drawings far worse)."""
    from pipelines.pose.human_evidence import looks_drawn
    from pipelines.pose.medium import medium_of

    detector = keypoint_models.load("mediapipe", hands=False)
    rng = np.random.default_rng(TEST_SEED + 4)
    read, scores = 0, []
    for i in range(8):
        image, truth = drawn(sample_figure(rng), rng, "mannequin")
        grainy = _on_coarse_grain(image, i)
        assert not looks_drawn(grainy)
        assert medium_of(grainy) == "drawing"
        people = detector.detect(grainy.convert("RGB"))
        if people:
            read += 1
            scores.append(pck(people[0].array().astype(np.float64), truth))
    assert read >= 7 and np.mean(scores) >= 0.6, (read, np.mean(scores) if scores else 0.0)


def test_coarse_grained_paper_with_no_figure_is_a_photo_without_people() -> None:
    from pipelines.pose.medium import medium_of

    rng = np.random.default_rng(TEST_SEED + 5)
    page = Image.fromarray((scribbles(rng) * 255).astype(np.uint8))
    grainy = _on_coarse_grain(page, 0)
    assert medium_of(grainy) == "photo"
    assert keypoint_models.load("mediapipe", hands=False).detect(grainy.convert("RGB")) == []


def test_the_keypoint_reader_says_which_drawn_model_it_uses() -> None:
    with_model = keypoint_models.load("mediapipe", hands=False)
    without = keypoint_models.load("mediapipe", hands=False, drawn_model=False)
    assert "drawn=drawn-v1-" in with_model.model_id and "drawn" not in without.model_id
    assert keypoint_models.load("drawn").model_id.startswith("drawn-figure(drawn-v1-")
    # The mirror check is part of the reading: without it, another model id.
    unchecked = keypoint_models.load("mediapipe", hands=False, drawn_mirror=False)
    assert "|mirror0.5@0.2" in with_model.model_id and "mirror" not in unchecked.model_id
    assert "mirror" not in keypoint_models.load("drawn", min_agreement=0.0).model_id


def test_other_drawn_figure_weights_are_read_and_named(tmp_path: Path) -> None:
    """A retraining is compared with the committed weights by naming its file: the reader
    uses it, and the keypoint model id says so (an index built with it is another model's)."""
    from pipelines.pose.drawn.reader import WEIGHTS

    other = tmp_path / WEIGHTS.name  # the name is in the id too: here the same
    other.write_bytes(WEIGHTS.read_bytes())
    committed = keypoint_models.load("mediapipe", hands=False)
    same = keypoint_models.load("mediapipe", hands=False, drawn_weights=str(other))
    assert same.model_id == committed.model_id  # the same bytes: the same model
    rng = np.random.default_rng(TEST_SEED + 4)
    image, _ = drawn(sample_figure(rng), rng, "mannequin")
    drawn_alone = keypoint_models.load("drawn", weights=str(other))
    assert drawn_alone.detect(image) == keypoint_models.load("drawn").detect(image)
    retrained = tmp_path / "retrained" / WEIGHTS.name  # other bytes (never loaded here)
    retrained.parent.mkdir()
    data = WEIGHTS.read_bytes()
    retrained.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    changed = keypoint_models.load("mediapipe", hands=False, drawn_weights=str(retrained))
    assert changed.model_id != committed.model_id


def test_a_drawing_in_a_batch_gets_its_figure_and_medium(
    tmp_path: Path, index_settings_for: Any
) -> None:
    from assets.indexing import index_folder

    folder = tmp_path / "drawings"
    folder.mkdir()
    rng = np.random.default_rng(TEST_SEED + 3)
    keypoints = np.zeros((17, 3))
    # A person standing with arms out, as COCO-17 (x, y, labelled).
    for i, xy in {
        5: (230, 150),
        6: (170, 150),
        7: (270, 170),
        8: (130, 170),
        9: (310, 180),
        10: (90, 180),
        11: (220, 260),
        12: (180, 260),
        13: (230, 340),
        14: (170, 340),
        15: (235, 420),
        16: (165, 420),
        0: (200, 100),
    }.items():
        keypoints[i] = (*xy, 1.0)
    figure = figure_from_keypoints(keypoints)
    assert figure is not None
    image, _ = drawn(figure, rng, "mannequin")
    # Clean ink on white, as the page's canvas gives it (the render's paper may be grainy).
    image.point(lambda v: 255 if v > 128 else 0).save(folder / "mannequin.png")
    settings = index_settings_for(tmp_path / "home", keypoint_model_options={"hands": False})
    assert index_folder(folder, settings, batch_id="drawn").success
    store = Store.at_home(tmp_path / "home")
    (record,) = store.images_for_batches(["drawn"])
    assert record.medium == "drawing"
    (found,) = store.keypoints_for_batches(["drawn"])
    assert len(found.people) == 1


def test_the_training_recipe_runs_and_its_weights_load(tmp_path: Path) -> None:
    from pipelines.pose.drawn.train import main

    out = tmp_path / "tiny.pt"
    args = ["--renders", "48", "--steps", "2", "--width", "16", "--clipart", str(tmp_path)]
    assert main([*args, "--cache", str(tmp_path / "cache"), "--out", str(out), "--check", "0"]) == 0
    reading = DrawnFigureReader(out).read(Image.new("RGB", (64, 64), "white"))
    assert reading.figure == 0.0 and reading.pose is None  # a blank page: no ink to read
    rng = np.random.default_rng(1)
    image, _ = drawn(sample_figure(rng), rng, "stick")
    assert DrawnFigureReader(out).read(image).pose is not None
    # The third stage, from those weights: bean figures, children's drawings, drawn animals.
    third = tmp_path / "third.pt"
    stage = ["--weak", "--beans", "4", "--children", "4", "--init", str(out), "--check", "0"]
    assert main([*args, *stage, "--cache", str(tmp_path / "cache"), "--out", str(third)]) == 0
    assert DrawnFigureReader(third).read(image).pose is not None
    # The fourth, from the third's: tracings of painted bodies, the clip art's line versions.
    fourth = tmp_path / "fourth.pt"
    stage = [*stage[:-4], "--traced", "4", "--init", str(third), "--check", "0"]
    assert main([*args, *stage, "--cache", str(tmp_path / "cache"), "--out", str(fourth)]) == 0
    assert DrawnFigureReader(fourth).read(image).pose is not None
    with pytest.raises(SystemExit):  # its figures come together, on the second stage's data
        main([*args, "--beans", "4", "--out", str(third)])
    with pytest.raises(SystemExit):  # the tracings come on the third stage's data
        main([*args, "--weak", "--traced", "4", "--out", str(fourth)])
