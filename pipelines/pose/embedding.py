"""Pose embeddings: a pose → one unit vector whose dot product means pose similarity."""

from __future__ import annotations

import abc

import numpy as np
import numpy.typing as npt

from pipelines.records import COCO17_INDEX, COCO17_LIMBS, NUM_JOINTS, FloatArray, Pose
from pipelines.registry import Registry

BoolArray = npt.NDArray[np.bool_]


class PoseEmbedder(abc.ABC):
    name: str
    dim: int

    @property
    @abc.abstractmethod
    def model_id(self) -> str: ...

    @abc.abstractmethod
    def embed_array(self, keypoints: npt.ArrayLike) -> tuple[FloatArray, BoolArray]:
        """Vectors of `(n, 17, 3)` COCO-17 keypoints: `(n, dim)` unit rows (zero where
        invalid) and the `(n,)` mask of rows that have a vector."""

    def embed(self, pose: Pose) -> FloatArray | None:
        """A unit float32 vector of length `dim`, or None when too little of the pose is seen."""
        vectors, valid = self.embed_array(pose.array()[None])
        return vectors[0] if valid[0] else None

    def embed_many(self, poses: list[Pose]) -> list[FloatArray | None]:
        if not poses:
            return []
        vectors, valid = self.embed_array(np.stack([p.array() for p in poses]))
        return [v if ok else None for v, ok in zip(vectors, valid, strict=True)]

    def similarity_to(self, query: Pose, keypoints: npt.ArrayLike) -> FloatArray:
        """Similarity of `query` to each of `(n, 17, 3)` poses over the query's seen joints.

        Joints the query leaves unseen (score 0: "don't care") are removed from the other
        poses too before embedding, so they neither help nor hurt. With every joint seen this
        equals the dot product of the stored vectors.
        """
        query_vector = self.embed(query)
        kps = np.array(keypoints, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)
        if query_vector is None or kps.shape[0] == 0:
            return np.zeros(kps.shape[0], dtype=np.float32)
        kps[:, ~self.seen(query.array()[None])[0], 2] = 0.0
        vectors, valid = self.embed_array(kps)
        return np.where(valid, vectors @ query_vector, 0.0).astype(np.float32)

    def seen(self, keypoints: np.ndarray) -> BoolArray:
        """Which joints of `(n, 17, 3)` keypoints count as seen."""
        return np.asarray(keypoints[..., 2] > 0.0)


pose_models: Registry[PoseEmbedder] = Registry("pose embedding")

_L_SHOULDER, _R_SHOULDER = COCO17_INDEX["left_shoulder"], COCO17_INDEX["right_shoulder"]
_L_HIP, _R_HIP = COCO17_INDEX["left_hip"], COCO17_INDEX["right_hip"]
_LIMB_A = np.array([a for a, _ in COCO17_LIMBS])
_LIMB_B = np.array([b for _, b in COCO17_LIMBS])


@pose_models.register("geometric-v1")
class GeometricPoseEmbedder(PoseEmbedder):
    """Translation- and scale-normalised joint positions plus limb directions.

    The vector has two blocks, each scaled to unit length and weighted so the whole vector has
    unit length; the dot product of two vectors is therefore
    `position_weight · cos(positions) + (1 − position_weight) · cos(limb directions)`.

    - Positions: each joint's `(x, y)` minus the pose centre (mid-hip when both hips are
      seen, else mid-shoulder, else the mean of the seen joints). Scaling the block to unit
      length is the scale normalisation: the size of the figure in the picture drops out.
    - Limb directions: the unit vector along each of the skeleton's limbs (translation- and
      scale-free by construction).

    Missing or low-score joints: a joint counts as seen when its score is above `min_score`
    (default 0: every joint a detector placed, since BlazePose's low "visibility" marks
    occlusion, not a wrong position; a query's score-0 joints are "don't care"). An unseen
    joint contributes exactly zero to its position entries and to every limb it ends, so it
    can neither agree nor disagree with the other pose; it only leaves that share of the
    similarity unearned. `similarity_to` goes further for queries and drops the query's unseen
    joints from the other pose as well. A pose with fewer than `min_joints` seen joints gets no
    vector at all (None), rather than a vector dominated by noise.
    """

    name = "geometric-v1"
    dim = NUM_JOINTS * 2 + len(COCO17_LIMBS) * 2

    def __init__(
        self, min_score: float = 0.0, min_joints: int = 4, position_weight: float = 0.5
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

    def seen(self, keypoints: np.ndarray) -> BoolArray:
        return np.asarray(keypoints[..., 2] > self.min_score)

    def embed_array(self, keypoints: npt.ArrayLike) -> tuple[FloatArray, BoolArray]:
        kps = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)
        seen = self.seen(kps)
        xy = np.where(seen[..., None], kps[..., :2], 0.0)
        count = seen.sum(axis=1)

        hips = seen[:, _L_HIP] & seen[:, _R_HIP]
        shoulders = seen[:, _L_SHOULDER] & seen[:, _R_SHOULDER]
        mean_seen = xy.sum(axis=1) / np.maximum(count, 1)[:, None]
        centre = np.where(
            hips[:, None],
            (xy[:, _L_HIP] + xy[:, _R_HIP]) / 2,
            np.where(shoulders[:, None], (xy[:, _L_SHOULDER] + xy[:, _R_SHOULDER]) / 2, mean_seen),
        )
        positions = np.where(seen[..., None], xy - centre[:, None, :], 0.0).reshape(len(kps), -1)

        delta = xy[:, _LIMB_B] - xy[:, _LIMB_A]
        length = np.linalg.norm(delta, axis=2)
        limb_ok = seen[:, _LIMB_A] & seen[:, _LIMB_B] & (length > 1e-6)
        limbs = np.where(
            limb_ok[..., None], delta / np.maximum(length, 1e-12)[..., None], 0.0
        ).reshape(len(kps), -1)

        vectors = np.concatenate(
            [
                _unit_rows(positions) * np.sqrt(self.position_weight),
                _unit_rows(limbs) * np.sqrt(1.0 - self.position_weight),
            ],
            axis=1,
        )
        norm = np.linalg.norm(vectors, axis=1)
        valid = (count >= self.min_joints) & (norm > 1e-9)
        vectors = np.where(valid[:, None], vectors / np.maximum(norm, 1e-12)[:, None], 0.0)
        return vectors.astype(np.float32), valid


def _unit_rows(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return np.where(n > 1e-9, v / np.maximum(n, 1e-12), 0.0)
