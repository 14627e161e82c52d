"""Dim photos: the evalset darkened, read with and without the brightened second reading.

    python -m benchmarks.dim_eval [--evalset DIR] [--gamma 2.2] [--gain 0.25] [--noise 2]

Each evalset image, as the indexer decodes it, is darkened as an underexposed camera frame
would be (luminance to the power `gamma`, times `gain`, plus Gaussian sensor noise of `noise`
grey levels, fixed seed) and read by the keypoint reader twice in the same run: with
`enhance_dark=False` (the baseline) and as configured by default. Printed: person recall,
recall over people with ≥ 10 labelled joints, PCK@0.2 of matched photo people, false people
on the images with nobody, seconds per image. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.paths import evalset_dir
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


def darkened(image: Image.Image, gamma: float, gain: float, noise: float, seed: int) -> Image.Image:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    dark = np.power(pixels, gamma) * gain * 255.0
    dark += np.random.default_rng(seed).normal(0.0, noise, dark.shape)
    return Image.fromarray(np.clip(dark + 0.5, 0, 255).astype(np.uint8))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evalset", type=Path, default=evalset_dir())
    parser.add_argument("--gamma", type=float, default=2.2)
    parser.add_argument("--gain", type=float, default=0.25)
    parser.add_argument("--noise", type=float, default=2.0)
    args = parser.parse_args(argv)
    if not (args.evalset / "annotations.json").is_file():
        print(f"error: no evalset at {args.evalset} (POSEFRAMER_EVALSET)", file=sys.stderr)
        return 2
    images = load_evalset(args.evalset)
    dark = [
        darkened(
            decode_image((args.evalset / im.file).read_bytes())[0],
            args.gamma,
            args.gain,
            args.noise,
            seed=i,
        )
        for i, im in enumerate(images)
    ]
    result: dict[str, Any] = {}
    for label, options in (("baseline", {"enhance_dark": False}), ("now", {})):
        detector = keypoint_models.load("mediapipe", hands=False, **options)
        results = detect_pictures(detector, zip(images, dark, strict=True))
        metrics = detection_metrics(results)
        for key in DETECTION_FIGURES:
            result[f"{label}_{key}"] = metrics[key]
        result[f"{label}_seconds_per_image"] = seconds_per_image(results)
    result["annotated_people"] = metrics["annotated_people"]
    result["negative_images"] = metrics["negative_images"]
    print_report(result, width=12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
