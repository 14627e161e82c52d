"""Stick figures read by their structure: a round head, a trunk, two arms and two legs.

BlazePose reads filled, photo-like figures; a figure drawn in thin strokes (what a person
sketches on the page's canvas) gives it nothing to see. Such a drawing is read here as a
graph instead, the classical way: the ink is thinned to a one-pixel skeleton, the head is
the round closed loop (or round blob) of the drawing, the neck is where the skeleton meets
it, and the four limb ends are the skeleton's far ends; the two limbs whose paths to the
neck part furthest from it are the legs (they part at the hip), the other two the arms
(they part at the shoulders). Elbows and knees are half-way along their limbs.

A drawing is only read when it looks like a stick figure: thin strokes, one head, four limbs
of plausible human lengths against the trunk. Anything else (filled shapes, animals,
scribbles) gives None, and the caller keeps what other readers found. Left and right cannot
be told in a drawing (front or back view): the hand and foot on the image's left are the
figure's right, as for a figure facing the viewer; drawn queries search mirror-invariantly.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import numpy.typing as npt
from PIL import Image

from pipelines.records import COCO17_INDEX, NUM_JOINTS, Pose

STICK_FIGURES_VERSION = "v1"  # in the keypoint model id: a change re-reads the index
WORK_SIZE = 384  # the drawing is read at this size (longer side of the ink's box)
MAX_STROKE = 0.08  # stroke width at most this share of the figure's height: thin strokes
MIN_HEAD_CIRCULARITY = 0.7
SPUR = 0.12  # skeleton branches shorter than this share of the trunk are pen noise
# Limb length (along the stroke) against the trunk (neck to hip): a human's arm is ~0.9–1.3
# trunks, a leg ~1.1–1.7; a drawing exaggerates, so the accepted ranges are wide.
ARM_RANGE = (0.35, 2.6)
LEG_RANGE = (0.45, 3.0)
JOINT_SCORE = 0.9
SIDE_OFFSET = 0.12  # shoulders and hips sit this share of the trunk along their limbs

Pixel = tuple[int, int]  # (row, column)


def read_stick_figure(image: Image.Image) -> Pose | None:
    """The pose of the stick figure drawn in `image`, in its pixels, or None."""
    import cv2

    grey = np.asarray(image.convert("L"), dtype=np.uint8)
    ink = grey < 128
    if ink.sum() < 50:
        return None
    rows, cols = np.nonzero(ink)
    top, left = int(rows.min()), int(cols.min())
    height, width = int(rows.max()) - top + 1, int(cols.max()) - left + 1
    # One working size whatever the drawing's: strokes and the head come out alike (and
    # thin strokes, enlarged, survive thinning: a 2-pixel diagonal would vanish).
    scale = WORK_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    crop = ink[top : top + height, left : left + width].astype(np.uint8) * 255
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    work = cv2.resize(crop, size, interpolation=interpolation) > 64
    pose = _read(work)
    if pose is None:
        return None
    pose[:, 0] = pose[:, 0] / scale + left
    pose[:, 1] = pose[:, 1] / scale + top
    return Pose.from_array(pose)


def _read(ink: npt.NDArray[np.bool_]) -> np.ndarray | None:
    import cv2

    mask = np.pad(ink, 4).astype(np.uint8) * 255  # a margin: thinning and contours need one
    figure_height = float(max(mask.shape) - 8)
    distance = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    skeleton = _thinned(mask)
    if not skeleton.any():
        return None
    stroke = 2.0 * float(np.median(distance[skeleton]))
    if stroke > MAX_STROKE * figure_height:
        return None  # filled shapes, not strokes
    head = _head(mask, distance, stroke)
    if head is None:
        return None
    (hy, hx), radius = head
    body = mask.copy()
    cv2.circle(body, (round(hx), round(hy)), round(radius + stroke / 2 + 1), (0,), thickness=-1)
    bones = _thinned(body)
    pixels = set(zip(*np.nonzero(bones), strict=True))
    if not pixels:
        return None
    # The body is the largest stroke; the neck is where it comes closest to the head's rim on
    # the side facing the body (not a hand raised beside the head).
    graph = max(_components(pixels), key=len)
    body_rows, body_cols = np.nonzero(body)
    toward = np.array([body_rows.mean() - hy, body_cols.mean() - hx])
    toward /= max(float(np.linalg.norm(toward)), 1e-9)
    rim = (hy + toward[0] * (radius + stroke), hx + toward[1] * (radius + stroke))
    neck = min(graph, key=lambda p: (p[0] - rim[0]) ** 2 + (p[1] - rim[1]) ** 2)
    if math.dist(neck, rim) > radius + 3 * stroke:
        return None  # nothing meets the head
    distances, parents = _geodesic(graph, neck)
    ends = _limb_ends(graph, distances, parents, neck)
    if ends is None:
        return None
    return _pose(ends, distances, parents, neck, (hy, hx), radius)


def _thinned(mask: np.ndarray) -> npt.NDArray[np.bool_]:
    """The one-pixel skeleton of the ink. Guo–Hall, not Zhang–Suen: Zhang–Suen erases a stroke
    drawn at 45° a few pixels wide altogether."""
    import cv2

    thin = cv2.ximgproc.thinning(mask, thinningType=cv2.ximgproc.THINNING_GUOHALL)
    return np.asarray(thin > 0)


def _head(
    mask: np.ndarray, distance: np.ndarray, stroke: float
) -> tuple[tuple[float, float], float] | None:
    """The head's centre (row, column) and radius: the largest round closed loop, or else the
    largest round solid blob much thicker than the strokes."""
    import cv2

    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    best: tuple[float, tuple[float, float], float] | None = None
    if hierarchy is not None:
        for contour, (_, _, _, parent) in zip(contours, hierarchy[0], strict=True):
            if parent < 0:
                continue  # an outer boundary; holes have a parent
            area = float(cv2.contourArea(contour))
            perimeter = float(cv2.arcLength(contour, True))
            if area < 12 or perimeter <= 0:
                continue
            circularity = 4 * math.pi * area / perimeter**2
            if circularity < MIN_HEAD_CIRCULARITY:
                continue
            # Round first, then large: crossed legs or an arm on the hip close loops too, but
            # rarely round ones.
            rank = circularity**4 * math.sqrt(area)
            moments = cv2.moments(contour)
            centre = (moments["m01"] / moments["m00"], moments["m10"] / moments["m00"])
            if best is None or rank > best[0]:
                best = (rank, centre, math.sqrt(area / math.pi))
    if best is not None:
        return best[1], best[2]
    # A filled head: the thickest point of the drawing, if far thicker than a stroke.
    row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
    radius = float(distance[row, col])
    if radius < 2.0 * stroke:
        return None
    return (float(row), float(col)), radius


def _neighbours(pixel: Pixel, pixels: set[Pixel]) -> list[Pixel]:
    r, c = pixel
    return [
        (r + dr, c + dc)
        for dr in (-1, 0, 1)
        for dc in (-1, 0, 1)
        if (dr or dc) and (r + dr, c + dc) in pixels
    ]


def _components(pixels: set[Pixel]) -> list[set[Pixel]]:
    left = set(pixels)
    found = []
    while left:
        start = left.pop()
        seen = {start}
        queue = deque([start])
        while queue:
            for n in _neighbours(queue.popleft(), left):
                left.discard(n)
                seen.add(n)
                queue.append(n)
        found.append(seen)
    return found


def _geodesic(
    graph: set[Pixel], start: Pixel
) -> tuple[dict[Pixel, float], dict[Pixel, Pixel | None]]:
    """Distances along the skeleton from `start`, and each pixel's step back towards it."""
    import heapq

    distances: dict[Pixel, float] = {start: 0.0}
    parents: dict[Pixel, Pixel | None] = {start: None}
    heap = [(0.0, start)]
    while heap:
        d, pixel = heapq.heappop(heap)
        if d > distances[pixel]:
            continue
        for n in _neighbours(pixel, graph):
            step = math.sqrt(2.0) if n[0] != pixel[0] and n[1] != pixel[1] else 1.0
            if d + step < distances.get(n, math.inf):
                distances[n] = d + step
                parents[n] = pixel
                heapq.heappush(heap, (d + step, n))
    return distances, parents


