"""Dim photos: the evalset darkened, read with and without the brightened second reading.

    python -m benchmarks.dim_eval [--evalset DIR] [--gamma 2.2] [--gain 0.25] [--noise 2]
    python -m benchmarks.dim_eval --exposure 0.02 [--photons 10000] [--read-noise 3]
        [--negatives DIR ...] [--extra-limit N]

Each evalset image, as the indexer decodes it, is darkened and read by the keypoint reader
twice in the same run: with `enhance_dark=False` (the baseline) and as configured by
default. Two darkenings:

- the default works on the encoded pixels: luminance to the power `gamma`, times `gain`,
  plus Gaussian noise of `noise` grey levels (crushed shadows, little noise);
- `--exposure K` is a camera's underexposed frame: the photo taken back to linear light
  (sRGB), the light scaled by K, counted as photons (white = `photons` electrons at full
  exposure, so shot noise grows as the light falls: Poisson) plus the sensor's read noise
  (`read_noise` electrons, Gaussian), encoded back to sRGB and 8 bits. Noise is what makes
  a real low-light frame hard once it is brightened; the first darkening has little.

Fixed seed per image. Printed: person recall, recall over people with ≥ 10 labelled joints,
PCK@0.2 of matched photo people, false people on the images with nobody, seconds per image;
and `photos_taken_for_drawings`, the share of the darkened photos (the evalset's `photo`
images) the medium decision (`pipelines.pose.medium.is_drawing`) takes for drawings: a dark
frame is flat, as drawings are. `--negatives DIR` (repeatable: e.g. the animal and food
photos `benchmarks.photo_negatives` writes) darkens the images of a folder with nobody the
same way and counts, for each reading, the images where someone is found
(`<label>_images_with_people_<folder>`). Last line: one JSON object.

`darkening(spec)` is the same darkening by name (`gamma`, or `exposure:K`), for
`benchmarks.loso --darken`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.paths import evalset_dir
from benchmarks.pose_eval_extra import (
    DEFAULT_EXTRA_LIMIT,
    count_people,
    extra_images,
    extra_label,
)
from benchmarks.pose_eval_matching import (
    DETECTION_FIGURES,
    detect_pictures,
    detection_metrics,
    load_evalset,
    seconds_per_image,
)
from benchmarks.report import print_report
from pipelines.catalog import keypoint_models
from pipelines.images import decode_image
from pipelines.pose.medium import is_drawing


def darkened(image: Image.Image, gamma: float, gain: float, noise: float, seed: int) -> Image.Image:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    dark = np.power(pixels, gamma) * gain * 255.0
    dark += np.random.default_rng(seed).normal(0.0, noise, dark.shape)
    return Image.fromarray(np.clip(dark + 0.5, 0, 255).astype(np.uint8))


def srgb_to_linear(encoded: np.ndarray) -> np.ndarray:
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)


def underexposed(
    image: Image.Image, exposure: float, photons: float, read_noise: float, seed: int
) -> Image.Image:
    """A camera frame taken with `exposure` times the light: shot and read noise, 8 bits."""
    rng = np.random.default_rng(seed)
    light = srgb_to_linear(np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0)
    electrons = rng.poisson(light * exposure * photons).astype(np.float64)
    electrons += rng.normal(0.0, read_noise, electrons.shape)
    encoded = linear_to_srgb(electrons / photons) * 255.0
    return Image.fromarray(np.clip(encoded + 0.5, 0, 255).astype(np.uint8))


# The darkenings' defaults (the command's options; `darkening` names them).
GAMMA, GAIN, NOISE = 2.2, 0.25, 2.0
PHOTONS, READ_NOISE = 10000.0, 3.0
DARKENINGS = "gamma (the encoded pixels darkened, as by default) or exposure:K (a camera's frame)"
Darkening = Callable[[Image.Image, int], Image.Image]  # (image, seed) → darkened copy


def darkening(spec: str) -> Darkening:
    """The darkening named `spec`: `gamma`, as this benchmark darkens by default, or
    `exposure:K`, a camera's frame with K of the light, with the default noise; ValueError
    for anything else."""
    if spec == "gamma":
        return lambda image, seed: darkened(image, GAMMA, GAIN, NOISE, seed)
    name, _, value = spec.partition(":")
    try:
        exposure = float(value)
    except ValueError:
        exposure = -1.0
    if name != "exposure" or not 0.0 < exposure <= 1.0:
        raise ValueError(f"unknown darkening {spec!r}: {DARKENINGS}")
    return lambda image, seed: underexposed(image, exposure, PHOTONS, READ_NOISE, seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evalset", type=Path, default=evalset_dir())
    parser.add_argument("--gamma", type=float, default=GAMMA)
    parser.add_argument("--gain", type=float, default=GAIN)
    parser.add_argument("--noise", type=float, default=NOISE)
    parser.add_argument(
        "--exposure", type=float, default=None, help="camera model: the share of light kept"
    )
    parser.add_argument("--photons", type=float, default=PHOTONS)
    parser.add_argument("--read-noise", type=float, default=READ_NOISE)
    parser.add_argument(
        "--negatives",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of images with nobody, darkened the same way (repeatable)",
    )
    parser.add_argument("--extra-limit", type=int, default=DEFAULT_EXTRA_LIMIT, metavar="N")
    args = parser.parse_args(argv)
    if not (args.evalset / "annotations.json").is_file():
        print(f"error: no evalset at {args.evalset} (POSEFRAMER_EVALSET)", file=sys.stderr)
        return 2
    for folder in args.negatives:
        if not folder.is_dir():
            print(f"error: no folder {folder}", file=sys.stderr)
            return 2
    images = load_evalset(args.evalset)
    photos = [decode_image((args.evalset / im.file).read_bytes())[0] for im in images]

    def prepare(image: Image.Image, seed: int) -> Image.Image:
        if args.exposure is not None:
            return underexposed(image, args.exposure, args.photons, args.read_noise, seed)
        return darkened(image, args.gamma, args.gain, args.noise, seed)

    dark = [prepare(photo, seed=i) for i, photo in enumerate(photos)]

    negatives = {folder: extra_images(folder, args.extra_limit) for folder in args.negatives}
    result: dict[str, Any] = {}
    for label, options in (("baseline", {"enhance_dark": False}), ("now", {})):
        detector = keypoint_models.load("mediapipe", hands=False, **options)
        results = detect_pictures(detector, zip(images, dark, strict=True))
        metrics = detection_metrics(results)
        for key in DETECTION_FIGURES:
            result[f"{label}_{key}"] = metrics[key]
        result[f"{label}_seconds_per_image"] = seconds_per_image(results)
        for folder, paths in negatives.items():
            found = count_people(detector, folder, paths, prepare)
            name = extra_label(folder, args.negatives)
            result[f"{label}_images_with_people_{name}"] = found.images_with_people
            result[f"negative_images_{name}"] = found.images
    dark_photos = [d for im, d in zip(images, dark, strict=True) if im.medium == "photo"]
    taken = sum(is_drawing(d) for d in dark_photos)
    result["photos_taken_for_drawings"] = round(taken / max(len(dark_photos), 1), 3)
    result["annotated_people"] = metrics["annotated_people"]
    result["negative_images"] = metrics["negative_images"]
    print_report(result, width=12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
