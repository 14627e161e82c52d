"""Turning a search request's inputs into query vectors, with the index's own code paths."""

from __future__ import annotations

from pipelines.clip import ClipEncoder
from pipelines.images import decode_image
from pipelines.keypoints import KeypointDetector, pose_from_keypoint_list
from pipelines.pose_embedding import PoseEmbedder
from pipelines.records import FloatArray, Pose


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
