"""Stick figures drawn from random poses, with the pose they were drawn from.

A pose is sampled within human proportions and joint ranges (trunk lean, shoulder and hip
swing, elbow and knee bend) and drawn the way people sketch one: a round head (an outline or
a filled disk), a line for the trunk, two-segment arms and legs, strokes 2–6 px wide with a
little wobble. `kind="open"` keeps the limbs apart (arms out or up, legs apart: the poses a
quick sketch shows); `kind="any"` lets arms cross the body and legs cross each other.

The ground truth follows the reader's convention for a drawing (facing the viewer: the limb
ending on the image's left is the figure's right); PCK takes the better of the two left/right
assignments, as a drawing's sides are ambiguous.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from pipelines.pose.figure_geometry import pck_either_side
from pipelines.records import COCO17_INDEX, COCO17_MIRROR


@dataclass(frozen=True)
class StickRender:
    image: Image.Image
    truth: np.ndarray  # (17, 3): x, y, labelled (nose, shoulders, elbows, wrists, hips, ...)
    trunk: float  # neck to hip, pixels: PCK's unit


def render(
    rng: np.random.Generator, kind: str = "open", size: tuple[int, int] = (400, 500)
) -> StickRender:
    trunk = float(rng.uniform(90, 140))
    lean = math.radians(rng.uniform(-25, 25))
    down = np.array([math.sin(lean), math.cos(lean)])
    neck = np.array([size[0] / 2 + rng.uniform(-30, 30), size[1] * 0.33])
    hip = neck + trunk * down
    radius = trunk * float(rng.uniform(0.2, 0.3))
    head = neck - down * (radius + 2)
    shoulder = neck + 0.12 * trunk * down
    arm_spread, arm_bend = (50, 70) if kind == "open" else (110, 150)
    leg_spread, leg_bend = (15, 60) if kind == "open" else (40, 110)

    def limb(
        start: np.ndarray, angle: float, upper: float, lower: float, spread: float, bend: float
    ) -> tuple[np.ndarray, np.ndarray]:
        a = angle + math.radians(rng.uniform(-spread, spread))
        mid = start + upper * np.array([math.sin(a), math.cos(a)])
        b = a + math.radians(rng.uniform(-bend, bend))
        return mid, mid + lower * np.array([math.sin(b), math.cos(b)])

    arms = [
        limb(
            shoulder, lean + s * math.radians(100), 0.45 * trunk, 0.42 * trunk, arm_spread, arm_bend
        )
        for s in (-1, 1)
    ]
    legs = [
        limb(hip, lean + s * math.radians(22), 0.55 * trunk, 0.5 * trunk, leg_spread, leg_bend)
        for s in (-1, 1)
    ]
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    width = int(rng.integers(2, 7))

    def stroke(points: list[np.ndarray]) -> None:
        wobbly = []
        for a, b in itertools.pairwise(points):
            for t in np.linspace(0, 1, 6)[:-1]:
                wobbly.append(tuple(a + t * (b - a) + rng.normal(0, 0.8, 2)))
        wobbly.append(tuple(points[-1]))
        draw.line(wobbly, fill="black", width=width, joint="curve")

    box = [head[0] - radius, head[1] - radius, head[0] + radius, head[1] + radius]
    if rng.random() < 0.25:
        draw.ellipse(box, fill="black")
    else:
        draw.ellipse(box, outline="black", width=width)
    stroke([neck, hip])
    for start, (mid, end) in [(shoulder, a) for a in arms] + [(hip, leg) for leg in legs]:
        stroke([start, mid, end])
    truth = np.zeros((17, 3))
    truth[COCO17_INDEX["nose"]] = (*head, 1)
    for (first, second), start, names in (
        (arms, shoulder, ("shoulder", "elbow", "wrist")),
        (legs, hip, ("hip", "knee", "ankle")),
    ):
        right, left = sorted((first, second), key=lambda limb_: limb_[1][0])
        for side, (mid, end) in (("right", right), ("left", left)):
            for name, point in zip(names, (start, mid, end), strict=True):
                truth[COCO17_INDEX[f"{side}_{name}"]] = (*point, 1)
    return StickRender(image, truth, trunk)


def pck(predicted: np.ndarray, render: StickRender, threshold: float = 0.2) -> float:
    """PCK@threshold × trunk over the drawn joints, the better of the two side assignments."""
    return pck_either_side(
        predicted, render.truth, COCO17_MIRROR, threshold * render.trunk, render.truth[:, 2] > 0
    )
