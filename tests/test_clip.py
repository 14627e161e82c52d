"""CLIP encoders: the plumbing with a tiny random-weight open_clip model, and the refusal to
pretend when real weights are missing. Nothing here may reach the model hub."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.catalog import clip_models
from pipelines.clip.encoder import ClipEncoder, ClipUnavailableError, OpenClipEncoder
from tests.synthetic import split_image

TINY_CONFIG = Path(__file__).resolve().parent / "fixtures" / "poseframer-tiny-clip.json"
TINY_MODEL = "poseframer-tiny-clip"
TINY_DIM = 32  # embed_dim of the fixture config


@pytest.fixture(scope="module")
def tiny() -> ClipEncoder:
    encoder = clip_models.load(
        "open-clip", model=TINY_MODEL, pretrained="random", config_path=str(TINY_CONFIG)
    )
    encoder.load()
    return encoder


def images() -> list[Image.Image]:
    rng = np.random.default_rng(3)
    out = [
        Image.fromarray(rng.integers(0, 256, (40 + 7 * i, 60, 3), dtype=np.uint8)) for i in range(5)
    ]
    out.append(split_image((90, 30)))
    out.append(Image.new("L", (50, 50), 128))  # greyscale input works too
    return out


TEXTS = ["a dancer mid-leap", "a seated figure", "hands on hips", "", "x" * 400]


def test_random_weights_are_never_hidden(tiny: ClipEncoder) -> None:
    assert tiny.random_weights
    assert tiny.model_id == f"open-clip:{TINY_MODEL}:random-weights"
    assert tiny.available()
    assert tiny.dim == TINY_DIM


def test_vectors_are_l2_normalised_float32_of_the_config_dim(tiny: ClipEncoder) -> None:
    for vectors, n in ((tiny.encode_images(images()), 7), (tiny.encode_texts(TEXTS), 5)):
        assert vectors.dtype == np.float32
        assert vectors.shape == (n, TINY_DIM)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert np.isfinite(vectors).all()
    # Different inputs, different vectors: the model really ran.
    texts = tiny.encode_texts(TEXTS)
    assert float(texts[0] @ texts[1]) < 0.9999


def test_empty_input_gives_an_empty_matrix(tiny: ClipEncoder) -> None:
    assert tiny.encode_images([]).shape == (0, TINY_DIM)
    assert tiny.encode_texts([]).shape == (0, TINY_DIM)


def test_batching_does_not_change_the_vectors(tiny: ClipEncoder) -> None:
    ims = images()
    together = tiny.encode_images(ims)
    one_by_one = np.concatenate([tiny.encode_images([im]) for im in ims])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    texts_together = tiny.encode_texts(TEXTS)
    texts_alone = np.concatenate([tiny.encode_texts([t]) for t in TEXTS])
    np.testing.assert_allclose(texts_together, texts_alone, atol=1e-5)


def test_two_encoders_agree(tiny: ClipEncoder) -> None:
    # The random initialisation is seeded, so an index and a service built in different
    # processes (here: different instances, and a batch size that splits the input) agree.
    other = OpenClipEncoder(
        model=TINY_MODEL, pretrained="random", config_path=str(TINY_CONFIG), batch_size=3
    )
    assert other is not tiny
    np.testing.assert_allclose(
        other.encode_images(images()), tiny.encode_images(images()), atol=1e-5
    )
    np.testing.assert_allclose(other.encode_texts(TEXTS), tiny.encode_texts(TEXTS), atol=1e-5)


def test_a_missing_checkpoint_is_reported_not_replaced(tmp_path: Path) -> None:
    missing = tmp_path / "weights" / "clip.pt"
    encoder = OpenClipEncoder(
        model=TINY_MODEL, pretrained=str(missing), config_path=str(TINY_CONFIG)
    )
    assert not encoder.random_weights
    assert "random" not in encoder.model_id
    assert encoder.available() is False
    with pytest.raises(ClipUnavailableError) as info:
        encoder.encode_texts(["a pose"])
    message = str(info.value)
    assert str(missing) in message
    assert "POSEFRAMER_CLIP_PRETRAINED" in message
    assert encoder.unavailable_reason == message
    with pytest.raises(ClipUnavailableError):  # and it stays unavailable
        encoder.encode_images([split_image()])


def test_a_corrupt_checkpoint_is_reported_not_replaced(tmp_path: Path) -> None:
    checkpoint = tmp_path / "clip.pt"
    checkpoint.write_bytes(b"definitely not a torch checkpoint")
    encoder = OpenClipEncoder(
        model=TINY_MODEL, pretrained=str(checkpoint), config_path=str(TINY_CONFIG)
    )
    # A checkpoint is identified by its content, so replacing the file changes the model id.
    assert encoder.model_id.startswith(f"open-clip:{TINY_MODEL}:sha256-")
    assert not encoder.available()
    with pytest.raises(ClipUnavailableError, match="POSEFRAMER_CLIP_PRETRAINED"):
        encoder.load()


def test_an_unknown_architecture_is_a_clear_error() -> None:
    encoder = OpenClipEncoder(model="ViT-Nonexistent-99", pretrained="random")
    assert not encoder.available()
    with pytest.raises(ClipUnavailableError, match="no model named 'ViT-Nonexistent-99'"):
        encoder.encode_texts(["x"])
    with pytest.raises(ClipUnavailableError, match="ViT-Nonexistent-99"):
        _ = encoder.dim


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    encoder = OpenClipEncoder(
        model=TINY_MODEL, pretrained="random", config_path=str(tmp_path / "nope.json")
    )
    assert not encoder.available()
    with pytest.raises(ClipUnavailableError, match="config not found"):
        encoder.load()
