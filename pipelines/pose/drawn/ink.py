"""A drawing as the drawn-figure model sees it, and the model's heatmaps back as joints.

A drawing is read on its ink: the difference from the paper, cropped to the ink's square box
with a margin and scaled to 128 pixels (thin strokes are widened first so they survive the
scaling). numpy and OpenCV only: torch is not needed to prepare an input or decode an output.

The paper is not one grey in a phone's photo of a sketch: the light falls off across the page
(a slope, a vignette), and measured from one grey the far side of the page is all "ink". So
the paper's brightness is modelled as a smooth surface over the page, a quadratic in x and y
fitted to the band along the page's edges (a quadratic is fixed by its values around a
rectangle). The fit is robust: ink reaching the edge, a minority there, is trimmed away,
first around the band's median grey, then as the fit's outliers. Ink is the departure from
that surface, relative to the light there (light multiplies: ink under half the light
departs half as far). Where the surface varies by less than what counts as ink, the paper is
one grey, the border's median, as on a page lit evenly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INPUT = 128
STRIDE = 4
GRID = INPUT // STRIDE
MARGIN = 0.08  # the crop's margin around the ink, a share of its longer side
INK = 0.12  # a pixel this far from the paper's grey is ink
# The paper's surface is fitted on the drawing scaled to at most FIT_SIDE pixels, to the
# band along its edges FIT_BAND of its shorter side deep (where a page is paper: a drawing's
# ink, its fills and shading, lie mostly inside), in FIT_ROUNDS rounds, each keeping the
# pixels within FIT_SPREAD robust standard deviations of the last fit (at least FIT_FLOOR of
# grey: a clean page has next to no spread).
FIT_SIDE = 64
FIT_BAND = 0.1
FIT_ROUNDS = 6
FIT_SPREAD = 3.0
FIT_FLOOR = 0.02
# A sheet photographed on a desk (`sheet_of`): the bright region is at least SHEET_LEAST of
# the picture and fills SHEET_FILL of its box, clear of the picture's edges by SHEET_MARGIN
# on two sides or more; it is read inset by SHEET_INSET of its shorter side (its edge's
# shadow is no ink).
SHEET_LEAST = 0.2
SHEET_FILL = 0.75
SHEET_MARGIN = 0.03
SHEET_INSET = 0.02
# Ruled and squared paper: a printed rule is a straight line of ink running along one of the
# page's axes (within RULE_SLOPE, a phone's tilt) over at least RULE_SPAN of the page, found
# in pieces at least RULE_PIECE of the page's shorter side long (gaps up to RULE_GAP of it),
# and there are at least RULES of them in that direction; a stroke crossing one is ink more
# than RULE_STROKE × the rule's own.
RULE_SPAN = 0.7
RULE_PIECE = 0.2
RULE_SLOPE = 0.15
RULE_GAP = 0.02
RULES = 3
RULE_STROKE = 1.5
# A rule is thin, with paper RULE_SIDE pixels either side of it along most of its length,
# and the rules are evenly spaced: on a lattice of the median gap, within RULE_EVEN of it.
RULE_SIDE = 4
RULE_EVEN = 0.2


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


def _quadratic_terms(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1)


def _within_spread(residual: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Which residuals lie within `FIT_SPREAD` robust standard deviations of those `kept`
    (at least `FIT_FLOOR`)."""
    spread = 1.4826 * float(np.median(np.abs(residual[kept])))
    return np.abs(residual) <= max(FIT_SPREAD * spread, FIT_FLOOR)


