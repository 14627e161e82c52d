"""The strokes and shapes drawings are made of: wobbly lines with overshoot and sketchy
repeats, ellipses, capsules, outlines of filled shapes, a child's-drawing face."""

from __future__ import annotations

import itertools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def wobbly(rng: np.random.Generator, points: list[np.ndarray], amount: float) -> list[tuple]:
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


def stroke(
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
        line = wobbly(rng, [p + jitter for p in points], rng.uniform(0, 0.015) * scale)
        shade = 255 if passes == 1 else int(rng.uniform(140, 255))
        draw.line(line, fill=shade, width=width, joint="curve")


def face(
    draw: ImageDraw.ImageDraw,
    centre: np.ndarray,
    r: float,
    rng: np.random.Generator,
    width: int,
    ink: int,
) -> None:
    """Dot eyes and a smile (or a line) in a round head of radius `r`."""
    eye = max(1.0, r * rng.uniform(0.06, 0.14))
    for dx in (-0.35, 0.35):
        x, y = centre[0] + dx * r, centre[1] - 0.15 * r
        draw.ellipse([x - eye, y - eye, x + eye, y + eye], fill=ink)
    mouth = r * rng.uniform(0.3, 0.5)
    y = centre[1] + 0.3 * r
    draw.arc(
        [centre[0] - mouth, y - mouth * 0.6, centre[0] + mouth, y + mouth * 0.4],
        20,
        160,
        fill=ink,
        width=max(1, width // 2),
    )


def outline_of(mask: Image.Image, width: int) -> Image.Image:
    """The outline of a filled mask, `width` pixels wide."""
    size = 2 * max(1, width // 2) + 1
    return (
        Image.fromarray(
            (np.asarray(mask.filter(ImageFilter.MaxFilter(size))) > 0)
            & (np.asarray(mask.filter(ImageFilter.MinFilter(3))) == 0)
        )
        .convert("L")
        .point(lambda v: 255 if v else 0)
    )


def polygon_ellipse(centre: np.ndarray, a: float, b: float, angle: float) -> list[tuple]:
    t = np.linspace(0, 2 * math.pi, 28, endpoint=False)
    c, s = math.cos(angle), math.sin(angle)
    x, y = a * np.cos(t), b * np.sin(t)
    return [
        (centre[0] + c * xi - s * yi, centre[1] + s * xi + c * yi)
        for xi, yi in zip(x, y, strict=True)
    ]


def capsule(a: np.ndarray, b: np.ndarray, ra: float, rb: float) -> list[tuple]:
    d = b - a
    angle = math.atan2(d[1], d[0])
    out = []
    for t in np.linspace(-math.pi / 2, math.pi / 2, 9):
        out.append((b[0] + rb * math.cos(angle + t), b[1] + rb * math.sin(angle + t)))
    for t in np.linspace(math.pi / 2, 3 * math.pi / 2, 9):
        out.append((a[0] + ra * math.cos(angle + t), a[1] + ra * math.sin(angle + t)))
    return out