def _path(end: Pixel, parents: dict[Pixel, Pixel | None]) -> list[Pixel]:
    """From the neck to `end`."""
    path = [end]
    while (step := parents[path[-1]]) is not None:
        path.append(step)
    return path[::-1]


def _limb_ends(
    graph: set[Pixel],
    distances: dict[Pixel, float],
    parents: dict[Pixel, Pixel | None],
    neck: Pixel,
) -> list[Pixel] | None:
    """The four limb ends: the skeleton's ends, less the shortest side branches while there
    are more than four (thinning leaves short spurs at corners and thick joints)."""
    ends = [p for p in graph if p != neck and len(_neighbours(p, graph)) == 1]
    if len(ends) < 4:
        return None
    reach = max(distances[e] for e in ends)
    while len(ends) > 4:
        kept = sorted(ends, key=lambda e: -distances[e])
        lengths = {}
        for i, end in enumerate(kept):
            path = _path(end, parents)
            on_longer = {p for k in kept[:i] for p in _path(k, parents)}
            branch = next((j for j in range(len(path) - 1, -1, -1) if path[j] in on_longer), 0)
            lengths[end] = distances[end] - distances[path[branch]]
        shortest = min(ends, key=lambda e: lengths[e])
        if lengths[shortest] >= SPUR * reach:
            return None  # more than four real limbs: not a stick figure
        ends.remove(shortest)
    return ends


