"""Line drawings traced from photos, for `benchmarks.drawn_eval`: the evalset's photo people
traced the way an artist traces a reference, their outline and the lines inside it.

Each person (≥ 10 labelled joints, a shoulder and a hip among them) is cut from the photo in
a square around their labelled joints; the mediapipe wheel's selfie segmentation model (a
real model, offline) says which pixels are the person; the tracing is the outline of that
region and the photo's edges inside it (Canny on the smoothed luminance: folds, hair, face,
the limbs' own edges: `pipelines.pose.drawn.tracing.trace_lines`, the tracing the `traced`
training style makes of painted bodies), drawn in dark strokes on white paper. Not a human
tracing: a human leaves out texture and closes the outline where the photo has no edge, and
the model trained on the same tracing of painted bodies. The figures measure
how the reader copes with a real person's outline full of interior lines.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from benchmarks.stick_renders import StickRender
from pipelines.pose.drawn.tracing import trace_lines
from pipelines.pose.wheel_models import WheelModel

SEGMENTATION = "selfie_segmentation/selfie_segmentation.tflite"
SEGMENTATION_INPUT = 256
MARGIN = 0.25  # of the labelled joints' box, each side
MIN_PERSON_SHARE = 0.03  # a mask smaller than this share of the square: nobody to trace
MIN_LINE = 0.03  # `alone`: a bit of edge shorter than this share of the tracing's side goes
JOINT_REACH = 0.02  # `alone`: a region this close to a labelled joint (share of the side) stays
PAPER = 400  # a small person is traced enlarged to at least this many pixels, as on paper
SHOULDERS, HIPS = (5, 6), (11, 12)

_segmenter = WheelModel(SEGMENTATION)


def person_mask(crop: Image.Image) -> npt.NDArray[np.bool_]:
    """The pixels of `crop` the selfie segmentation model takes for a person."""
    tensor = np.asarray(crop.convert("RGB").resize((SEGMENTATION_INPUT,) * 2), np.float64) / 255.0
    outputs = _segmenter(tensor[None])
    probability = next(iter(outputs.values()))[0, :, :, 0]
    resized = cv2.resize(probability.astype(np.float32), crop.size, interpolation=cv2.INTER_LINEAR)
    return np.asarray(resized > 0.5)


def trace(crop: Image.Image, mask: npt.NDArray[np.bool_], alone: bool = False) -> Image.Image:
    """Dark strokes on white: the mask's outline and the photo's edges inside it (`alone`:
    without the short bits of edge a tracer would not draw)."""
    lines: np.ndarray = trace_lines(np.asarray(crop.convert("L")), mask).astype(np.uint8)
    if alone:
        _, labels, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
        short = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < MIN_LINE * crop.size[0])
        lines[np.isin(labels, short[short > 0])] = 0
    width = max(1, round(crop.size[0] / 300))
    if width > 1:
        lines = cv2.dilate(lines, np.ones((width, width), np.uint8))
    page = np.where(lines > 0, 30, 255).astype(np.uint8)
    return Image.fromarray(page).convert("RGB")


def traced(
    photo: Image.Image, keypoints: npt.NDArray[np.float64], alone: bool = False
) -> StickRender | None:
    """`photo`'s person with these COCO-17 `keypoints` (pixels) traced, with the truth in the
    tracing's pixels (`alone`: see `tracings`); None where the person cannot be traced."""
    both = tracings(photo, keypoints)
    return None if both is None else both[alone]


def tracings(
    photo: Image.Image, keypoints: npt.NDArray[np.float64]
) -> tuple[StickRender, StickRender] | None:
    """`photo`'s person with these COCO-17 `keypoints` (pixels) traced two ways, from one
    segmentation, with the truth in the tracing's pixels: every person the segmentation sees
    in the square, as a tracer who traces the photo would; and alone, only the segmented
    regions that hold one of the person's labelled joints (people apart from them left out,
    as a tracer who traces the person would; a neighbour who touches them stays), without
    short bits of edge. None where the person cannot be traced (no shoulder or hip
    labelled, or the segmentation finds nobody in the square)."""
    square = _person_square(photo, keypoints, PAPER)
    if square is None:
        return None
    crop, mask, truth, trunk = square
    person = _regions_with_joints(mask, truth[truth[:, 2] > 0, :2])
    return (
        StickRender(trace(crop, mask), truth, trunk),
        StickRender(trace(crop, person, alone=True), truth, trunk),
    )


