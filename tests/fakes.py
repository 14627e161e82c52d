"""Fakes at the model-registry seam, registered once per test process.

A keypoint detector that "finds" one standing person in every image (fast, and it counts its
calls), a second version of it (another keypoint model id), and pose embedders that differ
from the default only in their model id and weighting, or whose vectors are not unit length.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from pipelines.catalog import keypoint_models, pose_models
from pipelines.pose.embedding import GeometricPoseEmbedder
from pipelines.pose.keypoints import KeypointDetector
from pipelines.records import FloatArray, Pose
from tests.synthetic import STANDING, make_pose

FIXED_POSE_MODEL = "fixed-pose-test"
FIXED_POSE_MODEL_V2 = "fixed-pose-test-v2"
DEVICE_AWARE_MODEL = "device-aware-test"
REWEIGHTED_POSE_MODEL = "geometric-reweighted-test"
BROKEN_POSE_MODEL = "unnormalised-pose-test"


class FixedPoseDetector(KeypointDetector):
    """One person standing in the middle of every image; counts `detect` calls."""

    name = FIXED_POSE_MODEL
    version = "1"
    calls = 0

    @property
    def model_id(self) -> str:
        return f"{self.name}:v{self.version}"

    def detect(self, image: Image.Image) -> list[Pose]:
        type(self).calls += 1
        scale = min(image.width / 100, image.height / 170)
        arr = make_pose(STANDING).array().astype(np.float64)
        arr[:, :2] *= scale
        return [Pose.from_array(arr)]


class FixedPoseDetectorV2(FixedPoseDetector):
    name = FIXED_POSE_MODEL_V2
    version = "2"


class DeviceAwareDetector(FixedPoseDetector):
    """A backend that runs on a device (as RTMPose does), to see the device reach it."""

    name = DEVICE_AWARE_MODEL

    def __init__(self, device: str = "cpu") -> None:
        self.device = device


class ReweightedPoseEmbedder(GeometricPoseEmbedder):
    """The geometric embedding with another position/limb balance: another pose model."""

    name = REWEIGHTED_POSE_MODEL

    def __init__(self) -> None:
        super().__init__(position_weight=0.8)


class BrokenPoseEmbedder(GeometricPoseEmbedder):
    """A broken model: its vectors are not unit length (the asset check must stop them)."""

    name = BROKEN_POSE_MODEL

    def embed(self, pose: Pose) -> FloatArray | None:
        vector = super().embed(pose)
        return None if vector is None else vector * 2


def _register() -> None:
    for registry, name, cls in (
        (keypoint_models, FIXED_POSE_MODEL, FixedPoseDetector),
        (keypoint_models, FIXED_POSE_MODEL_V2, FixedPoseDetectorV2),
        (keypoint_models, DEVICE_AWARE_MODEL, DeviceAwareDetector),
        (pose_models, REWEIGHTED_POSE_MODEL, ReweightedPoseEmbedder),
        (pose_models, BROKEN_POSE_MODEL, BrokenPoseEmbedder),
    ):
        if name not in registry.names():
            registry.register(name)(cls)  # type: ignore[arg-type]


_register()
