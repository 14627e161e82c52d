"""Pose search evaluation on the annotated evalset.

    python -m benchmarks.pose_eval [--evalset ../shared/data/evalset]
        [--extra-negatives DIR ...] [--extra-positives DIR ...] [--extra-limit 150]
        [--ceiling]

Indexes the evalset's images with the configured (default) models through the real Dagster
job into a temporary home, then measures, and prints a table, a table per source and, as its
last line, one JSON object:

- pck02 (and pck02_photo, pck02_drawn): PCK@0.2 of torso size over the labelled joints of the
  annotated people that a detection matched (missed people count in person_recall);
- person_recall: annotated people matched by a detection (box IoU ≥ 0.5). Both boxes are
  built the same way from keypoints (the placed joints' extent, widened by 10 % each side
  and upwards by a head's height), because the source datasets' own boxes follow different
  conventions (square Human3.6M crops, loose OCHuman boxes); the annotated box is used only
  for a person with fewer than two labelled joints;
- person_recall_10plus (of annotated_people_10plus): the same recall over the annotated people
  with at least 10 labelled joints (v > 0), the people a pose search can use; the others are
  mostly tiny, cut off or hidden;
- false_people_on_negatives: detections on images with no person;
- mirror_rank1: a horizontally flipped copy of each image with people, as an image query with
  `mirror: true`, finds the original image at rank 1 (mirror_rank1_indexed: the same over the
  images whose original has a figure in the index, the only ones a pose query can find);
- ndcg10: for each annotated person as a query, nDCG@10 of the system's ranking (the query's
  detected keypoints against the index of detected keypoints) against the relevance given by
  the similarity of the ground-truth keypoints (the query's own image left out of both);
- figure_found_drawn: sketches and illustrations with people in which a figure is found
  (what a sketch query needs);
- seconds_per_image: keypoint detection time per image on this machine;
- per_source: images, people, recalled, recall_10plus, pck02 and false_people per source
  dataset (the folder the image came from, `source_name`), so a change that helps one source
  and hurts another shows.

With `--extra-negatives DIR` (repeatable; folders of images with nobody, e.g. openclipart's
`animals/` and `food/`, or the real animal and food photos set into scenes that
`python -m benchmarks.photo_negatives` writes): false_people_extra (detections there),
extra_negative_images and extra_images_with_people. With `--extra-positives DIR`
(repeatable; every image shows one drawn figure, e.g. openclipart's `people/stickmen/`):
figure_found_extra (share of them with a figure found) of extra_positive_images. Each
folder (searched recursively) gives at most `--extra-limit` images, drawn with a fixed seed
so runs compare. Per folder in per_extra.

With `--ceiling`, the landmark model alone on a square region around each annotated photo
person's ground-truth box (`ceiling`; upright, read once, no human-evidence check):
ceiling_accept (share of those people that the backend's rule, presence ≥
min_person_presence and mean COCO-17 score ≥ min_pose_score, keeps), ceiling_accept_10plus,
ceiling_recall (accepted and matched by the IoU rule), ceiling_pck02 (PCK@0.2 of the accepted
people) and ceiling_pck02_all (of every person, accepted or not). To tell detection from
landmark errors (`ceiling_split`): missed_10plus_photo, the photo people with 10+ joints the
system missed, of which missed_10plus_ceiling_accepts the landmark model accepts from their
true region (lost by the detector; the rest by the landmark model or the rule); and
matched_pck02_system against matched_pck02_ceiling, the two PCKs on the same matched people.

`pose_eval_matching.detect_evalset` runs a detector over the evalset and matches its people
without Dagster,
for the leave-one-source-out benchmark (`benchmarks.loso`).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ImageOps

from benchmarks.paths import TINY_CLIP, evalset_dir
from benchmarks.pose_eval_extra import (
    DEFAULT_EXTRA_LIMIT,
    ceiling,
    ceiling_by_source,
    ceiling_metrics,
    ceiling_split,
    extra_metrics,
)
from benchmarks.pose_eval_matching import (
    EvalImage,
    ImageDetections,
    detect_evalset,
    detection_metrics,
    gt_pose,
    load_evalset,
)
from pipelines.catalog import keypoint_models, pose_models
from pipelines.images import decode_image

DEFAULT_EVALSET = evalset_dir()
GOALS = {
    "pck02_photo": 0.85,
    "person_recall": 0.80,
    "person_recall_10plus": 0.80,
    "false_people_on_negatives": 2,
    "mirror_rank1": 0.95,
    "ndcg10": 0.80,
    "seconds_per_image": 0.5,
}


# ---------------------------------------------------------------- extra folders


# ---------------------------------------------------------------- the landmark model's ceiling


# ---------------------------------------------------------------- search through the service


# Text plays no part in the pose benchmarks: the tiny random-weight CLIP only keeps indexing
# quick.
TINY_CLIP_SETTINGS: dict[str, Any] = {
    "clip_model": "poseframer-tiny-clip",
    "clip_pretrained": "random",
    "clip_config": str(TINY_CLIP),
}


def index_evalset(evalset: Path, home: Path) -> None:
    """Index the evalset's images into `home` with the real Dagster job (batch `evalset`)."""
    # Dagster and the service load only here: `detect_evalset` and the LOSO benchmark
    # need neither.
    from assets.indexing import index_folder
    from config.settings import Settings

    settings = Settings.of(home=home, **TINY_CLIP_SETTINGS)
    if not index_folder(evalset / "images", settings, batch_id="evalset").success:
        raise SystemExit("indexing the evalset failed")


