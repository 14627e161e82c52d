"""Where the people a degradation costs are lost: never read, no human evidence, the re-read.

    python -m benchmarks.where_lost [--evalset DIR] [--only NAME ...]

`benchmarks.degraded_eval` counts the evalset's people with ≥ 10 labelled joints the
keypoint reader finds after each degradation. This says where it loses those it finds in
the undegraded photo (`found_10plus`) and not in the degraded one (`NAME_lost`), by the
first stage that drops them, asked of the degraded photo:

- `NAME_unread`: no pose on them at all, with the human evidence off (the reader with
  `min_body_evidence=0`, whose every reading counts): the person detector, the face
  proposals and the landmark model found nobody there;
- `NAME_face_or_body`: a pose on them has neither a human face at its head nor a body
  seen clearly enough to need one (the reader's first check, `failed_check`);
- `NAME_reread`: it has, but read again from its own region the landmark model no longer
  sees a person;
- `NAME_search`: it passes both, and the search lost it otherwise (a clearer pose took its
  place, or the medium decision took the degraded photo for a drawing).

`NAME_gained` counts the people found only after the degradation. Degradations are
`benchmarks.degraded_eval.DEGRADATIONS`, seeded as there (default: every one but `none`).
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.degraded_eval import DEGRADATIONS
from benchmarks.paths import evalset_dir
from benchmarks.pose_eval_matching import load_evalset, match_image
from benchmarks.report import print_report
from pipelines.catalog import keypoint_models
from pipelines.images import decode_image
from pipelines.pose.keypoints import MediaPipePoseDetector

STAGES = ("unread", "face_or_body", "reread", "search")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evalset", type=Path, default=evalset_dir())
    parser.add_argument(
        "--only", action="append", default=[], choices=sorted(DEGRADATIONS), help="these only"
    )
    args = parser.parse_args(argv)
    if args.evalset is None or not (args.evalset / "annotations.json").is_file():
        print(f"error: no evalset at {args.evalset} (POSEFRAMER_EVALSET)", file=sys.stderr)
        return 2
    reader = keypoint_models.load("mediapipe", hands=False)
    every_reading = keypoint_models.load("mediapipe", hands=False, min_body_evidence=0.0)
    assert isinstance(reader, MediaPipePoseDetector)
    images = load_evalset(args.evalset)
    # Seeded by the image's place in the evalset, as `degraded_eval` seeds them.
    photos = [
        (seed, im, decode_image((args.evalset / im.file).read_bytes())[0])
        for seed, im in enumerate(images)
        if im.medium == "photo" and im.people
    ]
    found = {seed: match_image(im, reader.detect(picture)).matches for seed, im, picture in photos}
    result: dict[str, Any] = {
        "found_10plus": sum(m.ten_plus and m.matched for ms in found.values() for m in ms)
    }
    for name in args.only or [name for name in DEGRADATIONS if name != "none"]:
        stages: Counter[str] = Counter()
        gained = 0
        for seed, im, picture in photos:
            moved, degraded = DEGRADATIONS[name](im, picture, seed)
            after = match_image(moved, reader.detect(degraded)).matches
            ten_plus = [(b, a) for b, a in zip(found[seed], after, strict=True) if b.ten_plus]
            gained += sum(1 for b, a in ten_plus if a.matched and not b.matched)
            lost = [a.index for b, a in ten_plus if b.matched and not a.matched]
            if not lost:
                continue
            readings = every_reading.detect(degraded)
            on_them = match_image(moved, readings).matches
            rgb = np.ascontiguousarray(np.asarray(degraded.convert("RGB")))
            for i in lost:
                j = on_them[i].detection
                if j is None:
                    stages["unread"] += 1
                else:
                    stages[reader.failed_check(rgb, readings[j]) or "search"] += 1
        result[f"{name}_lost"] = sum(stages.values())
        for stage in STAGES:
            result[f"{name}_{stage}"] = stages[stage]
        result[f"{name}_gained"] = gained
    print_report(result, width=12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
