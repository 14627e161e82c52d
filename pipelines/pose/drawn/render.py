"""Drawings of a `Figure` in the styles people draw figures in, for training and testing the
drawn-figure reader.

- `stick`: a round head (outline, filled or a dot), a trunk line (or shoulder and hip bars),
  two-segment limbs; wobble, overshoot, repeated sketchy strokes, hands and feet now and then.
- `mannequin`: a wooden-mannequin construction drawing: an egg for the head, ovals for the
  rib cage and pelvis, capsules for the limbs, balls at the joints; parts drawn back to front,
  opaque (hiding what is behind) or see-through, outlined or shaded.
- `bean`: a bean figure, as in gesture drawing and much clip art: a big head, the trunk one
  filled or outlined oval, the limbs single lines, hands and feet small filled ovals.
- `child`: a child's drawing of a person: a big round head with a face (dot eyes, a smile,
  now and then hair), a box or dress for the body, or the whole body one chubby outline;
  limbs single lines or outlined tubes, round hands and feet.
- `contour`: the outline of the body's volume (tapered limbs, a trunk, a head), as traced
  from a photo; or the filled silhouette; or the outline with the limbs in front drawn over.
- `traced`: a line drawing traced from a photo: the body painted clothed (shirt, trousers,
  skin, hair, shoes, folds, patterns, light from one side) and traced, its outline and the
  edges inside it (`pipelines.pose.drawn.tracing`), with gaps where the pen lifted.

Every style varies stroke width, ink darkness (pencil to marker), paper, blur and noise, may
cut the figure at the canvas edge, and may add clutter strokes (a ground line, scribbles,
shapes). `scribbles` draws clutter alone: a drawing with nobody in it.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipelines.pose.drawn.figures import JOINTS, Figure
from pipelines.pose.drawn.strokes import face, polygon_ellipse, stroke
from pipelines.pose.drawn.styles import bean, child, contour, mannequin, stick
from pipelines.pose.drawn.tracing import traced

STYLES = ("stick", "mannequin", "contour", "bean", "child", "traced")
# The styles a render picks among when none is asked for, and how often: the first two training
# stages' drawings (the third adds `bean` figures of its own, `pipelines.pose.drawn.train`).
MIXED_STYLES, MIXED_SHARES = STYLES[:3], (0.4, 0.33, 0.27)


def render(
    figure: Figure, rng: np.random.Generator, style: str | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """(grey image in [0, 1], truth (13, 3) in its pixels, trunk in pixels)."""
    style = style or str(rng.choice(MIXED_STYLES, p=list(MIXED_SHARES)))
    extent = float(rng.uniform(110, 420))
    low, high = figure.bounds()
    scale = extent / max(float((high - low).max()), 1e-6)
    margin = rng.uniform(0.05, 0.35, 4) * extent
    size = ((high - low) * scale + margin[:2] + margin[2:]).astype(int) + 1
    placed = figure.transformed(scale, margin[:2] - low * scale)
    ink = Image.new("L", (int(size[0]), int(size[1])), 0)
    width = max(1, round(rng.uniform(0.004, 0.03) * extent))
    if style == "stick":
        stick(ImageDraw.Draw(ink), placed, rng, width)
    elif style == "mannequin":
        mannequin(ImageDraw.Draw(ink), placed, rng, width)
    elif style == "bean":
        bean(ImageDraw.Draw(ink), placed, rng, width)
    elif style == "child":
        ink = child(ink, placed, rng, width)
    elif style == "traced":
        ink = traced(ink, placed, rng, width)
    else:
        ink = contour(ink, placed, rng, width)
    if rng.random() < 0.35:
        _clutter(ImageDraw.Draw(ink), placed, rng, width)
    truth = placed.truth()
    grey, crop = _on_paper(ink, rng)
    truth[:, :2] -= crop
    h, w = grey.shape
    outside = (truth[:, 0] < 0) | (truth[:, 1] < 0) | (truth[:, 0] >= w) | (truth[:, 1] >= h)
    truth[outside, 2] = 0.0
    return grey, truth, placed.trunk


def scribbles(rng: np.random.Generator) -> np.ndarray:
    """A drawing with nobody in it: strokes, loops and shapes."""
    size = rng.integers(120, 420, 2)
    ink = Image.new("L", (int(size[0]), int(size[1])), 0)
    draw = ImageDraw.Draw(ink)
    width = max(1, round(rng.uniform(0.004, 0.03) * float(size.max())))
    for _ in range(int(rng.integers(2, 9))):
        _shape(draw, rng, size.astype(float), width)
    return _on_paper(ink, rng)[0]


def quadruped(rng: np.random.Generator, faces: bool = False) -> np.ndarray:
    """A drawn four-legged animal, drawn as bean figures are (an oval body, a round head,
    single-line legs, a tail): a drawing with nobody in it that a bean figure resembles.
    With `faces`, half of them have a child's-drawing face (dot eyes, a smile)."""
    length = float(rng.uniform(120, 300))
    size = np.array([length * 1.9, length * 1.5])
    ink = Image.new("L", (int(size[0]), int(size[1])), 0)
    draw = ImageDraw.Draw(ink)
    width = max(1, round(rng.uniform(0.008, 0.035) * length))
    facing = float(rng.choice([-1.0, 1.0]))
    tilt = float(rng.uniform(-0.35, 0.35))
    along = np.array([math.cos(tilt), math.sin(tilt)]) * facing  # tail to head
    down = np.array([-math.sin(tilt), math.cos(tilt)])
    centre = size * np.array([0.5, 0.45])
    half, thick = length / 2, length * rng.uniform(0.14, 0.3)
    filled = rng.random() < 0.5
    shade = int(rng.uniform(110, 255)) if filled else None
    body = polygon_ellipse(centre, half, thick, tilt)
    draw.polygon(body, fill=shade, outline=255, width=width)
    neck = centre + along * half * 0.8 - down * thick * 0.6
    head = neck + along * length * rng.uniform(0.05, 0.2) - down * length * rng.uniform(0.1, 0.3)
    head_r = length * rng.uniform(0.09, 0.17)
    stroke(draw, rng, [neck, head], width, length)
    draw.ellipse(
        [head[0] - head_r, head[1] - head_r * 0.8, head[0] + head_r, head[1] + head_r * 0.8],
        fill=shade,
        outline=255,
        width=width,
    )
    if faces and rng.random() < 0.5:  # animals have faces too, as children draw them
        face(draw, head, head_r * 0.8, rng, width, 0 if shade else 255)
    legs = length * rng.uniform(0.3, 0.6)
    for at in (-0.75, -0.5, 0.5, 0.75) if rng.random() < 0.5 else (-0.7, -0.35, 0.4, 0.7):
        hip = centre + along * half * at + down * thick * 0.7
        knee = hip + down * legs * 0.5 + along * rng.normal(0, 0.08) * legs
        foot = knee + down * legs * 0.5 + along * rng.normal(0, 0.12) * legs
        stroke(draw, rng, [hip, knee, foot], width, length)
    if rng.random() < 0.8:
        root = centre - along * half
        tip = root - along * length * rng.uniform(0.1, 0.35) - down * rng.normal(0, 0.2) * length
        stroke(draw, rng, [root, tip], width, length)
    grey, _ = _on_paper(ink, rng)
    return grey


