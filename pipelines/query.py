"""Turning a search request's inputs into query vectors, with the index's own code paths."""

from __future__ import annotations

import numpy as np

from pipelines.clip import ClipEncoder
from pipelines.images import decode_image
from pipelines.keypoints import KeypointDetector, pose_from_keypoint_list
from pipelines.pose_embedding import PoseEmbedder
from pipelines.records import COCO17_INDEX, COCO17_NAMES, NUM_JOINTS, FloatArray, Pose


class QueryError(ValueError):
    """The query cannot be answered as asked; the message says why and what to do."""


class NoFigureFoundError(QueryError):
    pass


def pose_from_image(data: bytes, detector: KeypointDetector) -> tuple[Pose, int, int]:
    """The most prominent figure in a photo or sketch, with the image size."""
    image, _ = decode_image(data)
    people = detector.detect(image)
    if not people:
        raise NoFigureFoundError(
            "no human figure was found in the uploaded image. Sketches work best as clear, "
            "filled figures on a plain background; or send the pose itself as `keypoints` "
            "(17 COCO-17 [x, y, score] triples)."
        )
    return people[0], image.width, image.height


def pose_vector(pose: Pose, embedder: PoseEmbedder) -> FloatArray:
    vector = embedder.embed(pose)
    if vector is None:
        raise QueryError(
            "too few joints are given to compare poses: mark at least 4 joints with a "
            "score above 0.3 (score 0 means 'don't care')"
        )
    return vector


def pose_vector_from_keypoints(keypoints: list[list[float]], embedder: PoseEmbedder) -> FloatArray:
    try:
        pose = pose_from_keypoint_list(keypoints)
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    return pose_vector(pose, embedder)


def text_vector(text: str, encoder: ClipEncoder) -> FloatArray:
    vector: FloatArray = encoder.encode_texts([text])[0]
    return vector


# Body-part focus: a query may name joints or these groups; only those joints then count.
JOINT_GROUPS: dict[str, tuple[str, ...]] = {
    "head": ("nose", "left_eye", "right_eye", "left_ear", "right_ear"),
    "left_arm": ("left_shoulder", "left_elbow", "left_wrist"),
    "right_arm": ("right_shoulder", "right_elbow", "right_wrist"),
    "arms": (
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
    ),
    "torso": ("left_shoulder", "right_shoulder", "left_hip", "right_hip"),
    "left_leg": ("left_hip", "left_knee", "left_ankle"),
    "right_leg": ("right_hip", "right_knee", "right_ankle"),
    "legs": ("left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle"),
}
JOINT_GROUPS["upper_body"] = JOINT_GROUPS["head"] + JOINT_GROUPS["arms"] + ("left_hip", "right_hip")
JOINT_GROUPS["lower_body"] = JOINT_GROUPS["legs"]


def focus_joints(names: list[str]) -> frozenset[int]:
    """COCO-17 indices of the named joints and groups; unknown names list the valid ones."""
    indices: set[int] = set()
    unknown = []
    for name in names:
        if name in JOINT_GROUPS:
            indices.update(COCO17_INDEX[j] for j in JOINT_GROUPS[name])
        elif name in COCO17_INDEX:
            indices.add(COCO17_INDEX[name])
        else:
            unknown.append(name)
    if unknown:
        raise QueryError(
            f"unknown joint or body part {', '.join(map(repr, unknown))}; use one of the groups "
            f"{', '.join(sorted(JOINT_GROUPS))} or a COCO-17 joint name ({', '.join(COCO17_NAMES)})"
        )
    return frozenset(indices)


def focus_pose(pose: Pose, joints: frozenset[int]) -> Pose:
    """`pose` with every joint outside `joints` set to "don't care" (score 0)."""
    arr = pose.array().astype(np.float64)
    keep = np.zeros(NUM_JOINTS, dtype=bool)
    keep[list(joints)] = True
    arr[~keep, 2] = 0.0
    return Pose.from_array(arr, extras=pose.extras, score=pose.score)


_MIRROR = [
    COCO17_INDEX[n.replace("left_", "#").replace("right_", "left_").replace("#", "right_")]
    for n in COCO17_NAMES
]


def mirror_pose(pose: Pose) -> Pose:
    """The left-right mirror image: x flipped and the subject's left and right swapped.

    Pose vectors are translation-invariant, so flipping about x = 0 is as good as about the
    image's centre line.
    """
    arr = pose.array().astype(np.float64)[_MIRROR]
    arr[:, 0] = -arr[:, 0]
    extras = tuple(
        (
            name.replace("left_", "#").replace("right_", "left_").replace("#", "right_"),
            -x,
            y,
            s,
        )
        for name, x, y, s in pose.extras
    )
    return Pose.from_array(arr, extras=extras, score=pose.score)