def _person_square(
    photo: Image.Image, keypoints: npt.NDArray[np.float64], paper: int
) -> tuple[Image.Image, npt.NDArray[np.bool_], npt.NDArray[np.float64], float] | None:
    """The square of `photo` around the person with these COCO-17 `keypoints` (their labelled
    joints' box, `MARGIN` more each side; enlarged to at least `paper` pixels), the pixels
    the segmentation model takes for people there, the truth in the square's pixels (score:
    labelled or not) and the trunk's length; None where the person cannot be cut (no
    shoulder or hip labelled, a tiny trunk, or the segmentation finds nobody)."""
    labelled = keypoints[:, 2] > 0
    if not labelled[list(SHOULDERS)].any() or not labelled[list(HIPS)].any():
        return None
    points = keypoints[labelled, :2]
    low, high = points.min(axis=0), points.max(axis=0)
    centre, side = (low + high) / 2, float((high - low).max()) * (1 + 2 * MARGIN)
    left, top = (centre - side / 2).round().astype(int)
    size = max(round(side), 16)
    crop = photo.convert("RGB").crop((left, top, left + size, top + size))  # pads with black
    scale = max(1.0, paper / size)
    if scale > 1:
        crop = crop.resize((round(size * scale),) * 2, Image.Resampling.BICUBIC)
    mask = person_mask(crop)
    if mask.mean() < MIN_PERSON_SHARE:
        return None
    truth = keypoints.astype(np.float64).copy()
    truth[:, 0] = (truth[:, 0] - left) * scale
    truth[:, 1] = (truth[:, 1] - top) * scale
    truth[:, 2] = labelled.astype(np.float64)
    neck = truth[[j for j in SHOULDERS if labelled[j]], :2].mean(axis=0)
    hip = truth[[j for j in HIPS if labelled[j]], :2].mean(axis=0)
    trunk = float(np.linalg.norm(neck - hip))
    if trunk < 4:
        return None
    return crop, mask, truth, trunk


def cut_out(
    photo: Image.Image, keypoints: npt.NDArray[np.float64]
) -> tuple[StickRender, StickRender] | None:
    """`photo`'s person with these COCO-17 `keypoints` two ways, from one segmentation, at
    the photo's own resolution: the square of the photo around them as it is, and the person
    cut out on white (the segmented regions that hold their labelled joints, as `tracings`
    traces them alone; the rest of the square white), a photo still, as a stock cut-out or
    a reference photo with its background removed is. None where the person cannot be cut."""
    square = _person_square(photo, keypoints, paper=0)
    if square is None:
        return None
    crop, mask, truth, trunk = square
    person = _regions_with_joints(mask, truth[truth[:, 2] > 0, :2])
    white = Image.new("RGB", crop.size, "white")
    image = Image.composite(crop, white, Image.fromarray(person.astype(np.uint8) * 255))
    return StickRender(crop, truth, trunk), StickRender(image, truth, trunk)


def _regions_with_joints(
    mask: npt.NDArray[np.bool_], joints: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """The connected regions of `mask` within reach of one of the `joints` (x, y pixels)."""
    _, labels = cv2.connectedComponents(mask.astype(np.uint8))
    reach = max(2, round(JOINT_REACH * mask.shape[0]))
    held = set()
    for x, y in joints.round().astype(int):
        y0, x0 = max(0, y - reach), max(0, x - reach)
        held |= set(np.unique(labels[y0 : y + reach + 1, x0 : x + reach + 1]).tolist())
    held.discard(0)
    return np.isin(labels, sorted(held))


Traced = list[tuple[str, Image.Image, StickRender]]  # (image file, tracing, truth)


def traced_people(
    people: list[tuple[str, npt.NDArray[np.float64]]], evalset: Path
) -> tuple[Traced, Traced]:
    """Each of `people` (evalset file, keypoints) that can be traced, traced from their photo
    and traced alone (see `tracings`)."""
    return _two_ways(people, evalset, tracings)


def cut_out_people(
    people: list[tuple[str, npt.NDArray[np.float64]]], evalset: Path
) -> tuple[Traced, Traced]:
    """Each of `people` (evalset file, keypoints) that can be cut out: their square of the
    photo as it is, and cut out on white (see `cut_out`)."""
    return _two_ways(people, evalset, cut_out)


def _two_ways(
    people: list[tuple[str, npt.NDArray[np.float64]]],
    evalset: Path,
    make: Callable[[Image.Image, npt.NDArray[np.float64]], tuple[StickRender, StickRender] | None],
) -> tuple[Traced, Traced]:
    """`make`'s two drawings (or photos) of each of `people` from their evalset photo, as
    two lists; people `make` gives nothing for are left out of both."""
    first: Traced = []
    second: Traced = []
    for file, keypoints in people:
        with Image.open(evalset / file) as photo:
            both = make(photo, keypoints)
        if both is not None:
            first.append((file, both[0].image, both[0]))
            second.append((file, both[1].image, both[1]))
    return first, second
