"""Drawings as artists' pages are: photographed by a phone, lying on a desk, or drawn on
ruled or squared paper.

`photographed`: a sketch sent from a phone is rarely a scan. The light falls off across the
page, the paper is warm, the sensor adds noise, the lens blurs a little and the file is a
JPEG. The recipe, per drawing, from a seeded generator: a light slope in a random direction
and a vignette around a random centre that together darken the page by up to `strength`
(drawn from 0.2–0.6), a warm tint (green ×0.93–1, blue ×0.8–0.95), an exposure of 0.75–0.95,
Gaussian sensor noise (σ 0.015), a 0.7-pixel Gaussian blur and JPEG at quality 70. Set by
eye to look like phone photos of sketches, not fitted to any reading:
`benchmarks.drawn_eval` reads the evalset's people drawn and then photographed so
(`gt_<style>_photographed`).

`on_ruled_paper`: a notebook's page. Light blue rules (RGB 0.6, 0.75, 0.95), one pixel wide,
every 1/24–1/14 of the page's height (at least 12 pixels), starting at a random offset;
squared paper has the same rules down the page too. The drawing's ink lies over them (the
darker of the two shows). `benchmarks.drawn_eval`: `gt_<style>_ruled`, `gt_<style>_squared`.

`on_desk`: the sheet photographed lying on a desk, filling 60–85 % of the picture's width and
height at a random place: a wood-brown, slate-grey or light-oak desk with streaks along its
grain and noise; then `photographed`. `benchmarks.drawn_eval`: `gt_<style>_on_desk`.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

PHOTOGRAPHED_STYLES = ("stick", "mannequin", "contour")
RULED_STYLES = ("stick", "mannequin")
DESK_STYLES = ("stick", "mannequin")
DESKS = np.array([[0.45, 0.3, 0.18], [0.3, 0.3, 0.32], [0.6, 0.5, 0.4]], dtype=np.float32)
RULE_BLUE = np.array([0.6, 0.75, 0.95], dtype=np.float32)


def photographed(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """`image` (a drawing) as a phone's photo of it (see the module's text)."""
    page = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    h, w = page.shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    x, y = x / max(w - 1, 1) - 0.5, y / max(h - 1, 1) - 0.5
    strength = rng.uniform(0.2, 0.6)
    angle = rng.uniform(0, 2 * np.pi)
    slope = np.cos(angle) * x + np.sin(angle) * y + 0.5  # 0 on the lit side, 1 on the far side
    cx, cy = rng.uniform(-0.3, 0.3, 2)
    vignette = (x - cx) ** 2 + (y - cy) ** 2
    light = np.clip(1.0 - strength * (0.7 * slope + 0.8 * vignette), 0.0, 1.0)
    tint = np.array([1.0, rng.uniform(0.93, 1.0), rng.uniform(0.8, 0.95)], dtype=np.float32)
    shot = page * light[..., None] * tint * rng.uniform(0.75, 0.95)
    shot = shot + rng.normal(0.0, 0.015, shot.shape)
    picture = Image.fromarray((np.clip(shot, 0.0, 1.0) * 255).round().astype(np.uint8))
    picture = picture.filter(ImageFilter.GaussianBlur(0.7))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=70)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def on_ruled_paper(image: Image.Image, rng: np.random.Generator, squared: bool) -> Image.Image:
    """`image` (a drawing on white) drawn on ruled paper, or `squared` paper (see above)."""
    page = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    h, w = page.shape[:2]
    step = max(12, int(h / rng.uniform(14, 24)))
    offset = int(rng.integers(0, step))
    rules = np.zeros((h, w), dtype=bool)
    rules[offset::step, :] = True
    if squared:
        rules[:, offset::step] = True
    paper = np.where(rules[..., None], RULE_BLUE, np.float32(1.0))
    return Image.fromarray((np.minimum(page, paper) * 255).round().astype(np.uint8))


def on_desk(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, np.ndarray]:
    """`image` (a drawing) lying on a desk, photographed (see above), and where its top-left
    corner lies in the picture (x, y)."""
    w, h = image.size
    fill = rng.uniform(0.6, 0.85)
    width, height = int(w / fill), int(h / fill)
    grain = rng.normal(0.0, 0.06, (1, width)).repeat(height, axis=0)[..., None]
    desk = DESKS[int(rng.integers(0, len(DESKS)))] + grain
    desk = desk + rng.normal(0.0, 0.02, (height, width, 1))
    picture = Image.fromarray((np.clip(desk, 0.0, 1.0) * 255).round().astype(np.uint8))
    corner = np.array([rng.integers(0, width - w + 1), rng.integers(0, height - h + 1)])
    picture.paste(image.convert("RGB"), (int(corner[0]), int(corner[1])))
    return photographed(picture, rng), corner.astype(np.float64)


__all__ = [
    "DESK_STYLES",
    "PHOTOGRAPHED_STYLES",
    "RULED_STYLES",
    "on_desk",
    "on_ruled_paper",
    "photographed",
]
