"""`analyse_images`: keypoints and CLIP side by side on each image decoded once, with the
results, order, failures and progress of running each model alone, one image after another."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from pipelines import indexing
from pipelines.clip.encoder import ClipEncoder, ClipUnavailableError
from pipelines.images import decode_image, image_id_of
from pipelines.indexing import analyse_images, decode_items
from pipelines.pose.keypoints import KeypointDetector
from pipelines.records import FloatArray, IngestFailure, Pose
from pipelines.sources.base import SourceItem, decode_item
from tests.synthetic import STANDING, make_pose


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (40 + seed, 30 + 2 * seed, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG")
    return out.getvalue()


def _inputs(count: int, broken: tuple[int, ...] = ()) -> list[tuple[str, str, bytes]]:
    rows = []
    for i in range(count):
        data = b"not an image" if i in broken else _jpeg(i)
        rows.append((image_id_of(data + bytes([i])), f"/photos/{i}.jpg", data))
    return rows


class SizeDetector(KeypointDetector):
    """One person scaled to the image; fails on images `fail_width` wide; records its threads."""

    name = "size-test"

    def __init__(self, fail_width: int | None = None, delay: float = 0.0) -> None:
        self.fail_width = fail_width
        self.delay = delay
        self.threads: set[str] = set()

    @property
    def model_id(self) -> str:
        return "size-test:v1"

    def detect(self, image: Image.Image) -> list[Pose]:
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        if image.width == self.fail_width:
            raise RuntimeError("model crashed")
        arr = make_pose(STANDING).array().astype(np.float64)
        arr[:, :2] *= image.width / 100
        return [Pose.from_array(arr)]


class MeanColourEncoder(ClipEncoder):
    """Each image's mean colour (and its batch size), so batching shows in the vectors."""

    name = "mean-colour-test"

    def __init__(self, fail_on_batch: int | None = None, available: bool = True) -> None:
        self.batches: list[int] = []
        self.fail_on_batch = fail_on_batch
        self.is_available = available

    @property
    def model_id(self) -> str:
        return "mean-colour-test"

    @property
    def dim(self) -> int:
        return 4

    def load(self) -> None:
        if not self.is_available:
            raise ClipUnavailableError("no weights here")

    def encode_images(self, images: list[Image.Image]) -> FloatArray:
        if len(self.batches) == self.fail_on_batch:
            raise RuntimeError("CUDA out of memory")
        self.batches.append(len(images))
        rows = [[*np.asarray(im, dtype=np.float32).mean(axis=(0, 1)), len(images)] for im in images]
        vectors = np.asarray(rows, dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def encode_texts(self, texts: list[str]) -> FloatArray:
        raise NotImplementedError


def _sequential(
    rows: list[tuple[str, str, bytes]], detector: SizeDetector, encoder: MeanColourEncoder
) -> tuple[list[tuple[str, list[Pose]]], list[str], FloatArray]:
    """What each model gives alone, image after image, in batches of 3."""
    decoded = []
    for image_id, _, data in rows:
        try:
            decoded.append((image_id, decode_image(data)[0]))
        except ValueError:
            continue
    people = [(i, detector.detect(im)) for i, im in decoded if im.width != detector.fail_width]
    vectors = [
        encoder.encode_images([im for _, im in decoded[start : start + 3]])
        for start in range(0, len(decoded), 3)
    ]
    return people, [i for i, _ in decoded], np.concatenate(vectors)


def test_results_are_those_of_each_model_alone() -> None:
    rows = _inputs(11, broken=(4,))
    detector, encoder = SizeDetector(fail_width=30 + 2 * 7), MeanColourEncoder()
    kp_done: list[int] = []
    clip_done: list[int] = []
    main_thread = threading.current_thread().name

    def on_kp(n: int) -> None:
        assert threading.current_thread().name == main_thread
        kp_done.append(n)

    found = analyse_images(rows, detector, encoder, 3, on_kp, clip_done.append)

    people, clip_ids, vectors = _sequential(rows, SizeDetector(30 + 2 * 7), MeanColourEncoder())
    assert [(k.image_id, list(k.people)) for k in found.keypoints] == people
    assert all(k.model_id == "size-test:v1" for k in found.keypoints)
    assert found.clip_ids == clip_ids
    np.testing.assert_array_equal(found.clip_vectors, vectors)
    assert encoder.batches == [3, 3, 3, 1]
    assert [(f.source_uri, f.reason.split(":")[0]) for f in found.keypoint_failures] == [
        ("/photos/4.jpg", "keypoints"),
        ("/photos/7.jpg", "keypoints"),
    ]
    assert "not an image" in found.keypoint_failures[0].reason
    assert "RuntimeError: model crashed" in found.keypoint_failures[1].reason
    assert [f.source_uri for f in found.clip_failures] == ["/photos/4.jpg"]
    assert found.clip_failures[0].reason.startswith("clip: not an image")
    assert sum(kp_done) == sum(clip_done) == len(rows)
    assert detector.threads and main_thread not in detector.threads


def test_each_model_runs_alone() -> None:
    rows = _inputs(5)
    only_clip = analyse_images(rows, encoder=MeanColourEncoder(), batch_size=2)
    ids, vectors, failures = only_clip.clip_ids, only_clip.clip_vectors, only_clip.clip_failures
    assert len(ids) == 5 and vectors.shape == (5, 4) and failures == []
    assert only_clip.keypoints == []
    only_kp = analyse_images(rows, detector=SizeDetector())
    keypoints, kp_failures = only_kp.keypoints, only_kp.keypoint_failures
    assert [k.image_id for k in keypoints] == [r[0] for r in rows] and kp_failures == []
    assert only_kp.clip_ids == [] and only_kp.clip_vectors.shape[0] == 0


def test_a_failing_clip_batch_raises_without_hanging() -> None:
    rows = _inputs(12)
    with pytest.raises(RuntimeError, match="out of memory"):
        analyse_images(rows, SizeDetector(delay=0.01), MeanColourEncoder(fail_on_batch=1), 3)
    assert not [t for t in threading.enumerate() if t.name.startswith("poseframer-")]


def test_clip_without_weights_fails_before_reading_anything() -> None:
    def never() -> list[tuple[str, str, bytes]]:
        raise AssertionError("read")

    class Lazy:
        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(never())

    with pytest.raises(ClipUnavailableError):
        analyse_images(Lazy(), SizeDetector(), MeanColourEncoder(available=False))  # type: ignore[arg-type]


def test_decoded_images_in_flight_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow model holds back the reading: at most the prefetch queue plus a CLIP batch of
    decoded images exist at once, whatever the number of images."""
    alive = 0
    most = 0
    lock = threading.Lock()
    real_decode = indexing.decode_image

    class Tracked:
        def __init__(self) -> None:
            nonlocal alive, most
            with lock:
                alive += 1
                most = max(most, alive)

        def __del__(self) -> None:
            nonlocal alive
            with lock:
                alive -= 1

    def decode(data: bytes) -> tuple[Image.Image, str]:
        image, fmt = real_decode(data)
        image.info["tracked"] = Tracked()  # freed with the image
        return image, fmt

    monkeypatch.setattr(indexing, "decode_image", decode)
    found = analyse_images(_inputs(40), SizeDetector(delay=0.01), MeanColourEncoder(), 4)
    assert len(found.keypoints) == 40 and len(found.clip_ids) == 40
    assert 2 <= most <= 2 * indexing.PREFETCH_IMAGES + 4 + 3, most


def test_source_items_decode_on_threads_in_order() -> None:
    items: list[SourceItem | IngestFailure] = [
        SourceItem(f"/photos/{i}.jpg", _jpeg(i)) for i in range(9)
    ]
    items[3] = SourceItem("/photos/3.jpg", b"")
    items[5] = IngestFailure("/photos/5.jpg", "fetch: HTTP 404")
    decoded = decode_items(items)
    assert decoded == [e if isinstance(e, IngestFailure) else decode_item(e) for e in items]
    assert isinstance(decoded[3], IngestFailure) and "empty" in decoded[3].reason
    assert decoded[5] is items[5]


def test_a_pose_vector_with_nan_is_stored_as_no_vector_and_counted() -> None:
    from pipelines.pose.embedding import PoseEmbedder
    from pipelines.records import ImageKeypoints

    class HalfBroken(PoseEmbedder):
        name = "half-broken"
        model_id = "half-broken"
        dim = 2

        def embed_array(self, keypoints: object) -> tuple[FloatArray, np.ndarray]:
            raise AssertionError("not used: embed is")

        def embed(self, pose: Pose) -> FloatArray | None:
            x = float(pose.array()[0, 0])
            return np.array([np.nan if x > 150 else 1.0, 0.0], np.float32)

    people = [make_pose(STANDING), make_pose({k: (x + 200, y) for k, (x, y) in STANDING.items()})]
    found = indexing.embed_poses(HalfBroken(), [ImageKeypoints("img", "kp", tuple(people))])
    assert found.non_finite == 1
    assert [(i, p) for i, p, _ in found.vectors] == [("img", 0), ("img", 1)]
    vectors = [v for *_, v in found.vectors]
    assert vectors[1] is None and vectors[0] is not None and np.isfinite(vectors[0]).all()
