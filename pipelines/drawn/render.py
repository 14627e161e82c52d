"""Drawings of a `Figure` in the styles people draw figures in, for training and testing the
drawn-figure reader.

- `stick`: a round head (outline, filled or a dot), a trunk line (or shoulder and hip bars),
  two-segment limbs; wobble, overshoot, repeated sketchy strokes, hands and feet now and then.
- `mannequin`: a wooden-mannequin construction drawing: an egg for the head, ovals for the
  rib cage and pelvis, capsules for the limbs, balls at the joints; parts drawn back to front,
  opaque (hiding what is behind) or see-through, outlined or shaded.
- `bean`: a bean figure, as in gesture drawing and much clip art: a big head, the trunk one
  filled or outlined oval, the limbs single lines, hands and feet small filled ovals.
- `contour`: the outline of the body's volume (tapered limbs, a trunk, a head), as traced
  from a photo; or the filled silhouette; or the outline with the limbs in front drawn over.

Every style varies stroke width, ink darkness (pencil to marker), paper, blur and noise, may
cut the figure at the canvas edge, and may add clutter strokes (a ground line, scribbles,
shapes). `scribbles` draws clutter alone: a drawing with nobody in it.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipelines.drawn.figures import JOINTS, Figure

STYLES = ("stick", "mannequin", "contour", "bean")
# The styles a render picks among when none is asked for, and how often: the first two training
# stages' drawings (the third adds `bean` figures of its own, `pipelines.drawn.train`).
MIXED_STYLES, MIXED_SHARES = STYLES[:3], (0.4, 0.33, 0.27)
LIMBS = (
    ("left_shoulder", "left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow", "right_wrist"),
    ("left_hip", "left_knee", "left_ankle"),
    ("right_hip", "right_knee", "right_ankle"),
)


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
        _stick(ImageDraw.Draw(ink), placed, rng, width)
    elif style == "mannequin":
        _mannequin(ImageDraw.Draw(ink), placed, rng, width)
    elif style == "bean":
        _bean(ImageDraw.Draw(ink), placed, rng, width)
    else:
        ink = _contour(ink, placed, rng, width)
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


def quadruped(rng: np.random.Generator) -> np.ndarray:
    """A drawn four-legged animal, drawn as bean figures are (an oval body, a round head,
    single-line legs, a tail): a drawing with nobody in it that a bean figure resembles."""
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
    body = _polygon_ellipse(centre, half, thick, tilt)
    draw.polygon(body, fill=shade, outline=255, width=width)
    neck = centre + along * half * 0.8 - down * thick * 0.6
    head = neck + along * length * rng.uniform(0.05, 0.2) - down * length * rng.uniform(0.1, 0.3)
    head_r = length * rng.uniform(0.09, 0.17)
    _stroke(draw, rng, [neck, head], width, length)
    draw.ellipse(
        [head[0] - head_r, head[1] - head_r * 0.8, head[0] + head_r, head[1] + head_r * 0.8],
        fill=shade,
        outline=255,
        width=width,
    )
    legs = length * rng.uniform(0.3, 0.6)
    for at in (-0.75, -0.5, 0.5, 0.75) if rng.random() < 0.5 else (-0.7, -0.35, 0.4, 0.7):
        hip = centre + along * half * at + down * thick * 0.7
        knee = hip + down * legs * 0.5 + along * rng.normal(0, 0.08) * legs
        foot = knee + down * legs * 0.5 + along * rng.normal(0, 0.12) * legs
        _stroke(draw, rng, [hip, knee, foot], width, length)
    if rng.random() < 0.8:
        root = centre - along * half
        tip = root - along * length * rng.uniform(0.1, 0.35) - down * rng.normal(0, 0.2) * length
        _stroke(draw, rng, [root, tip], width, length)
    grey, _ = _on_paper(ink, rng)
    return grey


def _wobbly(rng: np.random.Generator, points: list[np.ndarray], amount: float) -> list[tuple]:
    out: list[tuple] = []
    for a, b in itertools.pairwise(points):
        length = float(np.linalg.norm(b - a))
        steps = max(2, int(length / 6))
        normal = np.array([-(b - a)[1], (b - a)[0]]) / max(length, 1e-6)
        phase, freq = rng.uniform(0, 2 * math.pi, 2), rng.uniform(0.5, 2.0, 2)
        for t in np.linspace(0, 1, steps)[:-1]:
            offset = amount * (
                math.sin(freq[0] * t * math.pi + phase[0])
                + 0.5 * math.sin(freq[1] * 3 * t * math.pi + phase[1])
            )
            out.append(tuple(a + t * (b - a) + normal * offset))
    out.append(tuple(points[-1]))
    return out


def _stroke(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    points: list[np.ndarray],
    width: int,
    scale: float,
) -> None:
    points = [np.asarray(p, dtype=float) for p in points]
    if rng.random() < 0.4:  # overshoot at either end
        for i, j in ((0, 1), (-1, -2)):
            d = points[i] - points[j]
            points[i] = points[i] + d * rng.uniform(0, 0.12)
    passes = 1 if rng.random() < 0.7 else int(rng.integers(2, 4))
    for _ in range(passes):
        jitter = rng.normal(0, 0.01 * scale, 2) if passes > 1 else np.zeros(2)
        line = _wobbly(rng, [p + jitter for p in points], rng.uniform(0, 0.015) * scale)
        shade = 255 if passes == 1 else int(rng.uniform(140, 255))
        draw.line(line, fill=shade, width=width, joint="curve")


def _stick(draw: ImageDraw.ImageDraw, f: Figure, rng: np.random.Generator, width: int) -> None:
    p, s = f.xy, f.trunk
    one_point = rng.random() < 0.5  # arms from one point below the neck, legs from the pelvis
    if one_point:
        top = p["neck"] + (p["pelvis"] - p["neck"]) * rng.uniform(0.0, 0.2)
        for side in ("left", "right"):
            p[f"{side}_shoulder"], p[f"{side}_hip"] = top.copy(), p["pelvis"].copy()
    head_r = f.head_radius * rng.uniform(0.8, 1.3)
    neck_top = (
        p["nose"]
        + (p["neck"] - p["nose"]) / max(float(np.linalg.norm(p["neck"] - p["nose"])), 1e-6) * head_r
    )
    kind = rng.random()
    box = [
        p["nose"][0] - head_r,
        p["nose"][1] - head_r,
        p["nose"][0] + head_r,
        p["nose"][1] + head_r,
    ]
    if kind < 0.65:
        draw.ellipse(box, outline=255, width=width)
    elif kind < 0.9:
        draw.ellipse(box, fill=255)
    else:
        neck_top = p["nose"]
        small = max(width * 1.5, head_r * 0.4)
        draw.ellipse(
            [
                p["nose"][0] - small,
                p["nose"][1] - small,
                p["nose"][0] + small,
                p["nose"][1] + small,
            ],
            fill=255,
        )
    _stroke(draw, rng, [neck_top, p["pelvis"]], width, s)
    if not one_point:
        _stroke(draw, rng, [p["left_shoulder"], p["right_shoulder"]], width, s)
        if rng.random() < 0.5:
            _stroke(draw, rng, [p["left_hip"], p["right_hip"]], width, s)
    for limb in LIMBS:
        points = [p[name] for name in limb if name in p]
        if len(points) >= 2:
            _stroke(draw, rng, points, width, s)
    if rng.random() < 0.3:
        for end in ("left_wrist", "right_wrist"):
            if end in p:
                r = max(width, 0.06 * s)
                draw.ellipse(
                    [p[end][0] - r, p[end][1] - r, p[end][0] + r, p[end][1] + r],
                    outline=255,
                    width=width,
                )
    if rng.random() < 0.3:
        for knee, ankle in (("left_knee", "left_ankle"), ("right_knee", "right_ankle")):
            if knee in p and ankle in p:
                sideways = np.array([rng.choice([-1, 1]) * 0.18 * s, 0.0])
                _stroke(draw, rng, [p[ankle], p[ankle] + sideways], width, s)


def _bean(draw: ImageDraw.ImageDraw, f: Figure, rng: np.random.Generator, width: int) -> None:
    p, s = f.xy, f.trunk
    filled = rng.random() < 0.75
    shade = int(rng.uniform(110, 255)) if filled else 0  # a coloured fill, seen as a grey
    axis = p["neck"] - p["pelvis"]
    angle = math.atan2(axis[1], axis[0])
    top = p["neck"] - axis * rng.uniform(0.0, 0.12)
    bottom = p["pelvis"] + axis * rng.uniform(-0.05, 0.12)
    torso = _polygon_ellipse(
        (top + bottom) / 2,
        float(np.linalg.norm(top - bottom)) / 2,
        s * rng.uniform(0.16, 0.34),
        angle,
    )
    draw.polygon(torso, fill=shade if filled else None, outline=255, width=width)
    head_r = f.head_radius * rng.uniform(1.0, 1.7)
    gap = head_r * rng.uniform(0.0, 0.4)  # the head floats off the trunk, or sits on it
    head = p["nose"] + (p["nose"] - p["neck"]) / max(float(np.linalg.norm(axis)), 1e-6) * gap
    draw.ellipse(
        [head[0] - head_r, head[1] - head_r, head[0] + head_r, head[1] + head_r],
        fill=shade if rng.random() < 0.8 else None,
        outline=255,
        width=width,
    )
    ends = rng.random() < 0.75
    r_end = s * rng.uniform(0.05, 0.1)
    for limb in LIMBS:
        points = [p[name] for name in limb if name in p]
        if len(points) < 2:
            continue
        _stroke(draw, rng, points, width, s)
        if ends and limb[-1] in p:
            d = p[limb[-1]] - points[-2]
            end = p[limb[-1]] + d / max(float(np.linalg.norm(d)), 1e-6) * r_end * 0.6
            draw.polygon(
                _polygon_ellipse(end, r_end * 1.3, r_end * 0.8, math.atan2(d[1], d[0])),
                fill=shade if filled else 255,
            )


def _polygon_ellipse(centre: np.ndarray, a: float, b: float, angle: float) -> list[tuple]:
    t = np.linspace(0, 2 * math.pi, 28, endpoint=False)
    c, s = math.cos(angle), math.sin(angle)
    x, y = a * np.cos(t), b * np.sin(t)
    return [
        (centre[0] + c * xi - s * yi, centre[1] + s * xi + c * yi)
        for xi, yi in zip(x, y, strict=True)
    ]


def _capsule(a: np.ndarray, b: np.ndarray, ra: float, rb: float) -> list[tuple]:
    d = b - a
    angle = math.atan2(d[1], d[0])
    out = []
    for t in np.linspace(-math.pi / 2, math.pi / 2, 9):
        out.append((b[0] + rb * math.cos(angle + t), b[1] + rb * math.sin(angle + t)))
    for t in np.linspace(math.pi / 2, 3 * math.pi / 2, 9):
        out.append((a[0] + ra * math.cos(angle + t), a[1] + ra * math.sin(angle + t)))
    return out


def _parts(f: Figure, rng: np.random.Generator, bulk: float) -> list[tuple[float, list[tuple]]]:
    """(depth, polygon) of each body part, with widths in units of the trunk × `bulk`."""
    p, s, z = f.xy, f.trunk * bulk, f.depth
    axis = p["neck"] - p["pelvis"]
    angle = math.atan2(axis[1], axis[0]) + math.pi / 2
    shoulder_w = float(np.linalg.norm(p["left_shoulder"] - p["right_shoulder"]))
    hip_w = float(np.linalg.norm(p["left_hip"] - p["right_hip"]))
    parts = [
        (
            z["neck"] - 0.01,
            _polygon_ellipse(
                p["neck"] * 0.62 + p["pelvis"] * 0.38,
                max(shoulder_w * 0.6, 0.2 * s),
                0.36 * f.trunk,
                angle,
            ),
        ),
        (
            z["pelvis"],
            _polygon_ellipse(p["pelvis"], max(hip_w * 0.8, 0.2 * s), 0.2 * f.trunk, angle),
        ),
        (
            z["nose"],
            _polygon_ellipse(
                p["nose"], f.head_radius * 0.85, f.head_radius * rng.uniform(1.0, 1.25), angle
            ),
        ),
    ]
    radii = {
        "shoulder": 0.11,
        "elbow": 0.085,
        "wrist": 0.06,
        "hip": 0.16,
        "knee": 0.11,
        "ankle": 0.07,
    }
    for limb in LIMBS:
        for a, b in itertools.pairwise(limb):
            if a in p and b in p:
                ra, rb = (radii[n.split("_")[1]] * s for n in (a, b))
                parts.append(((z.get(a, 0) + z.get(b, 0)) / 2, _capsule(p[a], p[b], ra, rb)))
    return parts


def _mannequin(draw: ImageDraw.ImageDraw, f: Figure, rng: np.random.Generator, width: int) -> None:
    opaque, shaded = rng.random() < 0.65, rng.random() < 0.3
    for _, polygon in sorted(_parts(f, rng, rng.uniform(0.8, 1.3)), key=lambda d: d[0]):
        fill = int(rng.uniform(40, 160)) if shaded else 0
        draw.polygon(polygon, fill=fill if (opaque or shaded) else None, outline=255, width=width)
    if rng.random() < 0.5:
        r = 0.06 * f.trunk
        for name in (
            "left_elbow",
            "right_elbow",
            "left_knee",
            "right_knee",
            "left_shoulder",
            "right_shoulder",
        ):
            if name in f.xy:
                x, y = f.xy[name]
                draw.ellipse(
                    [x - r, y - r, x + r, y + r],
                    fill=0 if opaque else None,
                    outline=255,
                    width=width,
                )


def _contour(ink: Image.Image, f: Figure, rng: np.random.Generator, width: int) -> Image.Image:
    mask = Image.new("L", ink.size, 0)
    draw = ImageDraw.Draw(mask)
    parts = _parts(f, rng, rng.uniform(0.9, 1.4))
    for _, polygon in parts:
        draw.polygon(polygon, fill=255)
    kind = rng.random()
    if kind < 0.3:
        return mask.point(lambda v: int(v * rng.uniform(0.5, 1.0)) if v else 0)
    size = 2 * max(1, width // 2) + 1
    outline = (
        Image.fromarray(
            (np.asarray(mask.filter(ImageFilter.MaxFilter(size))) > 0)
            & (np.asarray(mask.filter(ImageFilter.MinFilter(3))) == 0)
        )
        .convert("L")
        .point(lambda v: 255 if v else 0)
    )
    if kind > 0.7:  # the limbs in front of the trunk drawn over it
        front = ImageDraw.Draw(outline)
        trunk_depth = parts[0][0]
        for depth, polygon in parts[3:]:
            if depth > trunk_depth:
                front.polygon(polygon, fill=0, outline=255, width=width)
    return outline


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
