"""Pose embeddings: a pose → one unit vector whose dot product means pose similarity."""

from __future__ import annotations

import abc

import numpy as np

from pipelines.records import COCO17_INDEX, COCO17_LIMBS, NUM_JOINTS, FloatArray, Pose
from pipelines.registry import Registry


class PoseEmbedder(abc.ABC):
    name: str
    dim: int

    @property
    @abc.abstractmethod
    def model_id(self) -> str: ...

    @abc.abstractmethod
    def embed(self, pose: Pose) -> FloatArray | None:
        """A unit float32 vector of length `dim`, or None when too little of the pose is seen."""

    def embed_many(self, poses: list[Pose]) -> list[FloatArray | None]:
        return [self.embed(p) for p in poses]


pose_models: Registry[PoseEmbedder] = Registry("pose embedding")

_L_SHOULDER, _R_SHOULDER = COCO17_INDEX["left_shoulder"], COCO17_INDEX["right_shoulder"]
_L_HIP, _R_HIP = COCO17_INDEX["left_hip"], COCO17_INDEX["right_hip"]


@pose_models.register("geometric-v1")
class GeometricPoseEmbedder(PoseEmbedder):
    """Translation- and scale-normalised joint positions plus limb directions.

    The vector has two blocks, each scaled to unit length and weighted so the whole vector has
    unit length; the dot product of two vectors is therefore
    `position_weight · cos(positions) + (1 − position_weight) · cos(limb directions)`.

    - Positions: each joint's `(x, y)` minus the pose centre (mid-hip, else mid-shoulder, else
      the mean of the seen joints), divided by the pose scale (torso length, the mid-shoulder
      to mid-hip distance, when both shoulders and hips are seen; otherwise the RMS distance of
      the seen joints from their mean, which is about the torso length for a whole body).
    - Limb directions: the unit vector along each of the skeleton's limbs.

    Missing or low-score joints: a joint counts as seen when its score is at least
    `min_score`. An unseen joint contributes exactly zero to its position entries and to every
    limb it ends, so it can neither agree nor disagree with the other pose; it only leaves that
    share of the similarity unearned. A pose with fewer than `min_joints` seen joints gets no
    vector at all (None), rather than a vector dominated by noise.
    """

    name = "geometric-v1"
    dim = NUM_JOINTS * 2 + len(COCO17_LIMBS) * 2

    def __init__(
        self, min_score: float = 0.3, min_joints: int = 4, position_weight: float = 0.5
    ) -> None:
        if not 0.0 <= position_weight <= 1.0:
            raise ValueError("position_weight must lie in [0, 1]")
        self.min_score = min_score
        self.min_joints = min_joints
        self.position_weight = position_weight

    @property
    def model_id(self) -> str:
        return (
            f"{self.name}(min_score={self.min_score:g},min_joints={self.min_joints},"
            f"position_weight={self.position_weight:g})"
        )

    def normalised_positions(self, pose: Pose) -> tuple[FloatArray, np.ndarray] | None:
        """Centred, scale-free `(17, 2)` positions and the seen-joint mask, or None."""
        arr = pose.array().astype(np.float64)
        seen = arr[:, 2] >= self.min_score
        if int(seen.sum()) < self.min_joints:
            return None
        xy = arr[:, :2]
        if seen[_L_HIP] and seen[_R_HIP]:
            centre = (xy[_L_HIP] + xy[_R_HIP]) / 2
        elif seen[_L_SHOULDER] and seen[_R_SHOULDER]:
            centre = (xy[_L_SHOULDER] + xy[_R_SHOULDER]) / 2
        else:
            centre = xy[seen].mean(axis=0)
        scale = 0.0
        if seen[[_L_SHOULDER, _R_SHOULDER, _L_HIP, _R_HIP]].all():
            mid_shoulder = (xy[_L_SHOULDER] + xy[_R_SHOULDER]) / 2
            mid_hip = (xy[_L_HIP] + xy[_R_HIP]) / 2
            scale = float(np.linalg.norm(mid_shoulder - mid_hip))
        if scale <= 1e-6:
            spread = xy[seen] - xy[seen].mean(axis=0)
            scale = float(np.sqrt((spread**2).sum(axis=1).mean()))
        if scale <= 1e-6:
            return None
        positions = np.where(seen[:, None], (xy - centre) / scale, 0.0)
        return positions.astype(np.float32), seen

    def embed(self, pose: Pose) -> FloatArray | None:
        normalised = self.normalised_positions(pose)
        if normalised is None:
            return None
        positions, seen = normalised
        limbs = np.zeros((len(COCO17_LIMBS), 2), dtype=np.float64)
        for i, (a, b) in enumerate(COCO17_LIMBS):
            if seen[a] and seen[b]:
                d = positions[b].astype(np.float64) - positions[a]
                length = float(np.linalg.norm(d))
                if length > 1e-6:
                    limbs[i] = d / length
        vector = np.concatenate(
            [
                _unit(positions.reshape(-1).astype(np.float64)) * np.sqrt(self.position_weight),
                _unit(limbs.reshape(-1)) * np.sqrt(1.0 - self.position_weight),
            ]
        )
        norm = float(np.linalg.norm(vector))
        if norm <= 1e-9:
            return None
        return (vector / norm).astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else v
