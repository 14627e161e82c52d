"""Where a pose's person is: its size and clarity, its head, and whether two poses are one body."""

from __future__ import annotations

import numpy as np

from pipelines.records import Pose

# A head's box: a square reaching this far past the face joints (or a fraction of the
# shoulder width, whichever is larger).
HEAD_FACE_SCALE = 1.5
HEAD_SHOULDER_SCALE = 0.35


def prominence(pose: Pose) -> float:
    """Area of the box around all 17 joint positions × the pose score: big, clear people first."""
    points = pose.array()[:, :2]
    extent = points.max(axis=0) - points.min(axis=0)
    return float(extent[0] * extent[1]) * pose.score


def seen_height(pose: Pose, min_score: float = 0.5) -> float:
    """How tall the joints scored at least `min_score` stand, in the pose's pixels."""
    joints = pose.array()
    seen = joints[joints[:, 2] >= min_score, 1]
    return float(seen.max() - seen.min()) if len(seen) >= 2 else 0.0


def keypoint_box(arr: np.ndarray) -> tuple[float, float, float, float] | None:
    """The box (x, y, w, h) of a person's placed joints `(17, 3)` (score or visibility > 0),
    10 % wider each side and with a head's room (15 % of the height) above; None for fewer
    than two placed joints."""
    placed = arr[arr[:, 2] > 0]
    if len(placed) < 2:
        return None
    x0, y0 = placed[:, :2].min(axis=0)
    x1, y1 = placed[:, :2].max(axis=0)
    w, h = x1 - x0, y1 - y0
    head = 0.15 * h
    return float(x0 - 0.1 * w), float(y0 - 0.1 * h - head), float(w * 1.2), float(h * 1.2 + head)


def pck_either_side(
    predicted: np.ndarray,
    truth: np.ndarray,
    swap: tuple[int, ...] | list[int],
    radius: float,
    counted: np.ndarray | None = None,
) -> float:
    """PCK: the share of joints (`counted` ones; all by default) of `predicted` within `radius`
    of `truth`, rows (x, y, ...), the better of the two left/right assignments (`swap` maps
    each joint to its other side's). A drawing's sides are ambiguous (a front or a back
    view), so it is scored either way round."""
    keep = np.ones(len(truth), dtype=bool) if counted is None else counted
    return max(
        float((np.linalg.norm(pose[:, :2] - truth[:, :2], axis=1)[keep] <= radius).mean())
        for pose in (predicted, predicted[list(swap)])
    )


def head_box(pose: Pose) -> tuple[float, float, float, float]:
    """A square around the head, about the size of BlazePose's detector box for it."""
    points = pose.array()[:, :2].astype(np.float64)
    face = points[:5]
    centre = face.mean(axis=0)
    spread = float(np.linalg.norm(face - centre, axis=1).max())
    shoulders = float(np.linalg.norm(points[5] - points[6]))
    half = max(HEAD_FACE_SCALE * spread, HEAD_SHOULDER_SCALE * shoulders, 1.0)
    return (
        float(centre[0] - half),
        float(centre[1] - half),
        float(centre[0] + half),
        float(centre[1] + half),
    )


def _face_centre(pose: Pose) -> tuple[float, float]:
    face = pose.array()[:5, :2]
    return float(face[:, 0].mean()), float(face[:, 1].mean())


def _inside(point: tuple[float, float], box: tuple[float, float, float, float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def share_head(a: Pose, b: Pose) -> bool:
    """Whether two poses have one head: the face of one lies in the head box of the other."""
    return _inside(_face_centre(a), head_box(b)) or _inside(_face_centre(b), head_box(a))


def same_person(a: Pose, b: Pose, tolerance: float) -> bool:
    """Whether two poses are one body: they share a head (the face of one lies in the head
    box of the other), or their COCO-17 joints lie on average within `tolerance` × the
    diagonal of the larger pose's joint extent. Positions count whatever their score:
    BlazePose places every joint, seen or not."""
    if share_head(a, b):
        return True
    pa, pb = a.array()[:, :2].astype(np.float64), b.array()[:, :2].astype(np.float64)
    size = max(float(np.linalg.norm(p.max(axis=0) - p.min(axis=0))) for p in (pa, pb))
    if size <= 0:
        return bool(np.allclose(pa, pb))
    return float(np.linalg.norm(pa - pb, axis=1).mean()) <= tolerance * size
