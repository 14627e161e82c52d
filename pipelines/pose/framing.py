"""Framing (portrait classification) from keypoints: how much of each person is in view."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from pipelines.records import COCO17_INDEX, Framing, Pose
from pipelines.registry import Registry


class FramingClassifier(abc.ABC):
    name: str

    @property
    @abc.abstractmethod
    def model_id(self) -> str: ...

    @abc.abstractmethod
    def classify(self, pose: Pose) -> Framing: ...

    def classify_image(self, people: Sequence[Pose]) -> Framing:
        """The image's framing: that of its most prominent person, or `no_person`."""
        if not people:
            return Framing.NO_PERSON
        return self.classify(max(people, key=_pose_area))


framing_models: Registry[FramingClassifier] = Registry("framing")


def _pose_area(pose: Pose) -> float:
    box = pose.bbox(min_score=0.3)
    return box[2] * box[3] if box else 0.0


def _idx(*names: str) -> list[int]:
    return [COCO17_INDEX[n] for n in names]


_FACE = _idx("nose", "left_eye", "right_eye", "left_ear", "right_ear")
_SHOULDERS = _idx("left_shoulder", "right_shoulder")
_ELBOWS_HIPS = _idx("left_elbow", "right_elbow", "left_hip", "right_hip")
_KNEES = _idx("left_knee", "right_knee")
_ANKLES = _idx("left_ankle", "right_ankle")


@framing_models.register("keypoint-rules-v1")
class KeypointFramingClassifier(FramingClassifier):
    """Rules on which joints are seen (score ≥ `min_score`):

    - `full_body`: an ankle, or both knees (legs in view);
    - `upper_body`: a shoulder and an elbow or hip, but not the legs;
    - `portrait`: only head and shoulders;
    - `no_person`: fewer than 2 seen joints.
    """

    name = "keypoint-rules-v1"

    def __init__(self, min_score: float = 0.3) -> None:
        self.min_score = min_score

    @property
    def model_id(self) -> str:
        return f"{self.name}(min_score={self.min_score:g})"

    def classify(self, pose: Pose) -> Framing:
        seen = [kp[2] >= self.min_score for kp in pose.keypoints]
        if sum(seen) < 2:
            return Framing.NO_PERSON
        if any(seen[i] for i in _ANKLES) or all(seen[i] for i in _KNEES):
            return Framing.FULL_BODY
        if any(seen[i] for i in _SHOULDERS) and any(seen[i] for i in _ELBOWS_HIPS):
            return Framing.UPPER_BODY
        if any(seen[i] for i in _FACE + _SHOULDERS):
            return Framing.PORTRAIT
        return Framing.UPPER_BODY
