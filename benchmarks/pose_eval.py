"""Pose search evaluation on the annotated evalset.

    python -m benchmarks.pose_eval [--evalset ../shared/data/evalset]

Indexes the evalset's images with the configured (default) models through the real Dagster
job into a temporary home, then measures, and prints a table and, as its last line, one JSON
object:

- pck02 (and pck02_photo, pck02_drawn): PCK@0.2 of torso size over the labelled joints of the
  annotated people that a detection matched (missed people count in person_recall);
- person_recall: annotated people matched by a detection (box IoU ≥ 0.5). Both boxes are
  built the same way from keypoints (the placed joints' extent, widened by 10 % each side
  and upwards by a head's height), because the source datasets' own boxes follow different
  conventions (square Human3.6M crops, loose OCHuman boxes); the annotated box is used only
  for a person with fewer than two labelled joints;
- false_people_on_negatives: detections on images with no person;
- mirror_rank1: a horizontally flipped copy of each image with people, as an image query with
  `mirror: true`, finds the original image at rank 1;
- ndcg10: for each annotated person as a query, nDCG@10 of the system's ranking (the query's
  detected keypoints against the index of detected keypoints) against the relevance given by
  the similarity of the ground-truth keypoints (the query's own image left out of both);
- figure_found_drawn: sketches and illustrations with people in which a figure is found
  (what a sketch query needs);
- seconds_per_image: keypoint detection time per image on this machine.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from assets.indexing import index_folder
from assets.settings import IndexSettings
from benchmarks.paths import evalset_dir
from pipelines.images import decode_image
from pipelines.keypoints import keypoint_models
from pipelines.pose_embedding import pose_models
from pipelines.records import COCO17_INDEX, Pose
from serving.search_service import SearchQuery, SearchService
from serving.settings import ServingSettings

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EVALSET = evalset_dir()
TINY_CLIP = REPO / "tests" / "fixtures" / "poseframer-tiny-clip.json"
GOALS = {
    "pck02_photo": 0.85,
    "person_recall": 0.80,
    "false_people_on_negatives": 2,
    "mirror_rank1": 0.95,
    "ndcg10": 0.80,
    "seconds_per_image": 0.5,
}


@dataclass(frozen=True)
class Person:
    image: str
    medium: str
    keypoints: np.ndarray  # (17, 3): x, y, v
    bbox: tuple[float, float, float, float]


def gt_pose(person: Person) -> Pose:
    arr = person.keypoints.astype(np.float64).copy()
    arr[:, 2] = (arr[:, 2] > 0).astype(float)
    return Pose.from_array(arr)


def keypoint_box(arr: np.ndarray) -> tuple[float, float, float, float] | None:
    """The box of a person's placed joints (score or visibility > 0), head room added."""
    placed = arr[arr[:, 2] > 0]
    if len(placed) < 2:
        return None
    x0, y0 = placed[:, :2].min(axis=0)
    x1, y1 = placed[:, :2].max(axis=0)
    w, h = x1 - x0, y1 - y0
    head = 0.15 * h
    return x0 - 0.1 * w, y0 - 0.1 * h - head, w * 1.2, h * 1.2 + head


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def torso_size(kp: np.ndarray) -> float | None:
    idx = [COCO17_INDEX[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    if not (kp[idx, 2] > 0).all():
        return None
    shoulders = (kp[idx[0], :2] + kp[idx[1], :2]) / 2
    hips = (kp[idx[2], :2] + kp[idx[3], :2]) / 2
    size = float(np.linalg.norm(shoulders - hips))
    return size if size > 1 else None


def match(people: list[Person], detections: list[Pose]) -> dict[int, int]:
    """Greedy one-to-one matching of annotated people to detections by box IoU ≥ 0.5."""
    pairs = []
    for i, person in enumerate(people):
        for j, det in enumerate(detections):
            box = keypoint_box(det.array())
            if box is not None:
                pairs.append((iou(keypoint_box(person.keypoints) or person.bbox, box), i, j))
    matched: dict[int, int] = {}
    used: set[int] = set()
    for score, i, j in sorted(pairs, reverse=True):
        if score >= 0.5 and i not in matched and j not in used:
            matched[i] = j
            used.add(j)
    return matched


def ndcg(ranked_rel: list[float], ideal_rel: list[float], k: int = 10) -> float:
    def dcg(rels: list[float]) -> float:
        return sum(r / math.log2(i + 2) for i, r in enumerate(rels[:k]))

    best = dcg(sorted(ideal_rel, reverse=True))
    return dcg(ranked_rel) / best if best > 0 else 0.0


def evaluate(evalset: Path) -> dict[str, Any]:
    annotations = json.loads((evalset / "annotations.json").read_text())["images"]
    images = [im for im in annotations if im["file"].startswith("images/")]
    detector = keypoint_models.load("mediapipe")
    embedder = pose_models.load("geometric-v1")

    # Detection: PCK, recall, false people, time.
    detections: dict[str, list[Pose]] = {}
    people: dict[str, list[Person]] = {}
    seconds = 0.0
    for im in images:
        image, _ = decode_image((evalset / im["file"]).read_bytes())
        start = time.perf_counter()
        detections[im["file"]] = detector.detect(image)
        seconds += time.perf_counter() - start
        people[im["file"]] = [
            Person(im["file"], im["medium"], np.asarray(p["keypoints_coco17"], float), p["bbox"])
            for p in im["people"]
        ]
    matches = {f: match(people[f], detections[f]) for f in people}
    annotated = sum(len(p) for p in people.values())
    recalled = sum(len(m) for m in matches.values())
    negatives = [f for f in people if not people[f]]
    false_people = sum(len(detections[f]) for f in negatives)
    pck_hits: dict[str, list[bool]] = {"photo": [], "drawn": []}
    for f, persons in people.items():
        for i, person in enumerate(persons):
            torso = torso_size(person.keypoints)
            if torso is None:
                continue
            medium = "photo" if person.medium == "photo" else "drawn"
            if i not in matches[f]:
                continue
            det = detections[f][matches[f][i]].array()
            for j in range(17):
                if person.keypoints[j, 2] > 0:
                    distance = np.linalg.norm(det[j, :2] - person.keypoints[j, :2])
                    pck_hits[medium].append(bool(distance <= 0.2 * torso))

    # Search: index the images with the real job, then query through the service.
    with tempfile.TemporaryDirectory(prefix="poseframer-eval-") as tmp:
        home = Path(tmp)
        # Text plays no part here: the tiny random-weight CLIP only keeps indexing quick.
        tiny = ("poseframer-tiny-clip", "random", str(TINY_CLIP))
        settings = IndexSettings(
            home=home, clip_model=tiny[0], clip_pretrained=tiny[1], clip_config=tiny[2]
        )
        report = index_folder(evalset / "images", settings, batch_id="evalset")
        if not report.success:
            raise SystemExit("indexing the evalset failed")
        service = SearchService.from_settings(
            ServingSettings(
                home=home, clip_model=tiny[0], clip_pretrained=tiny[1], clip_config=tiny[2]
            )
        )
        mirror_hits, mirror_total = 0, 0
        for f, persons in people.items():
            if not persons:
                continue
            mirror_total += 1
            image = Image.open(evalset / f)
            flipped = io.BytesIO()
            ImageOps.mirror(ImageOps.exif_transpose(image).convert("RGB")).save(flipped, "PNG")
            try:
                outcome = service.search(
                    SearchQuery(image=flipped.getvalue(), mirror=True, k=1, one_per_image=True)
                )
            except Exception:  # no figure found in the flipped copy: a miss
                continue
            mirror_hits += bool(
                outcome.hits and Path(str(outcome.hits[0].row["source_uri"])).name == Path(f).name
            )

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
            if i not in matches[f]:
                ndcgs.append(0.0)  # the query person was not detected: no system ranking
                continue
            detected = detections[f][matches[f][i]]
            outcome = service.search(
                SearchQuery(
                    keypoints=[list(k) for k in detected.keypoints], k=11, one_per_image=True
                )
            )
            ranked = [Path(str(h.row["source_uri"])).name for h in outcome.hits]
            ranked = [name for name in ranked if name != Path(f).name][:10]
            ndcgs.append(ndcg([relevance.get(n, 0.0) for n in ranked], list(relevance.values())))

    def mean(values: list[bool] | list[float]) -> float:
        return float(np.mean(values)) if values else 0.0

    drawn = [im["file"] for im in images if im["medium"] != "photo" and im["people"]]
    found_drawn = sum(1 for f in drawn if detections[f])
    all_pck = pck_hits["photo"] + pck_hits["drawn"]
    return {
        "pck02": round(mean(all_pck), 4),
        "pck02_photo": round(mean(pck_hits["photo"]), 4),
        "pck02_drawn": round(mean(pck_hits["drawn"]), 4),
        "person_recall": round(recalled / annotated, 4) if annotated else 0.0,
        "annotated_people": annotated,
        "false_people_on_negatives": false_people,
        "negative_images": len(negatives),
        "figure_found_drawn": round(found_drawn / len(drawn), 4) if drawn else 0.0,
        "drawn_images": len(drawn),
        "mirror_rank1": round(mirror_hits / mirror_total, 4) if mirror_total else 0.0,
        "ndcg10": round(mean(ndcgs), 4),
        "seconds_per_image": round(seconds / len(images), 4),
        "images": len(images),
        "keypoint_model": detector.model_id,
        "pose_model": embedder.model_id,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
        f"{__import__('os').cpu_count()} cores",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evalset", type=Path, default=DEFAULT_EVALSET)
    args = parser.parse_args(argv)
    if not (args.evalset / "annotations.json").is_file():
        print(f"error: no evalset at {args.evalset}", file=sys.stderr)
        return 2
    result = evaluate(args.evalset)
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
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
