"""The per-image steps of indexing, shared by the Dagster assets (and benchmarks)."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pipelines.clip.encoder import ClipEncoder
from pipelines.images import ImageDecodeError, decode_image
from pipelines.pose.embedding import PoseEmbedder
from pipelines.pose.framing import FramingClassifier
from pipelines.pose.keypoints import KeypointDetector
from pipelines.records import DecodedImage, FloatArray, ImageKeypoints, IngestFailure
from pipelines.sources.base import SourceItem, decode_item

Progress = Callable[[int], None]


def _noop(_: int) -> None:
    return None


# Threads decoding a chunk of source items at once (Pillow and hashlib work outside the GIL);
# each holds one full-size decoded image at a time.
DECODE_THREADS = max(1, min(4, os.cpu_count() or 1))


def decode_items(
    entries: Sequence[SourceItem | IngestFailure],
) -> list[DecodedImage | IngestFailure]:
    """`decode_item` of every source item (a failure passes through), in order, on
    `DECODE_THREADS` threads."""

    def decode(entry: SourceItem | IngestFailure) -> DecodedImage | IngestFailure:
        return entry if isinstance(entry, IngestFailure) else decode_item(entry)

    if DECODE_THREADS == 1 or len(entries) < 2:
        return [decode(e) for e in entries]
    with ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="poseframer-decode") as pool:
        return list(pool.map(decode, entries))


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


@dataclass(frozen=True)
class PoseVectors:
    """`(image_id, person_index, vector or None)` for every person, and how many vectors the
    model gave with NaN/inf values (stored as "no vector": they cannot be scored)."""

    vectors: list[tuple[str, int, FloatArray | None]]
    non_finite: int = 0


def embed_poses(embedder: PoseEmbedder, keypoints: Sequence[ImageKeypoints]) -> PoseVectors:
    """Every person's pose vector; a vector with NaN/inf values becomes None (and is counted)."""
    vectors, non_finite = [], 0
    for kp in keypoints:
        for index, pose in enumerate(kp.people):
            vector = embedder.embed(pose)
            if vector is not None and not np.isfinite(vector).all():
                vector, non_finite = None, non_finite + 1
            vectors.append((kp.image_id, index, vector))
    return PoseVectors(vectors, non_finite)


@dataclass(frozen=True)
class ImageAnalysis:
    """What `analyse_images` found: keypoints and CLIP vectors, each with its failures."""

    keypoints: list[ImageKeypoints]
    keypoint_failures: list[IngestFailure]
    clip_ids: list[str]
    clip_vectors: FloatArray  # (len(clip_ids), dim), in the order of clip_ids
    clip_failures: list[IngestFailure]


# Decoded images waiting for each model: enough to keep a model busy while the next image is
# read and decoded, few enough that memory stays bounded whatever the batch size.
PREFETCH_IMAGES = 4


@dataclass(frozen=True)
class _Decoded:
    """One input, decoded (`image`) or not (`error`, the reason)."""

    image_id: str
    source_uri: str
    image: Image.Image | None
    error: str | None = None


class _ModelWorker(threading.Thread):
    """Runs one model over the decoded images put in its inbox, in order, on its own thread.

    `handle` takes one input and `finish` is called at the end; both return how many inputs
    they completed. Progress is counted here and reported by the feeding thread (`report`),
    so callbacks (which write the Dagster log) only ever run on the caller's thread.
    """

    def __init__(
        self, name: str, handle: Callable[[_Decoded], int], finish: Callable[[], int]
    ) -> None:
        super().__init__(name=f"poseframer-{name}", daemon=True)
        self.inbox: queue.Queue[_Decoded | None] = queue.Queue(PREFETCH_IMAGES)
        self.handle = handle
        self.finish = finish
        self.error: BaseException | None = None
        self._done = 0
        self._reported = 0

    def run(self) -> None:
        try:
            while (item := self.inbox.get()) is not None:
                self._done += self.handle(item)
            self._done += self.finish()
        except BaseException as exc:  # re-raised on the caller's thread
            self.error = exc

    def put(self, item: _Decoded | None) -> None:
        """Queue `item` (None: the end), waiting while the model is behind."""
        while True:
            self.raise_if_failed()
            try:
                self.inbox.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def wait(self, progress: Progress) -> None:
        while self.is_alive():
            self.join(timeout=0.5)
            self.report(progress)
        if self.error is not None:
            raise self.error
        self.report(progress)

    def report(self, progress: Progress) -> None:
        done = self._done
        if done > self._reported:
            progress(done - self._reported)
            self._reported = done

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error
        if not self.is_alive():
            raise RuntimeError(f"{self.name} stopped before the end of its input")

    def stop(self) -> None:
        """Make the thread end soon (after its current input) when the caller gave up."""
        while True:
            try:
                self.inbox.get_nowait()
            except queue.Empty:
                break
        with contextlib.suppress(queue.Full):
            self.inbox.put_nowait(None)
        self.join(timeout=60)


