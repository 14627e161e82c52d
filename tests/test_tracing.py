"""Line drawings traced from photos: a tracing keeps the person's outline and the edges inside
it and nothing of the background; the benchmark's tracing of a photo person keeps their
joints in the tracing's pixels. (Tracings of painted bodies, the `traced` style, are read by
the model: `tests/test_drawn_figures.py`, over every style.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import benchmarks.traced as traced_module
from benchmarks.traced import PAPER, traced
from pipelines.pose.drawn.tracing import trace_lines


def test_a_tracing_keeps_the_outline_and_inner_edges_and_drops_the_background() -> None:
    grey = np.full((200, 200), 128, np.uint8)
    grey[20:60, 140:190] = 250  # a bright box in the background: not the person
    grey[60:180, 40:120] = 60  # the person: a dark body ...
    grey[110:180, 40:120] = 200  # ... in a dark shirt over light trousers
    mask = np.zeros((200, 200), bool)
    mask[60:180, 40:120] = True
    lines = trace_lines(grey, mask)
    assert lines[60:180, 38:43].any(axis=1).all(), "the outline's left side is traced"
    assert lines[107:113, 50:110].any(axis=0).mean() > 0.9, "the shirt's hem is traced"
    assert not lines[10:70, 130:200].any(), "the background's box is not traced"
    assert not lines[70:100, 50:110].any(), "a flat part of the body has no lines"


@pytest.fixture
def dark_is_a_person(monkeypatch: pytest.MonkeyPatch) -> None:
    """The segmentation model is the seam: here it says the person is the photo's dark."""
    monkeypatch.setattr(
        traced_module, "person_mask", lambda crop: np.asarray(crop.convert("L")) < 100
    )


def _standing() -> np.ndarray:
    """A person standing in the box (60, 40)–(100, 130): shoulders, hips, ankles labelled."""
    keypoints = np.zeros((17, 3))
    keypoints[[5, 6, 11, 12, 15, 16]] = [
        (65, 50, 2),
        (95, 50, 2),
        (70, 90, 2),
        (90, 90, 2),
        (70, 128, 2),
        (90, 128, 2),
    ]
    return keypoints


@pytest.mark.usefixtures("dark_is_a_person")
def test_a_photo_person_is_traced_enlarged_with_their_joints_in_the_tracing() -> None:
    photo = Image.new("RGB", (160, 160), (220, 220, 220))
    ImageDraw.Draw(photo).rectangle((60, 40, 100, 130), fill=(40, 40, 40))
    keypoints = _standing()
    result = traced(photo, keypoints)
    assert result is not None
    assert min(result.image.size) >= PAPER  # a small person is traced at paper size
    ink = np.asarray(result.image.convert("L")) < 128
    assert 0.002 < ink.mean() < 0.2  # lines, not a filled shape
    # The joints are moved and scaled with the photo: the shoulders 30 photo pixels apart,
    # the trunk 40, and the body's top edge (10 pixels above the shoulders) traced there.
    assert result.truth[5, 2] == 1 and result.truth[0, 2] == 0
    scale = (result.truth[6, 0] - result.truth[5, 0]) / 30
    assert scale == pytest.approx(min(result.image.size) / round(78 * 1.5), rel=0.05)
    assert result.trunk == pytest.approx(40 * scale, rel=0.05)
    top = int(result.truth[5, 1] - 10 * scale)
    column = int((result.truth[5, 0] + result.truth[6, 0]) / 2)
    assert ink[top - 4 : top + 4, column].any() and not ink[top + 8 : top + 20, column].any()


@pytest.mark.usefixtures("dark_is_a_person")
def test_a_person_traced_alone_leaves_their_neighbour_out() -> None:
    photo = Image.new("RGB", (200, 160), (220, 220, 220))
    draw = ImageDraw.Draw(photo)
    draw.rectangle((60, 40, 100, 130), fill=(40, 40, 40))  # the person
    draw.rectangle((106, 40, 130, 130), fill=(40, 40, 40))  # a neighbour beside them
    keypoints = _standing()
    both, alone = traced(photo, keypoints), traced(photo, keypoints, alone=True)
    assert both is not None and alone is not None
    scale = (both.truth[6, 0] - both.truth[5, 0]) / 30
    column = int(both.truth[6, 0] + 20 * scale)  # inside the neighbour, 15 px from its right edge
    row = int(both.truth[11, 1])
    ink_both = np.asarray(both.image.convert("L")) < 128
    ink_alone = np.asarray(alone.image.convert("L")) < 128
    assert ink_both[row, column : column + int(20 * scale)].any()
    assert not ink_alone[row, column : column + int(20 * scale)].any()
    assert ink_alone[row, :column].any()  # the person's own outline stays
    np.testing.assert_allclose(alone.truth, both.truth)


def test_a_person_without_a_shoulder_or_a_hip_is_not_traced() -> None:
    keypoints = np.zeros((17, 3))
    keypoints[[0, 15, 16]] = [(50, 20, 2), (40, 90, 2), (60, 90, 2)]
    assert traced(Image.new("RGB", (100, 100)), keypoints) is None


def test_the_evalsets_photo_people_are_traced_by_the_segmentation_model(evalset: Path) -> None:
    from benchmarks.drawn_eval import evalset_people
    from benchmarks.traced import traced_people

    people = evalset_people(evalset)
    cases, _ = traced_people(people, evalset)
    assert len(cases) >= 0.8 * len(people)  # the real model finds nearly every person
    for _, image, truth in cases:
        ink = np.asarray(image.convert("L")) < 128
        assert 0.005 < ink.mean() < 0.35  # line art on paper, not a photo or a blank page
        labelled = truth.truth[truth.truth[:, 2] > 0]
        assert (labelled[:, :2] >= 0).all() and (labelled[:, :2] < image.size[0]).all()


def test_the_evalsets_photo_people_are_cut_out_on_white(evalset: Path) -> None:
    from benchmarks.drawn_eval import evalset_people
    from benchmarks.traced import cut_out_people

    people = evalset_people(evalset)
    _, cases = cut_out_people(people, evalset)
    assert len(cases) >= 0.8 * len(people)
    for _, image, truth in cases:
        pixels = np.asarray(image.convert("RGB"))
        white = (pixels == 255).all(axis=2)
        assert 0.2 < white.mean() < 0.95  # the person and white paper around them
        person = pixels[~white]
        assert person.std() > 10  # the photo's own pixels, not a flat fill
        labelled = truth.truth[truth.truth[:, 2] > 0]
        assert (labelled[:, :2] >= 0).all() and (labelled[:, :2] < image.size[0]).all()
