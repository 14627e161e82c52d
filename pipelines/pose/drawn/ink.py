"""A drawing as the drawn-figure model sees it, and the model's heatmaps back as joints.

A drawing is read on its ink: the difference from the paper (the median of the border),
cropped to the ink's square box with a margin and scaled to 128 pixels (thin strokes are
widened first so they survive the scaling). numpy and OpenCV only: torch is not needed to
prepare an input or decode an output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INPUT = 128
STRIDE = 4
GRID = INPUT // STRIDE
MARGIN = 0.08  # the crop's margin around the ink, a share of its longer side
INK = 0.12  # a pixel this far from the paper's grey is ink


@dataclass(frozen=True)
class Crop:
    """Where the model's 128-pixel input lies in the drawing: drawing = input × scale + origin."""

    scale: float
    origin: np.ndarray

    def to_drawing(self, xy: np.ndarray) -> np.ndarray:
        return xy * self.scale + self.origin


def _border(values: np.ndarray) -> np.ndarray:
    """The pixels along the four edges of an (H, W) map."""
    return np.concatenate([values[0], values[-1], values[:, 0], values[:, -1]])


def paper_of(grey: np.ndarray) -> float:
    """The paper's grey: the median of the drawing's border."""
    return float(np.median(_border(grey)))


def ink_of(grey: np.ndarray) -> np.ndarray:
    """How far each pixel is from the paper's grey (`paper_of`), in [0, 1]."""
    return np.abs(grey - paper_of(grey)).astype(np.float32)


def ink_mask(ink: np.ndarray) -> np.ndarray:
    """Which pixels of an `ink_of` map (H, W) are ink, as 0 / 1 (uint8): far enough from the
    paper's grey, beyond its grain, and not a lone pixel."""
    import cv2

    noise = 1.4826 * float(np.median(_border(ink)))  # the paper's grain, from the border
    mask = (ink > max(INK, 5 * noise)).astype(np.uint8)
    # A lone pixel is grain, not ink: keep marked pixels with a marked neighbour.
    mask &= cv2.filter2D(mask, -1, np.ones((3, 3), np.float32)) >= 2
    return mask


def ink_groups(grey: np.ndarray, gap: float, least: float) -> list[np.ndarray]:
    """The drawing's separate groups of ink (H, W masks, largest first): strokes closer than
    `gap` × the ink's longer side are one group, and a group counts when its longer side is
    at least `least` × that of the largest (a lone head or a prop beside a figure does not
    make a second figure, nor does a speck)."""
    import cv2

    mask = ink_mask(ink_of(grey))
    rows, cols = np.nonzero(mask)
    if len(rows) < 10:
        return []
    extent = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
    k = max(1, round(gap * extent)) * 2 + 1
    joined = cv2.dilate(mask, np.ones((k, k), np.uint8))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    sides = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT])
    if not len(sides):
        return []
    order = [int(i) for i in np.argsort(-sides, kind="stable") if sides[i] >= least * sides.max()]
    return [(labels == i + 1) for i in order]


def ink_crop(grey: np.ndarray) -> tuple[np.ndarray, Crop] | None:
    """The model's input for a grey drawing in [0, 1] (H, W), or None without ink."""
    import cv2

    ink = ink_of(grey)
    mask = ink_mask(ink)
    rows, cols = np.nonzero(mask)
    if len(rows) < 10:
        return None
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = max(bottom - top, right - left) * (1 + 2 * MARGIN) + 2
    cy, cx = (top + bottom) / 2, (left + right) / 2
    y0, x0 = round(float(cy - side / 2)), round(float(cx - side / 2))
    n = round(float(side))
    square = np.zeros((n, n), dtype=np.float32)
    sy0, sx0 = max(0, y0), max(0, x0)
    sy1, sx1 = min(grey.shape[0], y0 + n), min(grey.shape[1], x0 + n)
    square[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = ink[sy0:sy1, sx0:sx1]
    factor = n / INPUT
    if factor > 2:  # widen thin strokes so the scaling keeps them
        k = int(factor // 2) * 2 + 1
        square = np.asarray(cv2.dilate(square, np.ones((k, k), np.uint8)), np.float32)
    small = cv2.resize(square, (INPUT, INPUT), interpolation=cv2.INTER_AREA)
    peak = float(np.percentile(small[small > 0.05], 95)) if (small > 0.05).any() else 1.0
    small = np.clip(small / max(peak, 0.2), 0.0, 1.0)
    return small.astype(np.float32), Crop(factor, np.array([x0, y0], dtype=np.float64))


def decode(heat: np.ndarray) -> np.ndarray:
    """(13, 3) of x, y in input pixels and the peak's height, from (13, 32, 32) heatmaps; a
    quarter-cell step towards the higher neighbour refines each peak."""
    joints, h, w = heat.shape
    out = np.zeros((joints, 3))
    for j in range(joints):
        y, x = np.unravel_index(int(np.argmax(heat[j])), (h, w))
        fx, fy = float(x), float(y)
        if 0 < x < w - 1:
            fx += 0.25 * np.sign(heat[j, y, x + 1] - heat[j, y, x - 1])
        if 0 < y < h - 1:
            fy += 0.25 * np.sign(heat[j, y + 1, x] - heat[j, y - 1, x])
        out[j] = ((fx + 0.5) * STRIDE - 0.5, (fy + 0.5) * STRIDE - 0.5, float(heat[j, y, x]))
    return out
