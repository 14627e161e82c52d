"""Decoding, identity and renditions of images.

Every image is identified by the sha256 of its original bytes and handled upright: EXIF
orientation is applied once here, so keypoints are always in displayed-pixel coordinates.

The bytes come from scraped folders and uploads, so they are hostile until decoded: the
size a header claims is checked before any pixel is decoded (decompression bombs), and any
failure of a decoder on the bytes becomes an `ImageDecodeError` with a readable reason, so
one bad file can never take a batch or a request down with it.
"""

from __future__ import annotations

import hashlib
import io
import re

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageCms, UnidentifiedImageError

# Refuse decompression bombs explicitly instead of letting Pillow warn and allocate.
MAX_IMAGE_PIXELS = 80_000_000
THUMBNAIL_SIZE = 256
DISPLAY_SIZE = 768

_FORMAT_MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "MPO": "image/jpeg",
}
SUPPORTED_FORMATS = frozenset(_FORMAT_MEDIA_TYPES)

# Signatures of the supported formats, to tell a damaged image from something else entirely.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)

_ORIENTATION_TAG = 0x0112
# EXIF orientation → the transpose that displays the stored pixels upright.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SRGB = ImageCms.createProfile("sRGB")


class ImageDecodeError(ValueError):
    """The bytes are not an image we can index; the message says why."""


def image_id_of(data: bytes) -> str:
    """The image identity: sha256 of the original bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def media_type_of(fmt: str) -> str:
    return _FORMAT_MEDIA_TYPES.get(fmt.upper(), "application/octet-stream")


def sniff_format(data: bytes) -> str | None:
    """The supported format whose signature `data` starts with, if any (RIFF/WEBP included)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for magic, fmt in _SIGNATURES if data.startswith(magic)), None)


def decode_image(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[Image.Image, str]:
    """Decode `data` into an upright RGB image and its format name.

    Raises ImageDecodeError with a human-readable reason for empty, truncated, oversized,
    unsupported or non-image input; never anything else. Animated images give their first
    frame. An unreadable EXIF block is ignored (the image is used as stored).
    """
    if not data:
        raise ImageDecodeError("empty file (0 bytes)")
    try:
        probe = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(_too_large(str(exc), max_pixels)) from None
    except UnidentifiedImageError:
        kind = sniff_format(data)
        if kind is None:
            raise ImageDecodeError("not an image (unrecognised file content)") from None
        raise ImageDecodeError(
            f"corrupt or truncated image: a damaged {kind} file (its header cannot be read)"
        ) from None
    except Exception as exc:
        raise ImageDecodeError(_corrupt(exc)) from None
    fmt = (probe.format or "").upper()
    if fmt not in SUPPORTED_FORMATS:
        raise ImageDecodeError(f"unsupported image format {fmt or 'unknown'}")
    width, height = probe.size
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"invalid image size {width}x{height}")
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"image too large: {width}x{height} pixels exceeds the limit of {max_pixels}"
        )
    try:
        probe.seek(0)  # first frame of animations
        probe.load()
        orientation = _orientation(probe)
        image = _to_rgb(probe)
    except ImageDecodeError:
        raise
    except MemoryError:
        raise ImageDecodeError(
            f"image too large to decode in the memory available ({width}x{height})"
        ) from None
    except Exception as exc:
        raise ImageDecodeError(_corrupt(exc)) from None
    if orientation in _UPRIGHT:
        image = image.transpose(_UPRIGHT[orientation])
    return image, fmt


def _too_large(message: str, max_pixels: int) -> str:
    claimed = re.search(r"\((\d+) pixels\)", message)
    pixels = f"{claimed.group(1)} pixels" if claimed else "its pixel count"
    return (
        f"image too large: {pixels} exceeds the limit of {max_pixels} "
        "(refused before decoding: a possible decompression bomb)"
    )


def _corrupt(exc: Exception) -> str:
    # Pillow's plugins signal damaged input with OSError, SyntaxError, ValueError and EOFError,
    # and hostile input reaches others (struct.error, IndexError, zlib.error…): all of them
    # mean the bytes cannot be used; the type is kept for what is not a plain I/O error.
    detail = str(exc) or type(exc).__name__
    if not isinstance(exc, OSError | SyntaxError | ValueError | EOFError):
        detail = f"{type(exc).__name__}: {detail}"
    return f"corrupt or truncated image: {detail}"


def _orientation(image: Image.Image) -> int:
    """The EXIF (or XMP) orientation, 1 (as stored) when absent or unreadable.

    Read directly rather than through `ImageOps.exif_transpose`, which also rewrites the EXIF
    block and fails on blocks it can read but not write back.
    """
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if mode.startswith("I") or mode == "F":
        return _wide_grey_to_rgb(image)
    if mode in ("CMYK", "LAB"):
        return _via_colour_profile(image)
    if mode in ("1", "L", "P", "RGBX", "YCbCr"):
        return image.convert("RGB")
    raise ImageDecodeError(f"unsupported colour mode {mode}")


def _wide_grey_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float greyscale to 8 bits, scaled rather than clipped to white."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        top = float(np.nanmax(values)) if values.size else 0.0
        scale = 255.0 if top <= 1.0 else 1.0  # 0–1 floats, else already in 0–255
    elif image.mode.startswith("I;16"):
        scale = 255.0 / 65535.0
    else:  # 32-bit integers: 8-bit, 16-bit or wider data stored in a wide type
        top = float(values.max()) if values.size else 0.0
        scale = 1.0 if top <= 255 else 255.0 / 65535.0 if top <= 65535 else 255.0 / top
    grey = np.clip(np.nan_to_num(values * scale), 0, 255).round().astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")


def _via_colour_profile(image: Image.Image) -> Image.Image:
    """CMYK (print) or CIELAB pixels to sRGB, through the embedded ICC profile if any.

    A naive CMYK conversion ignores the ink profile and washes colours out; it is the
    fallback when the file has no usable profile.
    """
    profile = image.info.get("icc_profile")
    try:
        if image.mode == "LAB":
            source = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))
        elif profile:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        else:
            return image.convert("RGB")
        converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image.convert("RGB")
    assert converted is not None
    return converted


def rendition(image: Image.Image, max_side: int, quality: int = 85) -> bytes:
    """A JPEG no larger than `max_side` on its longer side (never upscaled).

    The source image is left alone, and a large one is reduced straight to the target size
    (no full-size copy first).
    """
    width, height = image.size
    scale = max_side / max(width, height)
    small = image
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if small.mode != "RGB":
        small = _to_rgb(small)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def thumbnail(image: Image.Image) -> bytes:
    """The ≤ 256 px JPEG thumbnail stored in the table."""
    return rendition(image, THUMBNAIL_SIZE, quality=80)


STATISTICS_SIDE = 256  # enough pixels to tell a photo from a drawing, or a dim photo


def luminance(image: Image.Image) -> npt.NDArray[np.float64]:
    """The image's luminance in [0, 1], at most 256 pixels on a side: for image statistics."""
    small = image.convert("L")
    small.thumbnail((STATISTICS_SIDE, STATISTICS_SIDE))
    return np.asarray(small, dtype=np.float64) / 255.0
