"""Hostile image files: what a scraped folder really holds, made cheaply and reproducibly.

Two kinds of file, each with a name that says what it is:

- `bad_cases()`: files no indexer can use (empty, text named .jpg, truncated, decompression
  bombs, oversized…), each with a fragment of the reason it must be recorded with;
- `tricky_cases()`: valid images that stress the decoder (CMYK, 16-bit, palette with alpha,
  animations, EXIF orientation, a corrupt EXIF block, a huge but allowed image…): each must
  be indexed like any other.

`write_batch` lays out a folder of `total` files of which `bad_fraction` are bad, the rest
tricky or plain synthetic images with distinct bytes, and returns what a correct indexer must
make of it. Nothing here allocates more than a few megabytes: the bombs are written as
streams of compressed rows or as headers that claim a huge size.
"""

from __future__ import annotations

import functools
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.images import image_id_of
from tests.synthetic import encode

BOMB_SIDE = 30_000  # 900 megapixels: 2.7 GB as RGB if anything decoded it
OVERSIZED_FILE_BYTES = 65 * 1024 * 1024  # just over the source's 64 MiB limit
HUGE_VALID_SIZE = (6000, 4000)  # a 24-megapixel camera photo: big, but within the limits
ORIENTATION = 0x0112


@dataclass(frozen=True)
class HostileCase:
    """One file: `reason` is a fragment of the expected failure reason, None when it is valid."""

    name: str
    data: bytes
    reason: str | None = None
    # A sparse file of this size is written instead of `data` (cheap to make, never read).
    sparse_size: int = 0

    @property
    def valid(self) -> bool:
        return self.reason is None

    def write(self, folder: Path) -> Path:
        path = folder / self.name
        if self.sparse_size:
            with path.open("wb") as f:
                f.truncate(self.sparse_size)
        else:
            path.write_bytes(self.data)
        return path


@dataclass(frozen=True)
class BatchManifest:
    """What a correct indexer makes of a folder written by `write_batch`."""

    folder: Path
    valid: dict[str, str] = field(default_factory=dict)  # file name → image id (sha256)
    bad: dict[str, str] = field(default_factory=dict)  # file name → expected reason fragment


# ---------------------------------------------------------------- building blocks


