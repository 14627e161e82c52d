"""Turning a search request's inputs into query vectors, with the index's own code paths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import ImageOps

from pipelines.clip.encoder import ClipEncoder
from pipelines.errors import QueryError
from pipelines.images import decode_image
from pipelines.pose.drawn.figures import COCO_OF_JOINT
from pipelines.pose.drawn.reader import MIN_AGREEMENT, mirror_agreement
from pipelines.pose.embedding import PoseEmbedder
from pipelines.pose.figure_geometry import share_head
from pipelines.pose.keypoints import KeypointDetector
from pipelines.pose.medium import is_drawing
from pipelines.pose.person_detection import box_iou_xyxy
from pipelines.records import (
    COCO17_INDEX,
    COCO17_MIRROR,
    COCO17_NAMES,
    NUM_JOINTS,
    FloatArray,
    Pose,
    swap_sides,
)


class NoFigureFoundError(QueryError):
    pass


class ImageDataError(QueryError):
    """The image sent with a query cannot be used as sent (not base64, empty, a bad data URL)."""


class ImageTooLargeError(QueryError):
    """The image sent with a query is larger than the service accepts."""


def pose_from_image(data: bytes, detector: KeypointDetector) -> tuple[Pose, int, int]:
    """The most prominent figure in a photo or sketch, with the image size."""
    figure = figure_from_image(data, detector)
    return figure.pose, figure.width, figure.height


def _no_figure() -> NoFigureFoundError:
    return NoFigureFoundError(
        "no human figure was found in the uploaded image. Sketches work best as clear, "
        "filled figures on a plain background; or send the pose itself as `keypoints` "
        "(17 COCO-17 [x, y, score] triples)."
    )


def pose_vector(pose: Pose, embedder: PoseEmbedder) -> FloatArray:
    vector = embedder.embed(pose)
    if vector is None:
        raise QueryError(
            "too few joints are given to compare poses: mark at least 4 joints with a "
            "score above 0.3 (score 0 means 'don't care')"
        )
    return vector


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


# A reading of the mirrored picture with another head is still the query figure's body when the
# boxes around their joints overlap by at least this much (intersection over union).
SAME_FIGURE_IOU = 0.5


def mirror_pose(pose: Pose, width: float = 0.0) -> Pose:
    """The left-right mirror image: x reflected and the subject's left and right swapped.

    With the picture's `width` the pose lands where it lies in the mirrored picture
    (x → width − x); without it, it is reflected about x = 0, which pose vectors cannot tell
    apart (they are translation-invariant).
    """
    arr = pose.array().astype(np.float64)[list(COCO17_MIRROR)]
    arr[:, 0] = width - arr[:, 0]
    extras = tuple((swap_sides(name), width - x, y, s) for name, x, y, s in pose.extras)
    return Pose.from_array(arr, extras=extras, score=pose.score)


def mirror_joints(joints: frozenset[int]) -> frozenset[int]:
    """The same joints of the mirrored figure (a left arm's mirror image is a right arm)."""
    return frozenset(COCO17_MIRROR[j] for j in joints)


@dataclass(frozen=True)
class ImageFigure:
    """The figure an image query searches for, in the uploaded picture's pixels, and (when
    asked for) the same figure as the detector reads it in the left-right mirrored picture,
    in that picture's pixels."""

    pose: Pose
    width: int
    height: int
    mirrored: Pose | None = None
    # With a mirror reading: the share of the figure's body joints (the drawn-figure model's
    # 13) that the mirrored picture's reading of the same body puts where the figure has them
    # (`figure_agreement`); 0 where no reading of the mirrored picture is that body.
    agreement: float | None = None

    @property
    def unsure(self) -> bool:
        """The figure reads otherwise from the mirror image: the index's drawings need this
        much agreement to hold a figure (`DrawnFigureReader`'s mirror check)."""
        return self.agreement is not None and self.agreement < MIN_AGREEMENT


def figure_from_image(
    data: bytes, detector: KeypointDetector, mirror: bool | None = False
) -> ImageFigure:
    """The most prominent figure of an image and, with `mirror`, its mirror image (`mirror`
    None: only for a drawing, whose left and right are ambiguous: a front or a back view).

    The mirror image is what the detector reads in the mirrored picture, not the figure merely
    reflected: the index holds the detector's readings of pictures, and the detector is not
    left-right symmetric: its reading of a mirrored picture, reflected back, can differ from
    its reading of the picture as much as two different people standing alike do, so
    reflection alone let such people outrank a mirrored copy's own picture (mirror rank-1 in
    `benchmarks.pose_eval`). When the mirrored picture has no reading of
    the same body (see `_same_figure`), the reflected figure stands in; when only the mirrored
    picture shows a figure, the query is that figure's mirror image.
    """
    image, _ = decode_image(data)
    if mirror is None:
        mirror = is_drawing(image)
    people = detector.detect(image)
    if not mirror:
        if not people:
            raise _no_figure()
        return ImageFigure(people[0], image.width, image.height)
    readings = detector.detect(ImageOps.mirror(image))
    if not people:
        if not readings:
            raise _no_figure()
        return ImageFigure(
            mirror_pose(readings[0], image.width), image.width, image.height, readings[0], 0.0
        )
    figure = people[0]
    same = _same_figure(mirror_pose(figure, image.width), readings)
    return ImageFigure(
        figure,
        image.width,
        image.height,
        same or mirror_pose(figure, image.width),
        0.0 if same is None else figure_agreement(figure, same, image.width),
    )


def figure_agreement(figure: Pose, mirrored: Pose, width: int) -> float:
    """The share of `figure`'s body joints (the 13 the drawn-figure model reads: a drawn head
    has no face) that `mirrored`, the same body read in the mirrored picture `width` pixels
    wide, puts within the mirror check's radius of them, either side assignment: the
    drawn-figure reader's own rule (`mirror_agreement`)."""
    body = list(COCO_OF_JOINT)
    return mirror_agreement(figure.array()[body], mirrored.array()[body], width)


def _same_figure(pose: Pose, candidates: list[Pose]) -> Pose | None:
    """The candidate that is the same body as `pose`, or None.

    The same body shares the head (the face of one lies in the head box of the other), or
    failing that, the boxes around the joints overlap by at least SAME_FIGURE_IOU. Readings of
    one drawn figure can differ in every limb and still share the head; two people side by
    side can overlap in their boxes and not in their heads.
    """
    box = _joint_box(pose)
    best, best_key = None, (False, SAME_FIGURE_IOU)
    for candidate in candidates:
        key = (share_head(pose, candidate), box_iou_xyxy(box, _joint_box(candidate)))
        if (key[0] or key[1] >= SAME_FIGURE_IOU) and key >= best_key:
            best, best_key = candidate, key
    return best


def _joint_box(pose: Pose) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) around every joint position (a detector places unseen joints too)."""
    points = pose.array()[:, :2].astype(np.float64)
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)
