"""Several figures in one drawing: held-out renders side by side, read one figure per drawing
(before) and now.

    python -m benchmarks.drawn_pairs [--pages 60]

Each page puts two renders of `benchmarks.drawn_eval`'s held-out seed side by side (two poses
no training saw, in one of the styles artists draw figures in: stick, mannequin, contour, bean,
child; the second render's joints move with it), as a sketchbook page of two figures would
be. The same number of single renders (one figure per page, the same styles) shows that a
single figure is not split into several. Each is read by the default keypoint reader with
`several_figures=False` (before: the drawn-figure model reads one figure per drawing) and as
configured by default (now). Every figure drawn is matched to the reading that places its
joints best (PCK@0.2 of the trunk, the better of the two left/right assignments; each reading
matches one figure at most). Printed per setting and page kind: the share of figures read,
their PCK, and the readings beyond the figures drawn. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.drawn_eval import TEST_SEED, drawn
from benchmarks.report import print_report
from benchmarks.stick_renders import StickRender, pck
from pipelines.catalog import keypoint_models
from pipelines.pose.drawn.figures import sample_figure
from pipelines.pose.keypoints import KeypointDetector

STYLES = ("stick", "mannequin", "contour", "bean", "child")
SETTINGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("before", {"several_figures": False}),
    ("now", {}),
)

Page = tuple[Image.Image, list[StickRender]]


def side_by_side(left: StickRender, right: StickRender) -> Page:
    """Two renders on one page, the right one's joints moved with it."""
    page = Image.new(
        "RGB",
        (left.image.width + right.image.width, max(left.image.height, right.image.height)),
        "white",
    )
    page.paste(left.image, (0, 0))
    page.paste(right.image, (left.image.width, 0))
    moved = right.truth.copy()
    moved[:, 0] += left.image.width
    return page, [left, replace(right, truth=moved)]


def pages(count: int) -> dict[str, list[Page]]:
    """`count` pages of two figures and `count` of one, the styles in turn."""
    rng = np.random.default_rng(TEST_SEED)
    renders = [drawn(sample_figure(rng), rng, STYLES[i % len(STYLES)])[1] for i in range(3 * count)]
    pairs = [side_by_side(renders[2 * i], renders[2 * i + 1]) for i in range(count)]
    singles = [(r.image, [r]) for r in renders[2 * count :]]
    return {"pairs": pairs, "singles": singles}


def score(detector: KeypointDetector, cases: list[Page]) -> dict[str, float]:
    drawn_figures = read = extra = 0
    scores: list[float] = []
    for image, figures in cases:
        poses = [p.array().astype(np.float64) for p in detector.detect(image)]
        drawn_figures += len(figures)
        extra += max(0, len(poses) - len(figures))
        table = np.array([[pck(pose, figure) for pose in poses] for figure in figures])
        free = list(range(len(poses)))
        for f in np.argsort(-table.max(axis=1)) if poses else []:
            if not free:
                break
            best = max(free, key=lambda j: table[f, j])
            free.remove(best)
            read += 1
            scores.append(float(table[f, best]))
    return {
        "read": round(read / max(drawn_figures, 1), 3),
        "pck02": round(float(np.mean(scores)), 3) if scores else 0.0,
        "extra_readings": extra,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=60, help="pages of each kind")
    args = parser.parse_args(argv)
    cases = pages(args.pages)
    result: dict[str, Any] = {}
    for label, options in SETTINGS:
        detector = keypoint_models.load("mediapipe", hands=False, **options)
        started = time.perf_counter()
        for kind, items in cases.items():
            for key, value in score(detector, items).items():
                result[f"{label}_{kind}_{key}"] = value
        result[f"{label}_seconds"] = round(time.perf_counter() - started, 1)
    result["pages_each"] = args.pages
    print_report(result, width=12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
