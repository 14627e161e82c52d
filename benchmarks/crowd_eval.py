"""Crowds of small people: each evalset photo tiled n × n at 1 / n of its size, read as is.

    python -m benchmarks.crowd_eval [--evalset DIR] [--grid 2] [--tiles 2 [3 4]]
        [--max-people N] [--settings now ...]

Each copy keeps its annotated people (moved and scaled with it), so an image of four people
becomes sixteen people at half their size, side by side: a crowd frame's small, many
people, with the evalset's labels. Images with nobody are tiled too (false people). Read
by the keypoint reader with each detector tile grid of `--tiles` (the shipped default is 2),
with room for every copy's people (`max_people`; `--max-people` sets it, e.g. to the
reader's own default of 10), in each of `SETTINGS` (or those `--settings` names): without
the finer grid where a small person is found (`fine_tiles=False`), before (that grid, but no
face proposals: the defaults until 2026-12-06), `no_reread` (faces propose people too, but
no re-reading of each person from their own joints' region: the defaults until the evening
of 2026-12-06) and now (the defaults);
and the untiled photos each way as the reference. Printed per setting: person recall,
recall over people with ≥ 10 labelled joints (also per source: the settings' variants were
compared on these crowds pooled, never per source; the README says how), PCK@0.2, false
people on the images with nobody, seconds per image, and the share of ≥ 10-joint people
that the person detector proposes a region for (`proposed_10plus`, its first round: what
the landmark model is given to read). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import Image

from benchmarks.paths import evalset_dir
from benchmarks.pose_eval_matching import (
    DETECTION_FIGURES,
    MIN_JOINTS_10PLUS,
    EvalImage,
    Person,
    detect_pictures,
    detection_metrics,
    labelled_joints,
    load_evalset,
    moved_people,
    seconds_per_image,
)
from benchmarks.report import print_report
from pipelines.catalog import keypoint_models
from pipelines.images import decode_image
from pipelines.pose.keypoints import MediaPipePoseDetector
from pipelines.pose.person_detection import PersonDetector

# The reader's settings compared, each against the one before it.
SETTINGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("no_fine", {"fine_tiles": False, "face_proposals": False, "reread": False}),
    ("before", {"face_proposals": False, "reread": False}),
    ("no_reread", {"reread": False}),
    ("now", {}),
)


def tiled(image: EvalImage, picture: Image.Image, grid: int) -> tuple[EvalImage, Image.Image]:
    """`picture` as a `grid` × `grid` crowd of copies at 1 / `grid` of its size, and `image`'s
    people in every copy."""
    width, height = picture.size
    small_w, small_h = width // grid, height // grid
    small = picture.convert("RGB").resize((small_w, small_h), Image.Resampling.LANCZOS)
    crowd = Image.new("RGB", (small_w * grid, small_h * grid))
    sx, sy = small_w / width, small_h / height
    people: list[Person] = []
    for col in range(grid):
        for row in range(grid):
            crowd.paste(small, (col * small_w, row * small_h))
            at = np.array([col * small_w, row * small_h], dtype=np.float64)

            def place(points: np.ndarray, at: np.ndarray = at) -> np.ndarray:
                return points * np.array([sx, sy]) + at

            people += moved_people(image, place)
    return replace(image, people=tuple(people)), crowd


def proposed_share(detector: PersonDetector, crowds: list[tuple[EvalImage, Image.Image]]) -> float:
    """The share of ≥ 10-joint people whose box centre lies in a proposed region no more
    than 2.5 times their size."""
    hits = total = 0
    for image, picture in crowds:
        regions = [c.roi().box() for c in detector.detect(picture)]
        for person in image.people:
            if labelled_joints(person.keypoints) < MIN_JOINTS_10PLUS:
                continue
            x, y, w, h = person.bbox
            cx, cy, side = x + w / 2, y + h / 2, max(w, h)
            total += 1
            hits += any(
                r[0] <= cx <= r[2] and r[1] <= cy <= r[3] and r[2] - r[0] < 2.5 * side
                for r in regions
            )
    return round(hits / max(total, 1), 4)


def read(
    crowds: list[tuple[EvalImage, Image.Image]], options: dict[str, Any]
) -> tuple[dict[str, Any], MediaPipePoseDetector]:
    """The figures of the keypoint reader with `options` on `crowds`, and the reader."""
    detector = cast(
        MediaPipePoseDetector, keypoint_models.load("mediapipe", hands=False, **options)
    )
    results = detect_pictures(detector, crowds)
    metrics = detection_metrics(results)
    out = {key: metrics[key] for key in DETECTION_FIGURES}
    out["seconds_per_image"] = seconds_per_image(results)
    out["annotated_people"] = metrics["annotated_people"]
    for source, figures in metrics["per_source"].items():
        if figures["people_10plus"]:
            out[f"recall_10plus_{source}"] = figures["recall_10plus"]
    return out, detector


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evalset", type=Path, default=evalset_dir())
    parser.add_argument("--grid", type=int, default=2, help="copies per side")
    parser.add_argument("--tiles", type=int, nargs="+", default=[2])
    parser.add_argument(
        "--max-people",
        type=int,
        default=None,
        help="the reader's cap on people per image (default: room for every copy's people; "
        "the reader's own default is 10)",
    )
    parser.add_argument(
        "--settings",
        nargs="+",
        choices=[label for label, _ in SETTINGS],
        default=[label for label, _ in SETTINGS],
        help="which of the settings to read with (default: all)",
    )
    args = parser.parse_args(argv)
    if args.evalset is None or not (args.evalset / "annotations.json").is_file():
        print(f"error: no evalset at {args.evalset} (POSEFRAMER_EVALSET)", file=sys.stderr)
        return 2
    photos = [image for image in load_evalset(args.evalset) if image.medium == "photo"]
    pictures = [decode_image((args.evalset / image.file).read_bytes())[0] for image in photos]
    room = args.grid**2 * max(len(image.people) for image in photos)
    cap = max(10, room) if args.max_people is None else args.max_people
    settings = [(label, setting) for label, setting in SETTINGS if label in args.settings]
    result: dict[str, Any] = {}
    untiled = list(zip(photos, pictures, strict=True))
    for label, setting in settings:
        for key, value in read(untiled, setting)[0].items():
            result[f"photos_{label}_{key}"] = value
    crowds = [tiled(i, p, args.grid) for i, p in zip(photos, pictures, strict=True)]
    for tiles in args.tiles:
        for label, setting in settings:
            options = {"tiles": tiles, "max_people": cap, **setting}
            figures, reader = read(crowds, options)
            for key, value in figures.items():
                result[f"crowd_tiles{tiles}_{label}_{key}"] = value
        # The first round's proposals of the reader itself (the finer grid aside).
        proposed = proposed_share(reader.person_detector(), crowds)
        result[f"crowd_tiles{tiles}_proposed_10plus"] = proposed
    print_report(result, width=12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
