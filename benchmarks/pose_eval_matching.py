"""The evalset and its matching: annotated people, detections matched to them by box IoU,
PCK@0.2, and the counts per source that `benchmarks.pose_eval` and `benchmarks.loso` report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from pipelines.images import decode_image
from pipelines.pose.figure_geometry import keypoint_box
from pipelines.pose.keypoints import KeypointDetector
from pipelines.records import COCO17_INDEX, Pose

# A person with at least this many labelled joints is one a pose search can use.
MIN_JOINTS_10PLUS = 10
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


@dataclass(frozen=True)
class Person:
    image: str
    medium: str
    keypoints: np.ndarray  # (17, 3): x, y, v
    bbox: tuple[float, float, float, float]


def moved_people(image: EvalImage, move: Callable[[np.ndarray], np.ndarray]) -> tuple[Person, ...]:
    """`image`'s people with their joints and boxes taken where `move` takes points of the
    picture (`(N, 2)` → `(N, 2)`: a resize, a turn, a tile's place); a box becomes the box
    of its moved corners."""
    people = []
    for person in image.people:
        keypoints = person.keypoints.copy()
        keypoints[:, :2] = move(keypoints[:, :2].astype(np.float64))
        x, y, w, h = person.bbox
        corners = move(np.array([[x, y], [x + w, y + h]], dtype=np.float64))
        (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
        box = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
        people.append(replace(person, keypoints=keypoints, bbox=box))
    return tuple(people)


@dataclass(frozen=True)
class EvalImage:
    """One evalset image and its annotated people (none: a negative)."""

    file: str
    medium: str
    source: str
    people: tuple[Person, ...]


@dataclass(frozen=True)
class PersonMatch:
    """What a detector made of one annotated person.

    `detection` is the index of the matched detection in its image's list (None: missed);
    `pck_hits` of `pck_total` labelled joints lie within 0.2 torso of the annotation (both 0
    when missed or when the person has no torso to measure by).
    """

    image: str
    source: str
    medium: str
    index: int
    labelled: int
    detection: int | None
    pck_hits: int
    pck_total: int

    @property
    def matched(self) -> bool:
        return self.detection is not None

    @property
    def ten_plus(self) -> bool:
        return self.labelled >= MIN_JOINTS_10PLUS

    @property
    def photo(self) -> bool:
        return self.medium == "photo"


@dataclass(frozen=True)
class ImageDetections:
    """A detector's people on one evalset image, its time, and the annotated people's matches."""

    image: EvalImage
    detections: tuple[Pose, ...]
    seconds: float
    matches: tuple[PersonMatch, ...]


@dataclass(frozen=True)
class SourceCounts:
    """Additive counts of one source (or of several pooled with `+`)."""

    images: int = 0
    people: int = 0
    recalled: int = 0
    people_10plus: int = 0
    recalled_10plus: int = 0
    pck_photo_hits: int = 0
    pck_photo_total: int = 0
    pck_drawn_hits: int = 0
    pck_drawn_total: int = 0
    negative_images: int = 0
    false_people: int = 0

    def __add__(self, other: SourceCounts) -> SourceCounts:
        return SourceCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    @property
    def recall(self) -> float | None:
        return ratio(self.recalled, self.people)

    @property
    def recall_10plus(self) -> float | None:
        return ratio(self.recalled_10plus, self.people_10plus)

    @property
    def pck02(self) -> float | None:
        return ratio(
            self.pck_photo_hits + self.pck_drawn_hits, self.pck_photo_total + self.pck_drawn_total
        )

    @property
    def pck02_photo(self) -> float | None:
        return ratio(self.pck_photo_hits, self.pck_photo_total)

    @property
    def pck02_drawn(self) -> float | None:
        return ratio(self.pck_drawn_hits, self.pck_drawn_total)

    @property
    def false_per_negative(self) -> float | None:
        return ratio(self.false_people, self.negative_images)

    def figures(self) -> dict[str, Any]:
        """The per-source report entry."""
        return {
            "images": self.images,
            "people": self.people,
            "recalled": self.recalled,
            "people_10plus": self.people_10plus,
            "recall_10plus": rounded(self.recall_10plus),
            "pck02": rounded(self.pck02),
            "negative_images": self.negative_images,
            "false_people": self.false_people,
        }


def ratio(hits: int, total: int) -> float | None:
    return hits / total if total else None


def rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def pooled(counts: Iterable[SourceCounts]) -> SourceCounts:
    total = SourceCounts()
    for c in counts:
        total = total + c
    return total


def labelled_joints(keypoints: np.ndarray) -> int:
    """How many of a person's 17 joints are labelled (v > 0)."""
    return int((np.asarray(keypoints, dtype=np.float64)[:, 2] > 0).sum())


def source_name(source_path: str, file: str = "") -> str:
    """The dataset an evalset image came from, named by its folder in the source repository:
    `tests/data/<dataset>/...` (mmpose's fixtures: coco, ochuman, crowdpose, aic, mpii, h36m,
    humanart, the animal sets) gives `<dataset>`; AnimatedDrawings' `characters/char*` give
    `animdraw`; mmpose's `demo/` images give `mmpose`. Otherwise the evalset file name's
    prefix (`images/<dataset>__...`, with a `neg_` prefix dropped)."""
    parts = PurePosixPath(source_path).parts
    if "characters" in parts:
        return "animdraw"
    if parts and parts[0] == "demo":
        return "mmpose"
    if "data" in parts[:-1]:
        return parts[parts.index("data") + 1].lower()
    stem = PurePosixPath(file).name.split("__")[0]
    return stem.removeprefix("neg_").lower() or "unknown"


def load_evalset(evalset: Path) -> list[EvalImage]:
    """The annotated images of the evalset (`images/…`), in the order of annotations.json."""
    annotations = json.loads((evalset / "annotations.json").read_text())["images"]
    images = []
    for im in annotations:
        if not im["file"].startswith("images/"):
            continue
        people = tuple(
            Person(im["file"], im["medium"], np.asarray(p["keypoints_coco17"], float), p["bbox"])
            for p in im["people"]
        )
        source = source_name(str(im.get("source_path", "")), im["file"])
        images.append(EvalImage(im["file"], im["medium"], source, people))
    return images


def gt_pose(person: Person) -> Pose:
    arr = person.keypoints.astype(np.float64).copy()
    arr[:, 2] = (arr[:, 2] > 0).astype(float)
    return Pose.from_array(arr)


def person_box(person: Person) -> tuple[float, float, float, float]:
    """The annotated person's box as matching uses it."""
    box = keypoint_box(person.keypoints)
    return box if box is not None else tuple(person.bbox)  # type: ignore[return-value]


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


def match(people: Sequence[Person], detections: Sequence[Pose]) -> dict[int, int]:
    """Greedy one-to-one matching of annotated people to detections by box IoU ≥ 0.5."""
    pairs = []
    for i, person in enumerate(people):
        for j, det in enumerate(detections):
            box = keypoint_box(det.array())
            if box is not None:
                pairs.append((iou(person_box(person), box), i, j))
    matched: dict[int, int] = {}
    used: set[int] = set()
    for score, i, j in sorted(pairs, reverse=True):
        if score >= 0.5 and i not in matched and j not in used:
            matched[i] = j
            used.add(j)
    return matched


def pck_counts(person: Person, detected: np.ndarray) -> tuple[int, int]:
    """(hits, labelled joints) of PCK@0.2 torso; (0, 0) without a torso to measure by."""
    torso = torso_size(person.keypoints)
    if torso is None:
        return 0, 0
    hits = total = 0
    for j in range(17):
        if person.keypoints[j, 2] > 0:
            distance = np.linalg.norm(detected[j, :2] - person.keypoints[j, :2])
            hits += bool(distance <= 0.2 * torso)
            total += 1
    return hits, total


def match_image(
    image: EvalImage, detections: Sequence[Pose], seconds: float = 0.0
) -> ImageDetections:
    """The annotated people of `image` matched to `detections`, with their PCK."""
    matched = match(image.people, detections)
    records = []
    for i, person in enumerate(image.people):
        j = matched.get(i)
        hits, total = (0, 0) if j is None else pck_counts(person, detections[j].array())
        records.append(
            PersonMatch(
                image=image.file,
                source=image.source,
                medium=image.medium,
                index=i,
                labelled=labelled_joints(person.keypoints),
                detection=j,
                pck_hits=hits,
                pck_total=total,
            )
        )
    return ImageDetections(image, tuple(detections), seconds, tuple(records))


def detect_evalset(
    detector: KeypointDetector, evalset: Path, images: Sequence[EvalImage] | None = None
) -> list[ImageDetections]:
    """Run `detector` on every evalset image (decoded as the pipeline decodes) and match."""
    return detect_pictures(
        detector,
        (
            (image, decode_image((evalset / image.file).read_bytes())[0])
            for image in (images if images is not None else load_evalset(evalset))
        ),
    )


def detect_pictures(
    detector: KeypointDetector, pictures: Iterable[tuple[EvalImage, Any]]
) -> list[ImageDetections]:
    """Run `detector` on decoded pictures (an evalset image's own, or one made from it: a
    crowd of its copies, a darkened copy), each with the evalset image whose people are in
    it, timing the detection alone, and match."""
    results = []
    for image, picture in pictures:
        start = time.perf_counter()
        found = detector.detect(picture)
        results.append(match_image(image, found, time.perf_counter() - start))
    return results


def seconds_per_image(results: Sequence[ImageDetections]) -> float:
    return round(sum(r.seconds for r in results) / max(len(results), 1), 3)


# The figures the benchmarks that read the evalset in other forms (crowds, darkened) print.
DETECTION_FIGURES = (
    "person_recall",
    "person_recall_10plus",
    "pck02_photo",
    "false_people_on_negatives",
)


def image_counts(result: ImageDetections) -> SourceCounts:
    """The counts one image contributes to its source."""
    ms = result.matches
    photo = [m for m in ms if m.photo]
    drawn = [m for m in ms if not m.photo]
    negative = not result.image.people
    return SourceCounts(
        images=1,
        people=len(ms),
        recalled=sum(m.matched for m in ms),
        people_10plus=sum(m.ten_plus for m in ms),
        recalled_10plus=sum(m.matched and m.ten_plus for m in ms),
        pck_photo_hits=sum(m.pck_hits for m in photo),
        pck_photo_total=sum(m.pck_total for m in photo),
        pck_drawn_hits=sum(m.pck_hits for m in drawn),
        pck_drawn_total=sum(m.pck_total for m in drawn),
        negative_images=int(negative),
        false_people=len(result.detections) if negative else 0,
    )


def counts_by_source(results: Iterable[ImageDetections]) -> dict[str, SourceCounts]:
    """Counts per source, sources in order of first appearance."""
    by_source: dict[str, SourceCounts] = {}
    for result in results:
        source = result.image.source
        by_source[source] = by_source.get(source, SourceCounts()) + image_counts(result)
    return by_source


def detection_metrics(results: Sequence[ImageDetections]) -> dict[str, Any]:
    """The detection figures of the report (PCK, recall, false people, figures on drawings)."""
    by_source = counts_by_source(results)
    total = pooled(by_source.values())
    drawn = [r for r in results if r.image.medium != "photo" and r.image.people]
    found_drawn = sum(1 for r in drawn if r.detections)
    return {
        "pck02": round(total.pck02 or 0.0, 4),
        "pck02_photo": round(total.pck02_photo or 0.0, 4),
        "pck02_drawn": round(total.pck02_drawn or 0.0, 4),
        "person_recall": round(total.recall or 0.0, 4),
        "annotated_people": total.people,
        "person_recall_10plus": round(total.recall_10plus or 0.0, 4),
        "annotated_people_10plus": total.people_10plus,
        "false_people_on_negatives": total.false_people,
        "negative_images": total.negative_images,
        "figure_found_drawn": round(found_drawn / len(drawn), 4) if drawn else 0.0,
        "drawn_images": len(drawn),
        "per_source": {source: c.figures() for source, c in by_source.items()},
    }