def paper_map(grey: np.ndarray) -> np.ndarray:
    """The paper's grey at each pixel of a grey drawing (H, W): the smooth surface (a
    quadratic in x and y) that the paper along the page's edges lies on, the ink there
    trimmed away as outliers; one grey (`paper_of`) where that surface varies by less than
    `INK` (no paper would be taken for ink)."""
    import cv2

    h, w = grey.shape
    if min(h, w) < 8:
        return np.full(grey.shape, paper_of(grey), dtype=np.float32)
    factor = min(1.0, FIT_SIDE / max(h, w))
    sh, sw = max(8, round(h * factor)), max(8, round(w * factor))
    small = cv2.resize(grey.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
    v, u = np.meshgrid(np.linspace(-1, 1, sh), np.linspace(-1, 1, sw), indexing="ij")
    depth = max(2, round(FIT_BAND * min(sh, sw)))
    band = np.ones((sh, sw), dtype=bool)
    band[depth:-depth, depth:-depth] = False
    terms = _quadratic_terms(u[band], v[band])
    values = small[band].astype(np.float64)
    keep = _within_spread(values - np.median(values), np.ones(values.shape, dtype=bool))
    coef = np.zeros(6)
    for _ in range(FIT_ROUNDS):
        coef = np.linalg.lstsq(terms[keep], values[keep], rcond=None)[0]
        kept = _within_spread(values - terms @ coef, keep)
        if kept.sum() < 6 or (kept == keep).all():
            break
        keep = kept
    over_page = _quadratic_terms(u, v) @ coef
    if float(over_page.max() - over_page.min()) < INK:
        return np.full(grey.shape, paper_of(grey), dtype=np.float32)
    v, u = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    surface = _quadratic_terms(u.astype(np.float32), v.astype(np.float32)) @ coef.astype(np.float32)
    return np.clip(surface, 0.0, 1.0).astype(np.float32)


def sheet_of(grey: np.ndarray) -> tuple[int, int, int, int] | None:
    """The sheet of paper a drawing was photographed on, lying on a darker desk, as (top,
    bottom, left, right) in `grey`'s pixels, inset by `SHEET_INSET`; None where the paper
    fills the picture (a scan, a drawing on white) or no sheet stands out.

    The sheet is the largest region on the bright side of the picture's two greys (Otsu's
    split of the smoothed picture): at least `SHEET_LEAST` of the picture, filling at least
    `SHEET_FILL` of its box (a sheet is a rectangle, seen a little askew), and within the
    picture: clear of its edges by `SHEET_MARGIN` on at least two sides (a white wall
    behind a person runs off the picture)."""
    import cv2

    h, w = grey.shape
    if min(h, w) < 32:
        return None
    smooth = cv2.medianBlur((grey * 255).round().astype(np.uint8), 5)
    _, bright = cv2.threshold(smooth, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    count, _, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=4)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, bw, bh, area = (int(v) for v in stats[largest])
    if area < SHEET_LEAST * h * w or area < SHEET_FILL * bw * bh:
        return None
    margins = (x / w, y / h, (w - x - bw) / w, (h - y - bh) / h)
    if sum(margin >= SHEET_MARGIN for margin in margins) < 2:
        return None
    inset = round(SHEET_INSET * min(bw, bh))
    return y + inset, y + bh - inset, x + inset, x + bw - inset


def evenly_lit(grey: np.ndarray) -> np.ndarray:
    """A grey drawing (H, W) in [0, 1] as its page would look under even light: each pixel
    divided by the paper's grey there (`paper_map`), times the page's median paper grey."""
    _, gain = _paper_and_gain(grey)
    return np.clip(grey * gain, 0.0, 1.0).astype(np.float32)


def ink_of(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far each pixel is from the paper's grey there (`paper_map`), relative to the light
    there and scaled to the page's median light, in [0, 1]; and that scale (the gain) per
    pixel: in the shade a stroke departs less from the paper, the sensor's noise as much."""
    paper, gain = _paper_and_gain(grey)
    ink = np.clip(np.abs(grey - paper) * gain, 0.0, 1.0).astype(np.float32)
    return _without_rules(ink, gain), gain


def _paper_and_gain(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paper's grey at each pixel (`paper_map`), and the gain that brings the light there
    to the page's median light."""
    paper = paper_map(grey)
    light = np.maximum(paper, 0.05)
    return paper, (float(np.median(light)) / light).astype(np.float32)


def _without_rules(ink: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """`ink` without the printed rules of ruled or squared paper (see `RULE_SPAN`): thin
    straight lines with paper either side, running nearly edge to edge along one of the
    page's axes, evenly spaced, at least `RULES` of them in that direction (a drawing's long
    line, a horizon or arms held out, a fill's edge, is no paper). Where a stroke crosses a
    rule, the stroke (darker than the rule) stays."""
    import cv2

    h, w = ink.shape
    if min(h, w) < 32:
        return ink
    mask = ink_mask(ink, gain)
    piece = RULE_PIECE * min(h, w)
    found = cv2.HoughLinesP(
        mask * 255,
        rho=1,
        theta=np.pi / 360,
        threshold=round(piece / 2),
        minLineLength=piece,
        maxLineGap=max(2, round(RULE_GAP * min(h, w))),
    )
    if found is None:
        return ink
    rules = np.zeros_like(mask)
    for across in (True, False):
        lines = _rules_along(found[:, 0], mask, across)
        for line in lines:
            for x0, y0, x1, y1 in line:
                cv2.line(rules, (int(x0), int(y0)), (int(x1), int(y1)), (1,), thickness=3)
    on_rules = (rules > 0) & (mask > 0)
    if not on_rules.any():
        return ink
    level = float(np.median(ink[on_rules]))
    clean = ink.copy()
    clean[(rules > 0) & (ink <= RULE_STROKE * level)] = 0.0
    return clean


Segment = tuple[int, int, int, int]


def _rules_along(segments: np.ndarray, mask: np.ndarray, across: bool) -> list[list[Segment]]:
    """The printed rules running across the page (`across`) or down it, each as its pieces
    among the Hough `segments` (x0, y0, x1, y1); none unless they make a ruling."""
    h, w = mask.shape
    extent = w if across else h
    thin: list[tuple[float, Segment]] = []
    for x0, y0, x1, y1 in segments:
        along, aside = (abs(x1 - x0), abs(y1 - y0)) if across else (abs(y1 - y0), abs(x1 - x0))
        if aside <= RULE_SLOPE * along and _on_paper(mask, (x0, y0, x1, y1), across):
            thin.append((float(y0 + y1) / 2 if across else float(x0 + x1) / 2, (x0, y0, x1, y1)))
    # Pieces of one rule (found twice, or broken where it is faint) lie within 3 pixels of
    # each other across it; together they run along RULE_SPAN of the page.
    groups: list[list[tuple[float, Segment]]] = []
    for offset, segment in sorted(thin):
        if groups and offset - groups[-1][-1][0] <= 3:
            groups[-1].append((offset, segment))
        else:
            groups.append([(offset, segment)])
    lines = [
        (float(np.mean([o for o, _ in group])), [segment for _, segment in group])
        for group in groups
        if _covered([(s[0], s[2]) if across else (s[1], s[3]) for _, s in group])
        >= RULE_SPAN * extent
    ]
    if len(lines) < RULES:
        return []
    # Rules are evenly spaced: those on the lattice of the typical gap (a rule too faint to
    # find leaves a whole number of gaps; a drawn line between two rules is off it).
    offsets = np.array([offset for offset, _ in lines])
    step = float(np.median(np.diff(offsets)))
    if step < 4:
        return []
    best: list[int] = []
    for anchor in offsets:
        turns = (offsets - anchor) / step
        on = [i for i, turn in enumerate(turns) if abs(turn - round(turn)) <= RULE_EVEN]
        if len(on) > len(best):
            best = on
    return [lines[i][1] for i in best] if len(best) >= RULES else []


def _on_paper(mask: np.ndarray, segment: Segment, across: bool) -> bool:
    """Whether a segment is a thin line with paper either side (`RULE_SIDE` pixels off it)
    along at least half of it: a rule, not the edge of a fill."""
    h, w = mask.shape
    x0, y0, x1, y1 = segment
    t = np.linspace(0.0, 1.0, 21)
    xs, ys = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
    dx, dy = (0, RULE_SIDE) if across else (RULE_SIDE, 0)
    clear = 0
    for x, y in zip(xs, ys, strict=True):
        sides = [(round(x + sign * dx), round(y + sign * dy)) for sign in (-1, 1)]
        clear += all(not (0 <= sx < w and 0 <= sy < h) or mask[sy, sx] == 0 for sx, sy in sides)
    return clear >= len(t) / 2


def _covered(spans: list[tuple[int, int]]) -> int:
    """How many pixels the union of the spans (a, b) covers."""
    covered = np.zeros(max(max(a, b) for a, b in spans) + 1, dtype=bool)
    for a, b in spans:
        covered[min(a, b) : max(a, b) + 1] = True
    return int(covered.sum())


def ink_mask(ink: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Which pixels of an `ink_of` map (H, W) are ink, as 0 / 1 (uint8): far enough from the
    paper's grey, beyond its grain (the sensor's noise, measured along the border, is the
    same in the shade, where the gain magnifies it), and not a lone pixel."""
    import cv2

    noise = 1.4826 * float(np.median(_border(ink / gain)))  # the paper's grain
    mask = (ink > np.maximum(INK, 5 * noise * gain)).astype(np.uint8)
    # A lone pixel is grain, not ink: keep marked pixels with a marked neighbour.
    mask &= cv2.filter2D(mask, -1, np.ones((3, 3), np.float32)) >= 2
    return mask


def ink_groups(grey: np.ndarray, gap: float, least: float) -> list[np.ndarray]:
    """The drawing's separate groups of ink (H, W masks, largest first): strokes closer than
    `gap` × the ink's longer side are one group, and a group counts when its longer side is
    at least `least` × that of the largest (a lone head or a prop beside a figure does not
    make a second figure, nor does a speck)."""
    import cv2

    mask = ink_mask(*ink_of(grey))
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

    ink, gain = ink_of(grey)
    mask = ink_mask(ink, gain)
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