def evalset_service(home: Path, **settings: Any) -> Any:
    """The search service over `home` (a `SearchService`), with the benchmarks' tiny CLIP."""
    from config.settings import Settings
    from serving.search_service import SearchService

    return SearchService.from_settings(
        Settings.from_env(home=home, **TINY_CLIP_SETTINGS, **settings)
    )


def search_metrics(
    evalset: Path, images: Sequence[EvalImage], results: Sequence[ImageDetections]
) -> dict[str, Any]:
    """mirror_rank1 and ndcg10: index the images with the real job, query the service."""
    from serving.search_service import SearchQuery

    embedder = pose_models.load("geometric-v1")
    people = {im.file: im.people for im in images}
    detections = {r.image.file: r.detections for r in results}
    matches = {r.image.file: {m.index: m.detection for m in r.matches} for r in results}
    with tempfile.TemporaryDirectory(prefix="poseframer-eval-") as tmp:
        home = Path(tmp)
        index_evalset(evalset, home)
        service = evalset_service(home)
        mirror_hits, mirror_total = 0, 0
        indexed_hits, indexed_total = 0, 0  # over originals with a figure in the index
        for f, persons in people.items():
            if not persons:
                continue
            mirror_total += 1
            indexed = bool(detections[f])
            indexed_total += indexed
            # As the indexer sees it (EXIF applied, transparency on white), then flipped.
            image, _ = decode_image((evalset / f).read_bytes())
            flipped = io.BytesIO()
            ImageOps.mirror(image.convert("RGB")).save(flipped, "PNG")
            try:
                outcome = service.search(
                    SearchQuery(image=flipped.getvalue(), mirror=True, k=1, one_per_image=True)
                )
            except Exception:  # no figure found in the flipped copy: a miss
                continue
            hit = bool(
                outcome.hits and Path(str(outcome.hits[0].row["source_uri"])).name == Path(f).name
            )
            mirror_hits += hit
            indexed_hits += hit and indexed

        # nDCG@10: relevance of an image = best GT similarity of its people to the query's GT.
        gt_vectors = {
            (f, i): embedder.embed(gt_pose(p)) for f, ps in people.items() for i, p in enumerate(ps)
        }
        ndcgs = []
        for (f, i), query_vector in gt_vectors.items():
            if query_vector is None:
                continue
            relevance: dict[str, float] = {}
            for (g, _), vector in gt_vectors.items():
                if g != f and vector is not None:
                    relevance[Path(g).name] = max(
                        relevance.get(Path(g).name, 0.0), max(0.0, float(vector @ query_vector))
                    )
            j = matches[f].get(i)
            if j is None:
                ndcgs.append(0.0)  # the query person was not detected: no system ranking
                continue
            detected = detections[f][j]
            outcome = service.search(
                SearchQuery(
                    keypoints=[list(k) for k in detected.keypoints], k=11, one_per_image=True
                )
            )
            ranked = [Path(str(h.row["source_uri"])).name for h in outcome.hits]
            ranked = [name for name in ranked if name != Path(f).name][:10]
            ndcgs.append(ndcg([relevance.get(n, 0.0) for n in ranked], list(relevance.values())))
    return {
        "mirror_rank1": round(mirror_hits / mirror_total, 4) if mirror_total else 0.0,
        "mirror_rank1_indexed": round(indexed_hits / indexed_total, 4) if indexed_total else 0.0,
        "mirror_indexed_images": indexed_total,
        "ndcg10": round(float(np.mean(ndcgs)), 4) if ndcgs else 0.0,
        "pose_model": embedder.model_id,
    }


def ndcg(ranked_rel: list[float], ideal_rel: list[float], k: int = 10) -> float:
    def dcg(rels: list[float]) -> float:
        return sum(r / math.log2(i + 2) for i, r in enumerate(rels[:k]))

    best = dcg(sorted(ideal_rel, reverse=True))
    return dcg(ranked_rel) / best if best > 0 else 0.0


def machine() -> str:
    return f"{platform.machine()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cores"