def _pose(
    ends: list[Pixel],
    distances: dict[Pixel, float],
    parents: dict[Pixel, Pixel | None],
    neck: Pixel,
    head: tuple[float, float],
    radius: float,
) -> np.ndarray | None:
    paths = {e: _path(e, parents) for e in ends}

    def parting(a: Pixel, b: Pixel) -> Pixel:
        pa, pb = paths[a], paths[b]
        i = 0
        while i + 1 < min(len(pa), len(pb)) and pa[i + 1] == pb[i + 1]:
            i += 1
        return pa[i]

    pairs = [(a, b) for i, a in enumerate(ends) for b in ends[i + 1 :]]
    legs = max(pairs, key=lambda ab: distances[parting(*ab)])
    arms = tuple(e for e in ends if e not in legs)
    hip, shoulder = parting(*legs), parting(*arms)
    trunk = distances[hip]
    if trunk < 2.0 * radius * 0.5:
        return None  # no trunk: the limbs leave the head directly
    for limb_ends, start, (low, high) in ((arms, shoulder, ARM_RANGE), (legs, hip, LEG_RANGE)):
        for end in limb_ends:
            length = distances[end] - distances[start]
            if not low * trunk <= length <= high * trunk:
                return None
    pose = np.zeros((NUM_JOINTS, 3))

    def along(end: Pixel, start: Pixel, share: float) -> tuple[float, float]:
        """The point `share` of the way from `start` to `end` along the stroke, (x, y)."""
        target = distances[start] + share * (distances[end] - distances[start])
        point = next(p for p in paths[end] if distances[p] >= target)
        return float(point[1]), float(point[0])

    def put(name: str, xy: tuple[float, float], score: float = JOINT_SCORE) -> None:
        pose[COCO17_INDEX[name]] = (xy[0], xy[1], score)

    # Facing the viewer: the limb ending on the image's left is the figure's right.
    for (right, left), start, (near, mid, far) in (
        (sorted(arms, key=lambda e: e[1]), shoulder, ("shoulder", "elbow", "wrist")),
        (sorted(legs, key=lambda e: e[1]), hip, ("hip", "knee", "ankle")),
    ):
        for side, end in (("right", right), ("left", left)):
            limb = distances[end] - distances[start]
            put(f"{side}_{near}", along(end, start, min(0.5, SIDE_OFFSET * trunk / limb)))
            put(f"{side}_{mid}", along(end, start, 0.5))
            put(f"{side}_{far}", (float(end[1]), float(end[0])))
    hy, hx = head
    put("nose", (hx, hy))
    for name in ("left_eye", "right_eye", "left_ear", "right_ear"):
        put(name, (hx, hy), 0.0)  # a drawn head shows no face: "don't care"
    # Back to the unpadded drawing's pixels (_read padded it by 4).
    pose[:, :2] -= 4.0
    return pose
