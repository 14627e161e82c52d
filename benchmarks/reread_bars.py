"""How the re-reading's bars were chosen: people kept and animal photos passed, bar by bar.

    python -m benchmarks.reread_bars [--evalset DIR] [--negatives DIR ...] [--bars 0 0.1 ...]
        [--presences 0.5 0.6 ...] [--agreements 0.6 0.7 ...] [--floors 0.5 0.6 ...]
        [--degradation NAME]

The keypoint reader keeps a photo's person where the landmark model, reading them again from
the region their own joints give and from its mirror image, still sees a person
(`pipelines.pose.human_evidence.reread`): its person mask covers at least a share of the
pose's limbs, and its mean presence reaches a bar (the reader's `min_reread_presence`, by
default the 0.8 its first reading met) or, where it misses that, a lower one (MediaPipe's
own 0.5) with most of the joints first seen clearly read where they were (the reader's
`min_reread_agreement`). This reads every image once with the re-reading off, re-reads each
person found, and counts what the reader would keep, bar by bar with the others as shipped:
each coverage bar (`--bars`; 0 is no mask check), presence bar (`--presences`),
joint-agreement bar (`--agreements`; `agreement-off` is presence alone) and presence under
the agreement (`--floors`). Counted: the evalset photos' people with ≥ 10 labelled joints,
the same people in the evalset photos tiled 2 × 2 (`benchmarks.crowd_eval`'s crowds), and
the images with a "person" in each `--negatives` folder (by default the dev and held-out
halves of `benchmarks.photo_negatives`' animals and food). A bar is chosen on the dev halves
and the evalset; the held-out halves say how it carries over. With `--degradation` (a name
of `benchmarks.degraded_eval.DEGRADATIONS`), every image, the negatives' too, is read after
that degradation (the evalset's seeded as there, each folder's by its order).

It approximates the reader, and counts fewer "people" on the negatives than it: there the
re-reading drops a person before the poses of the image's brightened view (dim photos)
merge, and where it drops every person the whole-image reading is tried as well (which can
find another); here neither. `benchmarks.pose_eval` with these folders as
`--extra-negatives` counts the reader's own. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import Image

from benchmarks.crowd_eval import tiled
from benchmarks.degraded_eval import DEGRADATIONS
from benchmarks.paths import REPO, evalset_dir
from benchmarks.pose_eval_matching import (
    IMAGE_SUFFIXES,
    MIN_JOINTS_10PLUS,
    EvalImage,
    labelled_joints,
    load_evalset,
    match_image,
)
from benchmarks.report import print_report
from pipelines.catalog import keypoint_models
from pipelines.images import decode_image
from pipelines.pose.human_evidence import AGREED_MIN_PRESENCE, MIN_LIMB_COVERAGE, Reread
from pipelines.pose.keypoints import MediaPipePoseDetector
from pipelines.records import Pose

NEGATIVES = REPO / ".poseframer" / "photo-negatives"
DEFAULT_NEGATIVES = [
    NEGATIVES / kind / half for kind in ("animals", "food") for half in ("dev", "held_out")
]
BARS = (0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6)
PRESENCES = (0.5, 0.6, 0.7, 0.8, 0.9)
AGREEMENTS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
FLOORS = (0.5, 0.6, 0.7)


def read_again(detector: MediaPipePoseDetector, picture: Image.Image) -> list[tuple[Pose, Reread]]:
    """The people the reader finds in `picture` with the re-reading off, each with what the
    landmark model says reading them again."""
    rgb = np.ascontiguousarray(np.asarray(picture.convert("RGB")))
    return [(pose, detector.read_again(rgb, pose)) for pose in detector.detect(picture)]


Bars = tuple[float, float, float, float]  # presence, coverage, joint agreement, its presence


def kept(readings: Sequence[tuple[Pose, Reread]], bars: Bars) -> list[Pose]:
    return [pose for pose, seen in readings if seen.still_a_person(*bars)]


def people_10plus(
    pictures: Iterable[tuple[EvalImage, list[tuple[Pose, Reread]]]], bars: Bars
) -> int:
    """How many of the pictures' people with ≥ 10 labelled joints the reader keeps at
    `bars`."""
    return sum(
        m.labelled >= MIN_JOINTS_10PLUS and m.detection is not None
        for image, readings in pictures
        for m in match_image(image, kept(readings, bars)).matches
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evalset", type=Path, default=evalset_dir())
    parser.add_argument("--negatives", type=Path, action="append")
    parser.add_argument("--bars", type=float, nargs="+", default=list(BARS))
    parser.add_argument("--presences", type=float, nargs="+", default=list(PRESENCES))
    parser.add_argument("--agreements", type=float, nargs="+", default=list(AGREEMENTS))
    parser.add_argument("--floors", type=float, nargs="+", default=list(FLOORS))
    parser.add_argument("--degradation", choices=sorted(DEGRADATIONS), default="none")
    args = parser.parse_args(argv)
    degrade = DEGRADATIONS[args.degradation]
    if not (args.evalset / "annotations.json").is_file():
        print(f"error: no evalset at {args.evalset} (POSEFRAMER_EVALSET)", file=sys.stderr)
        return 2
    folders: list[Path] = args.negatives or DEFAULT_NEGATIVES
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        print(
            f"error: no folder {', '.join(missing)} (python -m benchmarks.photo_negatives)",
            file=sys.stderr,
        )
        return 2
    detector = cast(
        MediaPipePoseDetector, keypoint_models.load("mediapipe", hands=False, reread=False)
    )
    evalset, crowds, photos = [], [], []
    for seed, image in enumerate(load_evalset(args.evalset)):
        if image.medium != "photo" or not image.people:
            continue
        photos.append(image)
        image, picture = degrade(
            image, decode_image((args.evalset / image.file).read_bytes())[0], seed
        )
        evalset.append((image, read_again(detector, picture)))
        crowd_image, crowd = tiled(image, picture, 2)
        crowds.append((crowd_image, read_again(detector, crowd)))
    nobody = EvalImage(file="", source="negatives", medium="photo", people=())
    negatives = {
        folder: [
            read_again(detector, degrade(nobody, decode_image(path.read_bytes())[0], seed)[1])
            for seed, path in enumerate(sorted(folder.iterdir()))
            if path.suffix.lower() in IMAGE_SUFFIXES
        ]
        for folder in folders
    }
    result: dict[str, Any] = {"degradation": args.degradation}
    presence, agreement = detector.min_reread_presence, detector.min_reread_agreement
    coverage, floor = MIN_LIMB_COVERAGE, AGREED_MIN_PRESENCE
    sweeps = [(f"bar{bar:g}", (presence, bar, agreement, floor)) for bar in args.bars]
    sweeps += [(f"presence{bar:g}", (bar, coverage, agreement, floor)) for bar in args.presences]
    sweeps += [(f"agreement{bar:g}", (presence, coverage, bar, floor)) for bar in args.agreements]
    sweeps += [(f"floor{bar:g}", (presence, coverage, agreement, bar)) for bar in args.floors]
    sweeps += [("agreement-off", (presence, coverage, math.inf, floor))]
    for label, bars in sweeps:
        result[f"{label}_evalset_10plus"] = people_10plus(evalset, bars)
        result[f"{label}_crowds_10plus"] = people_10plus(crowds, bars)
        for folder, images in negatives.items():
            name = f"{folder.parent.name}_{folder.name}"
            result[f"{label}_{name}_false"] = sum(bool(kept(r, bars)) for r in images)
    result["evalset_people_10plus"] = sum(
        labelled_joints(p.keypoints) >= MIN_JOINTS_10PLUS for im in photos for p in im.people
    )
    result["negative_images"] = {f"{f.parent.name}_{f.name}": len(v) for f, v in negatives.items()}
    print_report(result, width=12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