def analyse_images(
    images: Iterable[tuple[str, str, bytes]],
    detector: KeypointDetector | None = None,
    encoder: ClipEncoder | None = None,
    batch_size: int = 32,
    keypoint_progress: Progress = _noop,
    clip_progress: Progress = _noop,
) -> ImageAnalysis:
    """Keypoints (with `detector`) and CLIP vectors (with `encoder`) of `(image_id,
    source_uri, original bytes)`, each image decoded once.

    The calling thread reads and decodes while each model runs on a thread of its own, so
    reading, decoding and the two models overlap (their heavy work, in LiteRT, torch and
    Pillow, runs outside the GIL). Each model sees the images in input order and CLIP gets the
    same batches of `batch_size` as a sequential loop, so the results are those of one. A
    model that fails on one image records it and goes on; a CLIP batch that fails stops the
    call with its error. Raises ClipUnavailableError (before decoding anything) when the
    encoder's weights cannot be loaded.
    """
    if encoder is not None:
        encoder.load()
    keypoints: list[ImageKeypoints] = []
    keypoint_failures: list[IngestFailure] = []
    clip_ids: list[str] = []
    chunks: list[FloatArray] = []
    clip_failures: list[IngestFailure] = []
    workers: list[tuple[_ModelWorker, Progress]] = []

    if detector is not None:
        model = detector

        def detect(item: _Decoded) -> int:
            if item.image is None:
                keypoint_failures.append(IngestFailure(item.source_uri, f"keypoints: {item.error}"))
                return 1
            try:
                people = model.detect(item.image)
            except Exception as exc:  # a model crash on one image must not lose the batch
                keypoint_failures.append(
                    IngestFailure(item.source_uri, f"keypoints: {type(exc).__name__}: {exc}")
                )
            else:
                keypoints.append(ImageKeypoints(item.image_id, model.model_id, tuple(people)))
            return 1

        workers.append((_ModelWorker("keypoints", detect, lambda: 0), keypoint_progress))

    if encoder is not None:
        clip = encoder
        pending: list[tuple[str, Image.Image]] = []

        def flush() -> int:
            if not pending:
                return 0
            chunks.append(clip.encode_images([im for _, im in pending]))
            clip_ids.extend(i for i, _ in pending)
            done = len(pending)
            pending.clear()
            return done

        def collect(item: _Decoded) -> int:
            if item.image is None:
                clip_failures.append(IngestFailure(item.source_uri, f"clip: {item.error}"))
                return 1
            pending.append((item.image_id, item.image))
            return flush() if len(pending) >= batch_size else 0

        workers.append((_ModelWorker("clip", collect, flush), clip_progress))

    for worker, _ in workers:
        worker.start()
    try:
        for image_id, uri, data in images:
            try:
                image, _ = decode_image(data)
                decoded = _Decoded(image_id, uri, image)
            except ImageDecodeError as exc:
                decoded = _Decoded(image_id, uri, None, str(exc))
            except Exception as exc:  # a decoder bug on hostile bytes: that image only
                decoded = _Decoded(image_id, uri, None, f"{type(exc).__name__}: {exc}")
            for worker, progress in workers:
                worker.put(decoded)
                worker.report(progress)
            del decoded
        for worker, _ in workers:
            worker.put(None)
        for worker, progress in workers:
            worker.wait(progress)
    finally:
        for worker, _ in workers:
            if worker.is_alive():
                worker.stop()
    dim = encoder.dim if encoder is not None else 0
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, dim), dtype=np.float32)
    return ImageAnalysis(keypoints, keypoint_failures, clip_ids, vectors, clip_failures)
