"""Line drawings traced from a photo: a person's outline and the edges inside it.

`trace_lines` turns a picture and the mask of the person in it into the lines a tracing
keeps (the mask's outline, and the picture's edges inside it: clothing, folds, hair, the
face, the limbs crossing the body). `traced` is the `traced` drawing style: a figure painted
as a clothed body (shirt, trousers, skin, hair, shoes, patterns, folds, light from one side)
and traced that way, so the drawn-figure model learns outlines full of interior lines.
`benchmarks.traced` traces the evalset's real photos with the same `trace_lines`.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from pipelines.pose.drawn.figures import Figure
from pipelines.pose.drawn.strokes import polygon_ellipse
from pipelines.pose.drawn.styles import body_parts

BoolArray = npt.NDArray[np.bool_]


def trace_lines(
    grey: npt.NDArray[np.uint8],
    mask: BoolArray,
    low: float = 60.0,
    high: float = 140.0,
    outline_width: int = 2,
) -> BoolArray:
    """The lines a tracing of the person `mask` covers in `grey` keeps: the mask's outline
    and the picture's edges (Canny at `low` / `high` on the smoothed grey) inside it."""
    smooth = cv2.GaussianBlur(grey, (5, 5), 1.2)
    edges = cv2.Canny(smooth, low, high) > 0
    inside = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    outline = np.zeros(mask.shape, np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(outline, contours, -1, (1,), thickness=outline_width)
    return np.asarray((edges & inside) | (outline > 0))


def _clothing(part: str) -> str:
    """What a body part (a name of `body_parts`) is painted as."""
    if part in ("trunk", "head"):
        return "shirt" if part == "trunk" else "head"
    if part.endswith("shoulder"):
        return "sleeve"
    return "forearm" if part.endswith("elbow") else "trousers"  # the pelvis and the legs


def _paint(
    f: Figure, size: tuple[int, int], rng: np.random.Generator
) -> tuple[Image.Image, Image.Image]:
    """(grey picture, person mask) of `f` as a clothed body, parts painted back to front."""
    tone = {name: float(rng.uniform(0.1, 0.95)) for name in ("shirt", "trousers", "skin", "hair")}
    tone["sleeve"] = tone["shirt"] if rng.random() < 0.6 else tone["skin"]
    tone["forearm"] = tone["skin"] if rng.random() < 0.5 else tone["sleeve"]
    tone["head"] = tone["skin"]
    picture = Image.new("L", size, int(rng.uniform(0, 255)))
    mask = Image.new("L", size, 0)
    paint, cover = ImageDraw.Draw(picture), ImageDraw.Draw(mask)
    parts = body_parts(f, rng, rng.uniform(0.9, 1.5))
    for _, polygon, part in sorted(parts, key=lambda d: d[0]):
        value = np.clip(tone[_clothing(part)] + rng.normal(0, 0.05), 0, 1)
        paint.polygon(polygon, fill=int(value * 255))
        cover.polygon(polygon, fill=255)
    for _ in range(int(rng.integers(0, 4))):  # loose clothes: a skirt, a coat's tail, a hood
        at = f.xy[str(rng.choice(["pelvis", "neck", "left_hip", "right_hip", "pelvis"]))]
        cloth = polygon_ellipse(
            at + rng.normal(0, 0.15 * f.trunk, 2),
            f.trunk * rng.uniform(0.15, 0.45),
            f.trunk * rng.uniform(0.1, 0.35),
            float(rng.uniform(0, np.pi)),
        )
        paint.polygon(cloth, fill=int(tone[str(rng.choice(["shirt", "trousers"]))] * 255))
        cover.polygon(cloth, fill=255)
    r = f.head_radius
    for name, colour in (
        ("left_wrist", "skin"),
        ("right_wrist", "skin"),
        ("left_ankle", "shoe"),
        ("right_ankle", "shoe"),
    ):
        if name in f.xy and rng.random() < 0.8:
            value = tone.get(colour, float(rng.uniform(0, 0.5)))
            blob = polygon_ellipse(f.xy[name], r * 0.45, r * 0.3, float(rng.uniform(0, np.pi)))
            paint.polygon(blob, fill=int(value * 255))
            cover.polygon(blob, fill=255)
    head = f.xy["nose"]
    if rng.random() < 0.8:  # hair over the top of the head
        hair = polygon_ellipse(head - [0, r * 0.35], r * 1.0, r * 0.75, 0.0)
        paint.polygon(hair, fill=int(tone["hair"] * 255))
        cover.polygon(hair, fill=255)
        paint.ellipse(
            [head[0] - r * 0.7, head[1] - r * 0.4, head[0] + r * 0.7, head[1] + r],
            fill=int(tone["skin"] * 255),
        )
    if rng.random() < 0.7:  # eyes, a nose, a mouth
        for dx in (-0.3, 0.3):
            e = max(1.0, r * 0.1)
            x, y = head[0] + dx * r, head[1] + 0.1 * r
            paint.ellipse([x - e, y - e * 0.6, x + e, y + e * 0.6], fill=20)
        paint.line(
            [(head[0] - r * 0.25, head[1] + r * 0.6), (head[0] + r * 0.25, head[1] + r * 0.6)],
            fill=40,
            width=max(1, round(r * 0.06)),
        )
    _texture(paint, np.asarray(mask) > 0, f, rng)
    return picture, mask


def _texture(
    paint: ImageDraw.ImageDraw, mask: BoolArray, f: Figure, rng: np.random.Generator
) -> None:
    """Folds, seams and a pattern inside the body: what makes a tracing busier than an outline."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return
    width = max(1, round(f.trunk * 0.015))
    for _ in range(int(rng.integers(0, 30))):  # folds: short dark or light curves
        i = int(rng.integers(0, len(xs)))
        start = np.array([xs[i], ys[i]], float)
        bend = rng.normal(0, f.trunk * 0.05, 2)
        end = start + rng.normal(0, f.trunk * 0.12, 2)
        middle = (start + end) / 2 + bend
        shade = int(rng.uniform(0, 90)) if rng.random() < 0.7 else int(rng.uniform(170, 255))
        paint.line([tuple(start), tuple(middle), tuple(end)], fill=shade, width=width)
    if rng.random() < 0.3:  # stripes or checks on the clothes, cut to the body below
        step = max(3, round(f.trunk * rng.uniform(0.05, 0.15)))
        box = (xs.min(), ys.min(), xs.max(), ys.max())
        shade = int(rng.uniform(0, 255))
        for y in range(box[1], box[3], step):
            paint.line([(box[0], y), (box[2], y)], fill=shade, width=max(1, step // 3))


def traced(ink: Image.Image, f: Figure, rng: np.random.Generator, width: int) -> Image.Image:
    """`f` painted as a clothed body, lit from one side, and traced: lines as ink (255)."""
    picture, mask = _paint(f, ink.size, rng)
    grey = np.asarray(picture, np.float64) / 255.0
    h, w = grey.shape
    light = rng.uniform(-1, 1, 2)
    across = (np.arange(w)[None, :] / max(w, 1) - 0.5) * light[0]
    down = (np.arange(h)[:, None] / max(h, 1) - 0.5) * light[1]
    grey = grey * (1 + 0.4 * (across + down)) + rng.normal(0, 0.02, grey.shape)
    if rng.random() < 0.6:  # shadows and blotches: a field of low-frequency noise
        cells = rng.normal(0, rng.uniform(0.05, 0.3), (int(rng.integers(4, 16)),) * 2)
        grey = grey + cv2.resize(cells, (w, h), interpolation=cv2.INTER_CUBIC)
    grey = np.clip(grey, 0, 1)
    low = float(rng.uniform(20, 80))
    lines: np.ndarray = trace_lines(
        (grey * 255).astype(np.uint8), np.asarray(mask) > 0, low, low * rng.uniform(1.8, 3.0), 1
    ).astype(np.uint8)
    if rng.random() < 0.4:  # a tracer lifts the pen: gaps in the lines
        for _ in range(int(rng.integers(3, 12))):
            centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            cv2.circle(lines, centre, int(rng.uniform(0.02, 0.08) * f.trunk), (0,), -1)
    if width > 1:
        lines = cv2.dilate(lines, np.ones((width, width), np.uint8))
    return Image.fromarray(np.where(lines > 0, 255, 0).astype(np.uint8))
