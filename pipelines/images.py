"""Decoding, identity and renditions of images.

Every image is identified by the sha256 of its original bytes and handled upright: EXIF
orientation is applied once here, so keypoints are always in displayed-pixel coordinates.
"""

from __future__ import annotations

import hashlib
import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

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


class ImageDecodeError(ValueError):
    """The bytes are not an image we can index; the message says why."""


def image_id_of(data: bytes) -> str:
    """The image identity: sha256 of the original bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def media_type_of(fmt: str) -> str:
    return _FORMAT_MEDIA_TYPES.get(fmt.upper(), "application/octet-stream")


def decode_image(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[Image.Image, str]:
    """Decode `data` into an upright RGB image and its format name.

    Raises ImageDecodeError with a human-readable reason for empty, truncated, oversized,
    unsupported or non-image input. Animated images give their first frame.
    """
    if not data:
        raise ImageDecodeError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
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
            probe.seek(0)  # first frame of animations
            probe.load()
            upright = ImageOps.exif_transpose(probe) or probe
            image = _to_rgb(upright)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image (unrecognised file content)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"image too large: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"corrupt or truncated image: {exc}") from None
    return image, fmt


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits rather than clipping everything to white.
        arr = image.point(lambda v: v / 256).convert("L")
        return arr.convert("RGB")
    return image.convert("RGB")


def rendition(image: Image.Image, max_side: int, quality: int = 85) -> bytes:
    """A JPEG no larger than `max_side` on its longer side (never upscaled)."""
    copy = image.copy()
    copy.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    copy.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def thumbnail(image: Image.Image) -> bytes:
    """The ≤ 256 px JPEG thumbnail stored in the table."""
    return rendition(image, THUMBNAIL_SIZE, quality=80)
