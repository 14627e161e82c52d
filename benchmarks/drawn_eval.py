"""Drawn figures: the keypoint reader with and without its stick-figure reading, in one run.

    python -m benchmarks.drawn_eval [--renders 150] [--clipart /usr/share/openclipart/png]

- Stick figures rendered from random poses (`benchmarks.stick_renders`), `open` (limbs apart)
  and `any` (limbs crossing the body or each other): the share read, and PCK@0.2 of the
  trunk over the drawn joints (the better of the two left/right assignments) of those read.
- Open Clip Art (Debian's `openclipart-png`, when installed): the share of `people/stickmen`
  in which a figure is read, and of `animals/` and `food/` (nobody there) in which one is.

The baseline column is the same keypoint reader with `stick_figures=False` (BlazePose only).
Last line: one JSON object (`benchmarks.report.print_report`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.pose_eval import count_people, extra_images
from benchmarks.report import print_report
from benchmarks.stick_renders import pck, render
from pipelines.keypoints import KeypointDetector, keypoint_models

CLIPART = Path("/usr/share/openclipart/png")
FOLDERS = (("stickmen", "people/stickmen"), ("animals", "animals"), ("food", "food"))


def renders(detector: KeypointDetector, kind: str, count: int) -> dict[str, float]:
    rng = np.random.default_rng(2026)
    read, scores = 0, []
    for _ in range(count):
        drawn = render(rng, kind)
        people = detector.detect(drawn.image)
        if people:
            read += 1
            scores.append(pck(people[0].array().astype(np.float64), drawn))
    mean = round(float(np.mean(scores)), 3) if scores else 0.0
    return {"found": round(read / count, 3), "pck02": mean}


def clipart(detector: KeypointDetector, root: Path, limit: int) -> dict[str, float]:
    """The share of each clip-art folder's images (decoded as the indexer decodes them) in
    which the detector reads a figure."""
    shares = {}
    for name, folder in FOLDERS:
        counts = count_people(detector, root / folder, extra_images(root / folder, limit))
        shares[name] = round(counts.images_with_people / max(counts.images, 1), 3)
    return shares


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=150)
    parser.add_argument("--clipart", type=Path, default=CLIPART)
    parser.add_argument("--limit", type=int, default=150, help="images per clip-art folder")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {}
    for label, options in (("baseline", {"stick_figures": False}), ("now", {})):
        detector = keypoint_models.load("mediapipe", hands=False, **options)
        started = time.perf_counter()
        for kind in ("open", "any"):
            for key, value in renders(detector, kind, args.renders).items():
                result[f"{label}_{kind}_{key}"] = value
        if args.clipart.is_dir():
            for key, value in clipart(detector, args.clipart, args.limit).items():
                result[f"{label}_clipart_{key}_found"] = value
        result[f"{label}_seconds"] = round(time.perf_counter() - started, 1)
    result["goal_stickmen_found"] = 0.9
    result["goal_animals_found"] = 0.1
    result["goal_food_found"] = 0.05
    result["goal_pck02"] = 0.6
    print_report(result, width=12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