def synthetic_picture(seed: int, size: tuple[int, int] = (128, 96)) -> Image.Image:
    """A distinct, smooth picture (gradient and a few shapes), different for every seed."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for _ in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        channels.append(127 + 100 * np.sin(a * x / 17 + b * y / 13 + c * 6))
    pixels = np.stack(channels, axis=-1)
    for _ in range(3):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(4, max(5, min(width, height) / 3))
        inside = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        pixels[inside] = rng.uniform(0, 255, 3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def good_image(seed: int) -> tuple[str, bytes]:
    """A plain valid image (64–256 px, JPEG, PNG or WebP), named by its seed."""
    rng = random.Random(seed)
    size = (rng.randint(64, 256), rng.randint(64, 256))
    picture = synthetic_picture(seed, size)
    fmt, ext = rng.choice([("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp")])
    return f"good-{seed:05d}.{ext}", encode(picture, fmt, quality=85)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


@functools.cache
def png_bomb(width: int = BOMB_SIDE, height: int = BOMB_SIDE, color_type: int = 2) -> bytes:
    """A genuine PNG of `width` × `height` black pixels (8-bit RGB by default).

    Its image data is a real zlib stream of every row. One block of rows is compressed once,
    ending in a full flush (which empties the compressor's history), so the identical
    compressed block can be repeated for the rest: a 2.7-GB image in about 3 MB, made in
    well under a second.
    """
    channels = {0: 1, 2: 3, 6: 4}[color_type]
    row = bytes(1 + width * channels)  # filter byte 0, then black pixels
    rows_per_block = 64
    block = row * rows_per_block
    compressor = zlib.compressobj(9)
    head = compressor.compress(b"") + compressor.flush(zlib.Z_FULL_FLUSH)
    body = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeats, rest = divmod(height, rows_per_block)
    tail = compressor.compress(row * rest) + compressor.flush(zlib.Z_FINISH)
    # flush(Z_FINISH) wrote the adler-32 of what this compressor saw; the stream's true
    # checksum covers every repeated block, so it is computed and written here.
    checksum = 1
    for _ in range(repeats):
        checksum = zlib.adler32(block, checksum)
    checksum = zlib.adler32(row * rest, checksum)
    stream = head + body * repeats + tail[:-4] + struct.pack(">I", checksum)
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", stream)
        + _png_chunk(b"IEND", b"")
    )


def gif_bomb(side: int = BOMB_SIDE) -> bytes:
    """A tiny GIF whose logical screen and only frame claim `side` × `side` pixels."""
    data = bytearray(encode(Image.new("P", (8, 8), 0), "GIF"))
    data[6:10] = struct.pack("<HH", side, side)  # logical screen
    pos = 13 + (3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while data[pos] == 0x21:  # extension blocks: introducer, label, sub-blocks, terminator
        pos += 2
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    assert data[pos] == 0x2C, "no image descriptor"
    data[pos + 5 : pos + 9] = struct.pack("<HH", side, side)
    return bytes(data)


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims another size."""
    data = bytearray(encode(synthetic_picture(7, (16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def tiff_claiming(width: int, height: int) -> bytes:
    """A small TIFF whose ImageWidth and ImageLength tags claim another size."""
    data = bytearray(encode(synthetic_picture(8, (16, 16)), "TIFF"))
    assert data[:4] == b"II*\x00", "Pillow writes little-endian TIFF"
    (ifd,) = struct.unpack_from("<I", data, 4)
    (entries,) = struct.unpack_from("<H", data, ifd)
    for i in range(entries):
        entry = ifd + 2 + 12 * i
        (tag,) = struct.unpack_from("<H", data, entry)
        if tag in (256, 257):  # as LONG, count 1, the value in the entry itself
            struct.pack_into("<HHII", data, entry, tag, 4, 1, width if tag == 256 else height)
    return bytes(data)


def png_claiming(width: int, height: int) -> bytes:
    """A valid small PNG whose header (with a correct CRC) claims another size."""
    data = bytearray(encode(synthetic_picture(9, (8, 8)), "PNG"))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    return bytes(data)


def exif_jpeg(picture: Image.Image, orientation: int, **save: object) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return encode(picture, "JPEG", exif=exif, **{"quality": 92, **save})


# Stored pixels for each EXIF orientation: the displayed (upright) image transformed by the
# inverse of what the orientation tells a viewer to do.
STORED_FOR_ORIENTATION: dict[int, Callable[[Image.Image], Image.Image]] = {
    1: lambda im: im,
    2: lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    3: lambda im: im.transpose(Image.Transpose.ROTATE_180),
    4: lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    5: lambda im: im.transpose(Image.Transpose.TRANSPOSE),
    6: lambda im: im.transpose(Image.Transpose.ROTATE_90),
    7: lambda im: im.transpose(Image.Transpose.TRANSVERSE),
    8: lambda im: im.transpose(Image.Transpose.ROTATE_270),
}


def exif_rotated(upright: Image.Image, orientation: int, **save: object) -> bytes:
    """A JPEG whose pixels are stored turned, with the EXIF orientation that displays `upright`
    (`save`: JPEG options such as quality and subsampling)."""
    return exif_jpeg(STORED_FOR_ORIENTATION[orientation](upright), orientation, **save)


def corrupt_exif_jpeg(seed: int = 11) -> bytes:
    """A valid JPEG with an intact Orientation (6) but a malformed tag in its EXIF block.

    The SubIFDs tag (0x014A, which must hold offsets) holds text: Pillow reads the block, but
    raises struct.error when asked to write it back out (as `ImageOps.exif_transpose` does).
    """
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[0x010F] = "Cam"
    exif[0x0132] = "2020:01:01 00:00:00"
    data = bytearray(encode(synthetic_picture(seed, (96, 64)), "JPEG", exif=exif))
    tag = data.index(b"\x01\x32\x00\x02")  # DateTime, ASCII (big-endian TIFF header)
    data[tag : tag + 2] = b"\x01\x4a"
    return bytes(data)


def _frames(seed: int, count: int = 3, size: tuple[int, int] = (96, 72)) -> list[Image.Image]:
    return [synthetic_picture(seed + i, size) for i in range(count)]


def animated(fmt: str, seed: int) -> bytes:
    first, *rest = _frames(seed)
    return encode(first, fmt, save_all=True, append_images=rest, duration=80, loop=0)


# ---------------------------------------------------------------- the cases


def bad_cases() -> list[HostileCase]:
    """One file of each kind that must be recorded as a failure, with its reason fragment."""
    jpeg = encode(synthetic_picture(1, (200, 150)), "JPEG", quality=90)
    png = encode(synthetic_picture(2, (200, 150)), "PNG")
    bad_crc = bytearray(png)
    ihdr = bad_crc.index(b"IHDR")
    bad_crc[ihdr + 17] ^= 0xFF
    return [
        HostileCase("zero-bytes.jpg", b"", "empty"),
        HostileCase("text-named.jpg", b"shopping list: eggs, milk\n" * 40, "not an image"),
        HostileCase(
            "html-named.png", b"<!doctype html><title>404 Not Found</title>\n", "not an image"
        ),
        HostileCase("random-bytes.webp", random.Random(3).randbytes(4096), "not an image"),
        HostileCase("truncated.jpg", jpeg[: len(jpeg) // 2], "truncated"),
        HostileCase("header-only.jpg", jpeg[:200], "truncated"),
        HostileCase("truncated.png", png[: len(png) // 2], "truncated"),
        HostileCase("bad-crc.png", bytes(bad_crc), "corrupt"),
        HostileCase("bomb-30000x30000.png", png_bomb(), "too large"),
        HostileCase("bomb-header-60000.png", png_claiming(60_000, 60_000), "too large"),
        HostileCase("bomb-30000.gif", gif_bomb(), "too large"),
        HostileCase("bomb-30000.jpg", jpeg_claiming(BOMB_SIDE, BOMB_SIDE), "too large"),
        HostileCase("bomb-30000.tif", tiff_claiming(BOMB_SIDE, BOMB_SIDE), "too large"),
        HostileCase("portable-pixmap.ppm", encode(Image.new("RGB", (8, 8)), "PPM"), "unsupported"),
        HostileCase("oversized.jpg", b"", "file too large", sparse_size=OVERSIZED_FILE_BYTES),
    ]


def tricky_cases() -> list[HostileCase]:
    """Valid images that exercise the decoder's edge cases; each must be indexed."""
    picture = synthetic_picture(20, (120, 90))
    ramp16 = (np.arange(90 * 120, dtype=np.uint32).reshape(90, 120) * 6).astype(np.uint16)
    rgb16 = np.stack([ramp16, ramp16[::-1], ramp16[:, ::-1]], axis=-1)
    palette = picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    cases = [
        HostileCase("cmyk.jpg", encode(picture.convert("CMYK"), "JPEG", quality=90)),
        HostileCase("grey-16bit.png", encode(Image.fromarray(ramp16), "PNG")),
        HostileCase("rgb-16bit.png", _png16_rgb(rgb16)),
        HostileCase("grey-16bit.tif", encode(Image.fromarray(ramp16), "TIFF")),
        HostileCase("palette-alpha.png", encode(palette, "PNG", transparency=0)),
        HostileCase("grey-alpha.png", encode(picture.convert("LA"), "PNG")),
        HostileCase("rgba.webp", encode(picture.convert("RGBA"), "WEBP", lossless=True)),
        HostileCase("one-bit.png", encode(picture.convert("1"), "PNG")),
        HostileCase("greyscale.jpg", encode(picture.convert("L"), "JPEG")),
        HostileCase("progressive.jpg", encode(picture, "JPEG", progressive=True)),
        HostileCase("animated.gif", animated("GIF", 30)),
        HostileCase("animated.png", animated("PNG", 40)),
        HostileCase("animated.webp", animated("WEBP", 50)),
        HostileCase("bitmap.bmp", encode(picture, "BMP")),
        HostileCase("png-named.jpg", encode(synthetic_picture(21, (80, 80)), "PNG")),
        HostileCase("corrupt-exif.jpg", corrupt_exif_jpeg()),
        HostileCase("tiny-1x1.png", encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG")),
        HostileCase("sliver-2000x3.png", encode(synthetic_picture(22, (2000, 3)), "PNG")),
        HostileCase(
            "huge-6000x4000.jpg",
            encode(synthetic_picture(23, HUGE_VALID_SIZE), "JPEG", quality=70),
        ),
    ]
    cases += [
        HostileCase(f"exif-orientation-{o}.jpg", exif_rotated(synthetic_picture(60 + o), o))
        for o in range(2, 9)
    ]
    return cases


def _png16_rgb(pixels: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one itself)."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def write_batch(
    folder: Path, total: int = 1000, bad_fraction: float = 0.1, seed: int = 0
) -> BatchManifest:
    """`total` files in `folder`: `bad_fraction` of them bad (every bad kind in turn), every
    tricky valid case once, and distinct plain images for the rest, shuffled by `seed`."""
    folder.mkdir(parents=True, exist_ok=True)
    bad_kinds = bad_cases()
    n_bad = round(total * bad_fraction)
    tricky = tricky_cases()
    n_plain = total - n_bad - len(tricky)
    if n_plain < 0:
        raise ValueError(f"a batch of {total} has no room for the {len(tricky)} tricky cases")
    manifest = BatchManifest(folder=folder)
    for i in range(n_bad):
        case = bad_kinds[i % len(bad_kinds)]
        stem, _, ext = case.name.rpartition(".")
        copy = HostileCase(f"bad-{i:04d}-{stem}.{ext}", case.data, case.reason, case.sparse_size)
        copy.write(folder)
        assert copy.reason is not None
        manifest.bad[copy.name] = copy.reason
    for case in tricky:
        case.write(folder)
        manifest.valid[case.name] = image_id_of(case.data)
    for i in range(n_plain):
        name, data = good_image(seed * 1_000_003 + i)
        (folder / name).write_bytes(data)
        manifest.valid[name] = image_id_of(data)
    if len(set(manifest.valid.values())) != len(manifest.valid):
        raise AssertionError("two valid files have the same bytes: they would be duplicates")
    return manifest
