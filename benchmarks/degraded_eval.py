"""Photos as cameras and the web leave them: the evalset blurred, shaken, compressed, greyed,
noised, shrunk and enlarged, each read by the keypoint reader.

    python -m benchmarks.degraded_eval [--evalset DIR] [--only NAME ...] [--options JSON]
        [--extra-negatives DIR ...]

The evalset is a development set; the images the product is judged on are not its images,
and they are rarely as clean: video frames are blurred by motion, web photos are compressed
hard and resized, old photos are grey. Each degradation here is a fixed, seeded
transformation of every evalset image as the indexer decodes it (`DEGRADATIONS`; a blur's
size is a share of the image's longer side, so a large photo and a small one are blurred
alike to the eye); a resize or a turn (`turn90`, `turn180`: everyone lying on their side
or upside down, as acrobats, gymnasts and dancers on the floor are) moves the annotations
with the pixels. Printed per degradation
(`none` is the evalset as it is, the reference): person recall, recall over people with
≥ 10 labelled joints, PCK@0.2 of matched photo people, false people on the images with
nobody, seconds per image, ≥ 10-joint recall per evalset source
(`<degradation>_recall_10plus_by_source`), and `photos_taken_for_drawings` (the share of
the evalset's photos the medium decision, `pipelines.pose.medium.is_drawing`, takes for
drawings). With
`--extra-negatives` (folders of photos with nobody in them, e.g. `benchmarks.photo_negatives`'
animal photos; at most 150 each, `benchmarks.pose_eval_extra.extra_images`), those photos are
degraded the same way and `extra_images_with_people` counts the ones read with a "person":
a degradation that hides people's faces blurs an animal's too. `--options` passes
keypoint-reader options as a JSON object, the form of `POSEFRAMER_KEYPOINT_MODEL_OPTIONS`
(`'{"min_face_evidence": 0.3}'`, `'{"reread": false}'`), to compare a setting
against the defaults in the same run (columns `<degradation>_<figure>` for the defaults,
`option_<degradation>_<figure>` with the options). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from benchmarks.paths import evalset_dir
from benchmarks.pose_eval_extra import extra_images
from benchmarks.pose_eval_matching import (
    DETECTION_FIGURES,
    EvalImage,
    detect_pictures,
    detection_metrics,
    load_evalset,
    moved_people,
    seconds_per_image,
)
from benchmarks.report import print_report
from pipelines.catalog import keypoint_models
from pipelines.images import decode_image
from pipelines.pose.medium import is_drawing
from pipelines.registry import parse_options

Degradation = Callable[[EvalImage, Image.Image, int], tuple[EvalImage, Image.Image]]


def blurred(share: float) -> Degradation:
    """Out of focus: a Gaussian blur of `share` of the longer side (0.003: 2 px at 640)."""

    def degrade(image: EvalImage, picture: Image.Image, seed: int) -> tuple[EvalImage, Image.Image]:
        radius = share * max(picture.size)
        return image, picture.filter(ImageFilter.GaussianBlur(radius))

    return degrade


def shaken(share: float) -> Degradation:
    """Motion blur: a horizontal line kernel `share` of the longer side long (a panning
    camera, a video frame)."""

    def degrade(image: EvalImage, picture: Image.Image, seed: int) -> tuple[EvalImage, Image.Image]:
        import cv2

        length = max(3, round(share * max(picture.size)) | 1)
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        pixels = np.asarray(picture.convert("RGB"))
        return image, Image.fromarray(cv2.filter2D(pixels, -1, kernel))

    return degrade


def compressed(quality: int) -> Degradation:
    """Saved as a JPEG of `quality` and decoded again (blocks, ringing, banding)."""

    def degrade(image: EvalImage, picture: Image.Image, seed: int) -> tuple[EvalImage, Image.Image]:
        buffer = io.BytesIO()
        picture.convert("RGB").save(buffer, "JPEG", quality=quality)
        return image, Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")

    return degrade


def greyed(image: EvalImage, picture: Image.Image, seed: int) -> tuple[EvalImage, Image.Image]:
    """A black-and-white photo (kept as RGB, as a scan of one usually is)."""
    return image, ImageOps.grayscale(picture).convert("RGB")


def noised(sigma: float) -> Degradation:
    """Sensor noise: Gaussian, `sigma` grey levels, seeded per image."""

    def degrade(image: EvalImage, picture: Image.Image, seed: int) -> tuple[EvalImage, Image.Image]:
        pixels = np.asarray(picture.convert("RGB"), dtype=np.float64)
        pixels = pixels + np.random.default_rng(seed).normal(0.0, sigma, pixels.shape)
        return image, Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))

    return degrade


def resized(longest: int) -> Degradation:
    """Resized (LANCZOS) to `longest` pixels on the longer side, the annotations with it."""

    def degrade(image: EvalImage, picture: Image.Image, seed: int) -> tuple[EvalImage, Image.Image]:
        scale = longest / max(picture.size)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        people = moved_people(image, lambda points: points * scale)
        resampled = picture.convert("RGB").resize(size, Image.Resampling.LANCZOS)
        return replace(image, people=people), resampled

    return degrade


def turned(quarters: int) -> Degradation:
    """Turned `quarters` quarter turns anticlockwise, the annotations with it: every person
    lying on their side (1, 3) or upside down (2), as an acrobat, a gymnast or a dancer on
    the floor is, with everything around them turned too."""

    def degrade(image: EvalImage, picture: Image.Image, seed: int) -> tuple[EvalImage, Image.Image]:
        def turn(points: np.ndarray) -> np.ndarray:
            side, other = picture.size
            for _ in range(quarters % 4):  # one quarter anticlockwise: (x, y) → (y, W − x)
                points = np.column_stack([points[:, 1], side - points[:, 0]])
                side, other = other, side
            return points

        people = moved_people(image, turn)
        pixels = np.rot90(np.asarray(picture.convert("RGB")), quarters % 4)
        return replace(image, people=people), Image.fromarray(np.ascontiguousarray(pixels))

    return degrade


def unchanged(image: EvalImage, picture: Image.Image, seed: int) -> tuple[EvalImage, Image.Image]:
    return image, picture


DEGRADATIONS: dict[str, Degradation] = {
    "none": unchanged,
    "blur": blurred(0.003),
    "motion": shaken(0.015),
    "jpeg10": compressed(10),
    "jpeg25": compressed(25),
    "grey": greyed,
    "noise12": noised(12.0),
    "small320": resized(320),
    "small240": resized(240),
    "large1600": resized(1600),
    "turn90": turned(1),
    "turn180": turned(2),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evalset", type=Path, default=evalset_dir())
    parser.add_argument(
        "--only", action="append", default=[], choices=sorted(DEGRADATIONS), help="these only"
    )
    parser.add_argument(
        "--options",
        default=None,
        help="keypoint-reader options as a JSON object, read beside the defaults",
    )
    parser.add_argument(
        "--extra-negatives",
        type=Path,
        action="append",
        default=[],
        help="a folder of photos with nobody in them, degraded too",
    )
    args = parser.parse_args(argv)
    if args.evalset is None or not (args.evalset / "annotations.json").is_file():
        print(f"error: no evalset at {args.evalset} (POSEFRAMER_EVALSET)", file=sys.stderr)
        return 2
    readers: list[tuple[str, dict[str, Any]]] = [("", {})]
    try:
        if args.options is not None:
            readers.append(("option_", parse_options(args.options, "--options")))
        detectors = [
            (label, keypoint_models.load("mediapipe", hands=False, **o)) for label, o in readers
        ]
    except (ValueError, TypeError) as exc:  # not a JSON object, or an option it does not take
        parser.error(str(exc))
    images = load_evalset(args.evalset)
    photos = [decode_image((args.evalset / im.file).read_bytes())[0] for im in images]
    nobody = EvalImage(file="", source="extra", medium="photo", people=())
    negatives = [
        decode_image(path.read_bytes())[0]
        for folder in args.extra_negatives
        for path in extra_images(folder)
    ]
    result: dict[str, Any] = {}
    started = time.perf_counter()
    for name in args.only or list(DEGRADATIONS):
        degrade = DEGRADATIONS[name]
        pictures = [
            degrade(im, photo, seed)
            for seed, (im, photo) in enumerate(zip(images, photos, strict=True))
        ]
        for label, detector in detectors:
            results = detect_pictures(detector, pictures)
            metrics = detection_metrics(results)
            for key in DETECTION_FIGURES:
                result[f"{label}{name}_{key}"] = metrics[key]
            result[f"{label}{name}_seconds_per_image"] = seconds_per_image(results)
            result[f"{label}{name}_recall_10plus_by_source"] = {
                source: figures["recall_10plus"]
                for source, figures in metrics["per_source"].items()
                if figures["people_10plus"]
            }
        if negatives:
            degraded = [degrade(nobody, photo, seed) for seed, photo in enumerate(negatives)]
            for label, detector in detectors:
                read = sum(bool(detector.detect(picture)) for _, picture in degraded)
                result[f"{label}{name}_extra_images_with_people"] = read
        taken = [is_drawing(picture) for im, picture in pictures if im.medium == "photo"]
        result[f"{name}_photos_taken_for_drawings"] = round(sum(taken) / max(len(taken), 1), 3)
    result["options"] = json.dumps(readers[-1][1], sort_keys=True) if args.options else "-"
    result["annotated_people"] = sum(len(im.people) for im in images)
    result["extra_negative_images"] = len(negatives)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print_report(result, width=12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