def _shape(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: np.ndarray, width: int
) -> None:
    a = rng.uniform(0, 1, 2) * size
    kind = rng.random()
    if kind < 0.35:
        points = [a + rng.normal(0, 0.2, 2) * size for _ in range(int(rng.integers(2, 6)))]
        draw.line([tuple(q) for q in [a, *points]], fill=255, width=width, joint="curve")
    elif kind < 0.6:
        r = rng.uniform(0.03, 0.2) * size.min()
        draw.ellipse(
            [a[0] - r, a[1] - r, a[0] + r, a[1] + r],
            outline=255,
            width=width,
            fill=255 if rng.random() < 0.2 else None,
        )
    elif kind < 0.8:
        b = a + rng.uniform(0.05, 0.4, 2) * size
        draw.rectangle([tuple(a), tuple(b)], outline=255, width=width)
    else:
        r = rng.uniform(0.05, 0.3) * size.min()
        start = rng.uniform(0, 360)
        draw.arc(
            [a[0] - r, a[1] - r, a[0] + r, a[1] + r],
            start,
            start + rng.uniform(60, 300),
            fill=255,
            width=width,
        )


def _clutter(draw: ImageDraw.ImageDraw, f: Figure, rng: np.random.Generator, width: int) -> None:
    size = np.array(draw.im.size, dtype=float)
    if rng.random() < 0.5:  # a ground line under the feet
        feet = [f.xy[n] for n in ("left_ankle", "right_ankle") if n in f.xy]
        if feet:
            y = max(q[1] for q in feet) + rng.uniform(0, 0.1) * f.trunk
            x0, x1 = sorted(rng.uniform(0, 1, 2) * size[0])
            draw.line([(x0 - 0.2 * size[0], y), (x1 + 0.2 * size[0], y)], fill=255, width=width)
    for _ in range(int(rng.integers(0, 3))):
        _shape(draw, rng, size, width)


def _on_paper(ink: Image.Image, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(grey drawing in [0, 1], the (x, y) of its top-left corner in `ink`)."""
    if rng.random() < 0.5:
        ink = ink.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
    amount = np.asarray(ink, dtype=np.float32) / 255.0
    offset = np.zeros(2)
    if rng.random() < 0.12:  # the figure runs off the page: cut one side
        h, w = amount.shape
        side = int(rng.integers(0, 4))
        cut = rng.uniform(0.15, 0.4)
        if side == 0:
            amount = amount[: int(h * (1 - cut))]
        elif side == 1:
            amount, offset = amount[int(h * cut) :], np.array([0.0, int(h * cut)])
        elif side == 2:
            amount = amount[:, : int(w * (1 - cut))]
        else:
            amount, offset = amount[:, int(w * cut) :], np.array([int(w * cut), 0.0])
    paper = rng.uniform(0.82, 1.0)
    darkness = rng.uniform(0.45, 1.0) * paper
    grey = paper - darkness * amount
    grey = grey + rng.normal(0, rng.uniform(0, 0.04), grey.shape)
    if rng.random() < 0.05:  # chalk on a board
        grey = 1.0 - grey
    return np.clip(grey, 0.0, 1.0).astype(np.float32), offset


__all__ = ["JOINTS", "STYLES", "quadruped", "render", "scribbles"]
