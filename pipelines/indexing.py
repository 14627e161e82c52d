"""The per-image steps of indexing, shared by the Dagster assets (and benchmarks)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pipelines.clip import ClipEncoder
from pipelines.framing import FramingClassifier
from pipelines.images import ImageDecodeError, decode_image
from pipelines.keypoints import KeypointDetector
from pipelines.pose_embedding import PoseEmbedder
from pipelines.records import FloatArray, ImageKeypoints, IngestFailure

Progress = Callable[[int], None]


def _noop(_: int) -> None:
    return None


def detect_keypoints(
    detector: KeypointDetector,
    images: Iterable[tuple[str, str, bytes]],
    progress: Progress = _noop,
) -> tuple[list[ImageKeypoints], list[IngestFailure]]:
    """People in each `(image_id, source_uri, original bytes)`; failures keep their reason."""
    results: list[ImageKeypoints] = []
    failures: list[IngestFailure] = []
    for image_id, uri, data in images:
        try:
            image, _ = decode_image(data)
            people = detector.detect(image)
        except ImageDecodeError as exc:
            failures.append(IngestFailure(uri, f"keypoints: {exc}"))
        except Exception as exc:  # a model crash on one image must not lose the batch
            failures.append(IngestFailure(uri, f"keypoints: {type(exc).__name__}: {exc}"))
        else:
            results.append(ImageKeypoints(image_id, detector.model_id, tuple(people)))
        progress(1)
    return results, failures


@dataclass(frozen=True)
class ImageFraming:
    image_id: str
    framing: str
    person_framing: tuple[str, ...]


def classify_framing(
    classifier: FramingClassifier, keypoints: Sequence[ImageKeypoints]
) -> list[ImageFraming]:
    return [
        ImageFraming(
            kp.image_id,
            classifier.classify_image(kp.people).value,
            tuple(classifier.classify(p).value for p in kp.people),
        )
        for kp in keypoints
    ]


def embed_poses(
    embedder: PoseEmbedder, keypoints: Sequence[ImageKeypoints]
) -> list[tuple[str, int, FloatArray | None]]:
    """`(image_id, person_index, vector or None)` for every person."""
    return [
        (kp.image_id, index, embedder.embed(pose))
        for kp in keypoints
        for index, pose in enumerate(kp.people)
    ]


def embed_images(
    encoder: ClipEncoder,
    images: Iterable[tuple[str, str, bytes]],
    batch_size: int,
    progress: Progress = _noop,
) -> tuple[list[str], FloatArray, list[IngestFailure]]:
    """CLIP vectors of `(image_id, source_uri, bytes)`, encoded `batch_size` at a time.

    Raises ClipUnavailableError (before decoding anything) when weights cannot be loaded.
    """
    encoder.load()
    ids: list[str] = []
    chunks: list[FloatArray] = []
    failures: list[IngestFailure] = []
    pending: list[tuple[str, Image.Image]] = []

    def flush() -> None:
        if pending:
            chunks.append(encoder.encode_images([im for _, im in pending]))
            ids.extend(i for i, _ in pending)
            progress(len(pending))
            pending.clear()

    for image_id, uri, data in images:
        try:
            image, _ = decode_image(data)
        except ImageDecodeError as exc:
            failures.append(IngestFailure(uri, f"clip: {exc}"))
            progress(1)
            continue
        pending.append((image_id, image))
        if len(pending) >= batch_size:
            flush()
    flush()
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, encoder.dim), dtype=np.float32)
    return ids, vectors, failures
