"""Decoding, identity and renditions of images (synthetic images made with Pillow)."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from pipelines.images import (
    DISPLAY_SIZE,
    THUMBNAIL_SIZE,
    ImageDecodeError,
    decode_image,
    image_id_of,
    media_type_of,
    rendition,
    thumbnail,
)
from tests.hostile import png_claiming
from tests.synthetic import encode, image_bytes, split_image

RED = np.array([255, 0, 0])
BLUE = np.array([0, 0, 255])
WHITE = np.array([255, 255, 255])


def close(pixel: np.ndarray, expected: np.ndarray, tol: int = 40) -> bool:
    return bool(np.abs(pixel.astype(int) - expected).max() <= tol)


@pytest.mark.parametrize(
    ("fmt", "save"),
    [("JPEG", {"quality": 95}), ("PNG", {}), ("WEBP", {"quality": 95}), ("GIF", {})],
)
def test_decodes_common_formats_to_upright_rgb(fmt: str, save: dict[str, int]) -> None:
    data = encode(split_image((80, 60)), fmt, **save)
    image, got_fmt = decode_image(data)
    assert got_fmt == fmt
    assert image.mode == "RGB"
    assert image.size == (80, 60)
    px = np.asarray(image)
    assert close(px[30, 10], RED), px[30, 10]
    assert close(px[30, 70], BLUE), px[30, 70]
    assert media_type_of(got_fmt) == f"image/{fmt.lower()}"


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    probe = Image.open(io.BytesIO(out.getvalue()))
    assert getattr(probe, "n_frames", 1) == 3  # really animated
    image, fmt = decode_image(out.getvalue())
    assert fmt == "GIF"
    assert close(np.asarray(image)[16, 16], RED)


def test_exif_orientation_is_applied() -> None:
    # Stored 40 wide × 20 high with a red band on the left; Orientation 6 means "rotate 90°
    # clockwise to display", so the viewer sees 20 × 40 with the red band along the top.
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 10, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored, "JPEG", exif=exif, quality=95)
    assert Image.open(io.BytesIO(data)).size == (40, 20)  # the raw pixels are sideways

    image, _ = decode_image(data)
    assert image.size == (20, 40)
    px = np.asarray(image)
    assert close(px[3, 10], RED), px[3, 10]  # top band
    assert close(px[35, 10], BLUE), px[35, 10]  # the rest
    assert close(px[20, 2], BLUE), px[20, 2]  # not the left edge: it really turned


def test_transparent_rgba_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (30, 10), (0, 0, 0, 0))  # transparent black
    rgba.paste((255, 0, 0, 255), (10, 0, 20, 10))  # opaque red
    rgba.paste((255, 0, 0, 128), (20, 0, 30, 10))  # half-transparent red
    image, _ = decode_image(encode(rgba, "PNG"))
    px = np.asarray(image)
    assert image.mode == "RGB"
    assert close(px[5, 5], WHITE, tol=0), px[5, 5]  # not black
    assert close(px[5, 15], RED, tol=0)
    assert close(px[5, 25], np.array([255, 127, 127]), tol=3), px[5, 25]


def test_palette_image_with_transparency_is_composited_on_white() -> None:
    pal = Image.new("P", (20, 10), 0)
    pal.putpalette([0, 0, 0, 0, 200, 0] + [0] * (254 * 3))  # 0: black, 1: green
    pal.paste(1, (10, 0, 20, 10))
    data = encode(pal, "PNG", transparency=0)
    assert Image.open(io.BytesIO(data)).mode == "P"
    image, _ = decode_image(data)
    px = np.asarray(image)
    assert close(px[5, 5], WHITE, tol=0), px[5, 5]
    assert close(px[5, 15], np.array([0, 200, 0]), tol=0)


def test_sixteen_bit_greyscale_keeps_its_tones() -> None:
    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 … 65520
    data = encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    image, _ = decode_image(data)
    px = np.asarray(image)
    assert image.mode == "RGB"
    assert px.min() < 10 and px.max() > 245  # the full range, not clipped to white
    assert px[0, 0, 0] < px[32, 0, 0] < px[63, 63, 0]  # still a ramp


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello, this is a text file\n" * 20, "not an image"),
        (image_bytes((200, 200), "JPEG")[:300], "truncated"),
        (png_claiming(60_000, 60_000), "too large"),
        (png_claiming(9_000, 9_000), "too large: 9000x9000"),
        (image_bytes((8, 8), "PPM"), "unsupported image format PPM"),
    ],
    ids=["empty", "text", "truncated-jpeg", "png-bomb-header", "png-over-limit", "unsupported"],
)
def test_bad_input_raises_with_a_readable_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(data)
    assert reason in str(info.value)
    assert "Traceback" not in str(info.value)


def test_pixel_limit_refuses_big_images_before_decoding() -> None:
    data = image_bytes((300, 200), "PNG")
    with pytest.raises(ImageDecodeError, match=r"too large: 300x200 .* limit of 50000"):
        decode_image(data, max_pixels=50_000)
    image, _ = decode_image(data, max_pixels=60_000)  # within the limit: fine
    assert image.size == (300, 200)


def test_image_id_is_the_sha256_of_the_original_bytes() -> None:
    png = image_bytes(fmt="PNG")
    jpeg = image_bytes(fmt="JPEG")
    assert image_id_of(png) == hashlib.sha256(png).hexdigest()
    assert len(image_id_of(png)) == 64
    # Same pixels, other bytes: another image as far as identity goes.
    assert image_id_of(png) != image_id_of(jpeg)


def test_thumbnail_is_a_small_jpeg_keeping_the_aspect_ratio() -> None:
    big = split_image((1000, 500))
    thumb = thumbnail(big)
    assert thumb[:3] == b"\xff\xd8\xff"
    opened = Image.open(io.BytesIO(thumb))
    assert opened.format == "JPEG"
    assert max(opened.size) <= THUMBNAIL_SIZE
    assert opened.size == (256, 128)
    px = np.asarray(opened.convert("RGB"))
    assert close(px[64, 20], RED) and close(px[64, 235], BLUE)


def test_thumbnail_of_rgba_source_is_still_a_jpeg() -> None:
    image, _ = decode_image(encode(Image.new("RGBA", (300, 300), (0, 0, 0, 0)), "PNG"))
    opened = Image.open(io.BytesIO(thumbnail(image)))
    assert opened.format == "JPEG" and opened.size == (256, 256)


@pytest.mark.parametrize("max_side", [THUMBNAIL_SIZE, DISPLAY_SIZE])
def test_renditions_never_upscale(max_side: int) -> None:
    small = split_image((120, 90))
    opened = Image.open(io.BytesIO(rendition(small, max_side)))
    assert opened.size == (120, 90)


def test_rendition_leaves_the_source_image_alone() -> None:
    image = split_image((600, 300))
    rendition(image, 100)
    assert image.size == (600, 300)
