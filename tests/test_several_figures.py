"""Several figures in one drawing: ink drawn apart falls into groups (a head drawn apart from
its body, a prop or a speck is no second figure), each group the drawn-figure model sees a
figure in is read alone, and the keypoint reader returns every such figure; a single figure
is never split. (The figures are `python -m benchmarks.drawn_pairs`'s, not asserted here.)"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from benchmarks.drawn_pairs import pages
from pipelines.catalog import keypoint_models
from pipelines.pose.drawn.ink import ink_groups
from pipelines.pose.drawn.reader import (
    FIGURE_GAP,
    FIGURE_SIZE,
    DrawnFigureReader,
    DrawnReading,
)
from pipelines.pose.keypoints import MediaPipePoseDetector
from pipelines.records import Pose


def _stick(draw: ImageDraw.ImageDraw, x: int, head_gap: int = 0) -> None:
    """A stick figure 260 pixels tall centred at `x` (its head `head_gap` above the neck)."""
    draw.ellipse((x - 25, 20 - head_gap, x + 25, 70 - head_gap), outline="black", width=4)
    for line in ((x, 70, x, 180), (x, 100, x - 50, 150), (x, 100, x + 50, 150)):
        draw.line(line, fill="black", width=4)
    draw.line((x, 180, x - 40, 280), fill="black", width=4)
    draw.line((x, 180, x + 40, 280), fill="black", width=4)


def _page(*xs: int, width: int = 700, head_gap: int = 0, speck: bool = False) -> Image.Image:
    page = Image.new("RGB", (width, 300), "white")
    draw = ImageDraw.Draw(page)
    for x in xs:
        _stick(draw, x, head_gap)
    if speck:
        draw.ellipse((640, 250, 650, 260), fill="black")
    return page


def _grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def test_figures_drawn_apart_are_separate_groups_and_one_figure_is_one() -> None:
    assert len(ink_groups(_grey(_page(150, 500)), FIGURE_GAP, FIGURE_SIZE)) == 2
    assert len(ink_groups(_grey(_page(150)), FIGURE_GAP, FIGURE_SIZE)) == 1
    # A head drawn a little apart from its neck, and a speck, are no second figure.
    assert len(ink_groups(_grey(_page(150, head_gap=12, speck=True)), FIGURE_GAP, FIGURE_SIZE)) == 1
    assert ink_groups(_grey(Image.new("RGB", (100, 100), "white")), FIGURE_GAP, FIGURE_SIZE) == []


def _reader_seeing(figure_in: Any) -> DrawnFigureReader:
    """The reader with its model replaced: a group is a figure when `figure_in(grey)` says so,
    and its pose is its ink's centre (in the drawing's pixels: `grey` is read at `scale` and
    begins at `offset` in them)."""
    reader = DrawnFigureReader()

    def read(grey: np.ndarray, scale: float, offset: tuple[int, int] = (0, 0)) -> DrawnReading:
        rows, cols = np.nonzero(grey < 0.5)
        if not len(rows):
            return DrawnReading(0.0, None, False)
        x, y = cols.mean() / scale + offset[0], rows.mean() / scale + offset[1]
        pose = Pose.from_array(np.tile([x, y, 0.9], (17, 1)))
        shows = bool(figure_in(grey))
        return DrawnReading(0.9 if shows else 0.1, pose, shows)

    reader._read = read  # type: ignore[method-assign]
    return reader


def test_each_group_the_model_sees_a_figure_in_is_read_alone() -> None:
    figures = _reader_seeing(lambda grey: True).read_figures(_page(150, 500))
    assert len(figures) == 2
    centres = sorted(r.pose.array()[0, 0] for r in figures if r.pose is not None)
    assert abs(centres[0] - 150) < 20 and abs(centres[1] - 500) < 20
    # One group is no figure (an animal beside a person, say): the whole drawing's one reading.
    left_only = _reader_seeing(lambda grey: (grey[:, 400:] > 0.5).all() or grey.min() > 0.5)
    assert len(left_only.read_figures(_page(150, 500))) == 1
    assert len(_reader_seeing(lambda grey: True).read_figures(_page(150))) == 1


def test_the_keypoint_reader_returns_every_figure_drawn_apart() -> None:
    reader = _reader_seeing(lambda grey: True)
    for several, expected in ((True, 2), (False, 1)):
        detector = MediaPipePoseDetector(hands=False, several_figures=several)
        detector._drawn = reader
        detector._every_person = lambda image, drawn=False, is_person=None: []  # type: ignore[method-assign]
        detector._whole_image = lambda image: []  # type: ignore[method-assign]
        assert len(detector.detect(_page(150, 500))) == expected
    on = MediaPipePoseDetector(hands=False).model_id
    off = MediaPipePoseDetector(hands=False, several_figures=False).model_id
    assert f"figures=apart{FIGURE_GAP:g}|{FIGURE_SIZE:g}" in on and "figures=" not in off


def test_held_out_renders_side_by_side_are_read_as_two_figures() -> None:
    cases = pages(10)
    counts = {}
    for several in (True, False):
        detector = keypoint_models.load("mediapipe", hands=False, several_figures=several)
        counts[several] = [len(detector.detect(image)) for image, _ in cases["pairs"]]
        singles = [len(detector.detect(image)) for image, _ in cases["singles"]]
        assert max(singles) <= 1  # a single figure is never split
    assert max(counts[False]) <= 1
    assert sum(n == 2 for n in counts[True]) >= 5