def evaluate(
    evalset: Path,
    extra_negatives: Sequence[Path] = (),
    extra_positives: Sequence[Path] = (),
    extra_limit: int = DEFAULT_EXTRA_LIMIT,
    with_ceiling: bool = False,
) -> dict[str, Any]:
    images = load_evalset(evalset)
    detector = keypoint_models.load("mediapipe")
    results = detect_evalset(detector, evalset, images)
    detection = detection_metrics(results)
    search = search_metrics(evalset, images, results)
    seconds = sum(r.seconds for r in results)
    per_source = detection.pop("per_source")
    result: dict[str, Any] = {
        **{k: detection[k] for k in ("pck02", "pck02_photo", "pck02_drawn", "person_recall")},
        "annotated_people": detection["annotated_people"],
        "person_recall_10plus": detection["person_recall_10plus"],
        "annotated_people_10plus": detection["annotated_people_10plus"],
        "false_people_on_negatives": detection["false_people_on_negatives"],
        "negative_images": detection["negative_images"],
        "figure_found_drawn": detection["figure_found_drawn"],
        "drawn_images": detection["drawn_images"],
        "mirror_rank1": search["mirror_rank1"],
        "mirror_rank1_indexed": search["mirror_rank1_indexed"],
        "mirror_indexed_images": search["mirror_indexed_images"],
        "ndcg10": search["ndcg10"],
        "seconds_per_image": round(seconds / len(images), 4),
        "images": len(images),
    }
    result |= extra_metrics(detector, extra_negatives, extra_positives, extra_limit)
    if with_ceiling:
        records = ceiling(
            images,
            evalset,
            variant=str(getattr(detector, "variant", "full")),
            min_presence=float(getattr(detector, "min_person_presence", 0.8)),
            min_pose_score=float(getattr(detector, "min_pose_score", 0.4)),
        )
        result |= ceiling_metrics(records) | ceiling_split(records, results)
        for source, figures in ceiling_by_source(records).items():
            per_source[source] |= figures
    result |= {
        "per_source": per_source,
        "keypoint_model": detector.model_id,
        "pose_model": search["pose_model"],
        "machine": machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    return result


def format_cell(value: Any, width: int) -> str:
    if value is None:
        return f"{'–':>{width}}"
    if isinstance(value, float):
        return f"{value:>{width}.3f}"
    return f"{value!s:>{width}}"


def print_source_table(per_source: Mapping[str, Mapping[str, Any]], columns: Sequence[str]) -> None:
    """One row per source, the given columns (– where a figure has nothing to measure)."""
    print(f"{'source':<14}" + "".join(f"{c:>15}" for c in columns))
    for source, figures in per_source.items():
        print(f"{source:<14}" + "".join(format_cell(figures.get(c), 15) for c in columns))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evalset", type=Path, default=DEFAULT_EVALSET)
    parser.add_argument(
        "--extra-negatives",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of images with nobody in them (repeatable)",
    )
    parser.add_argument(
        "--extra-positives",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder whose every image shows one drawn figure (repeatable)",
    )
    parser.add_argument(
        "--extra-limit",
        type=int,
        default=DEFAULT_EXTRA_LIMIT,
        metavar="N",
        help=f"at most N images per extra folder, fixed seed (default {DEFAULT_EXTRA_LIMIT})",
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="also run the landmark model on each annotated photo person's ground-truth box",
    )
    args = parser.parse_args(argv)
    if not (args.evalset / "annotations.json").is_file():
        print(f"error: no evalset at {args.evalset}", file=sys.stderr)
        return 2
    for folder in [*args.extra_negatives, *args.extra_positives]:
        if not folder.is_dir():
            print(f"error: no folder {folder}", file=sys.stderr)
            return 2
    result = evaluate(
        args.evalset,
        extra_negatives=args.extra_negatives,
        extra_positives=args.extra_positives,
        extra_limit=args.extra_limit,
        with_ceiling=args.ceiling,
    )
    print(f"{'metric':<28}{'value':>10}  goal")
    for key, value in result.items():
        goal = GOALS.get(key)
        shown = (
            ""
            if goal is None
            else (
                f"≤ {goal}"
                if key in ("false_people_on_negatives", "seconds_per_image")
                else f"≥ {goal}"
            )
        )
        if isinstance(value, int | float):
            print(f"{key:<28}{value:>10}  {shown}")
    print()
    columns = ["images", "people", "recalled", "recall_10plus", "pck02", "false_people"]
    if args.ceiling:
        columns += ["ceiling_accept", "ceiling_pck02"]
    print_source_table(result["per_source"], columns)
    if "per_extra" in result:
        print()
        print(f"{'extra folder':<44}{'kind':>10}{'images':>8}{'with people':>13}{'people':>8}")
        for folder, figures in result["per_extra"].items():
            print(
                f"{folder[-44:]:<44}{figures['kind']:>10}{figures['images']:>8}"
                f"{figures['images_with_people']:>13}{figures['people']:>8}"
            )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
