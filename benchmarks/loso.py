"""Leave-one-source-out choice of keypoint-model settings on the evalset.

    python -m benchmarks.loso [--grid default] [--evalset ../shared/data/evalset]
        [--extra-negatives DIR ...] [--extra-limit 150] [--darken SPEC ...]

Settings tuned on the evalset and reported on it look better than they will on unseen
images. Here each variant of a grid (`GRIDS`: option sets of
`keypoint_models.load("mediapipe", **options)`) runs once over every evalset image (its
detections are kept in memory, one run per distinct option set); then, for each source
dataset in turn (`benchmarks.pose_eval.source_name`), the variant is chosen on all the OTHER
sources pooled and its figures are reported on the source left out. The pooled figures of
the left-out sources are the honest estimate of what the choice does on an unseen source;
the first variant of the grid (the backend's defaults) on every source is printed beside
them as the baseline.

The objective a variant maximises on the training sources (`objective`):

    recall_10plus + PCK@0.2 (photos) − 0.1 × false people per negative image

recall over the annotated people with at least 10 labelled joints, PCK@0.2 torso of matched
people in photos, and the detections on images with nobody, each pooled over the training
sources (a term with nothing to measure counts 0). A false person costs 0.1: one on every
negative image weighs as much as 10 points of recall. Ties go to the earlier variant in the
grid, so the defaults win unless something does strictly better.

`--extra-negatives DIR` (e.g. openclipart's `animals/`, `food/`) adds folders of images with
nobody as training data for every choice (never held out: they are not evalset sources), at
most `--extra-limit` images each, drawn with a fixed seed.

`--darken SPEC` (`gamma` or `exposure:K`, as `benchmarks.dim_eval` darkens: repeatable)
reads every image, the extra folders' too, darkened that way instead, with each image's
seed; given several times, each source's counts are summed over the darkenings, so one
choice is made for all of them (the `lift` grid: how the reader's brightened copy of a dark
photo is smoothed).

Every variant runs with `hands=False`: hands only add extras, the COCO-17 joints measured
here are the same, and the run is quicker.

Prints the grid, one row per held-out source, the pooled held-out figures against the
baseline, and as its last line one JSON object.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.dim_eval import DARKENINGS, Darkening, darkening
from benchmarks.pose_eval import DEFAULT_EVALSET, format_cell, machine
from benchmarks.pose_eval_extra import (
    DEFAULT_EXTRA_LIMIT,
    count_people,
    extra_images,
    extra_label,
)
from benchmarks.pose_eval_matching import (
    ImageDetections,
    SourceCounts,
    counts_by_source,
    detect_pictures,
    load_evalset,
    pooled,
    rounded,
)
from pipelines.catalog import keypoint_models
from pipelines.images import decode_image

BACKEND = "mediapipe"
# Options every variant shares (see the module docstring).
BASE_OPTIONS: dict[str, Any] = {"hands": False}
FALSE_PEOPLE_WEIGHT = 0.1
OBJECTIVE = "recall_10plus + pck02_photo − 0.1 × false people per negative image"
EXTRA_PREFIX = "extra:"


@dataclass(frozen=True)
class Variant:
    """A named option set of the keypoint backend."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


# The backend's defaults come first: the baseline, and the winner of ties. Extend a grid (or
# add one) with any constructor option of the backend; unknown options stop the run.
DEFAULT_GRID: list[Variant] = [
    Variant("defaults"),
    Variant("pose_score_0.3", {"min_pose_score": 0.3}),
    Variant("pose_score_0.5", {"min_pose_score": 0.5}),
    Variant("presence_0.6", {"min_person_presence": 0.6}),
    Variant("person_score_0.3", {"min_person_score": 0.3}),
    Variant("tiles_1", {"tiles": 1}),
]
THRESHOLD_GRID: list[Variant] = [
    Variant("defaults"),
    Variant("presence_0.5", {"min_person_presence": 0.5}),
    Variant("presence_0.9", {"min_person_presence": 0.9}),
    Variant("pose_score_0.3", {"min_pose_score": 0.3}),
    Variant("loose", {"min_pose_score": 0.3, "min_person_presence": 0.6}),
    Variant("strict", {"min_pose_score": 0.5, "min_person_presence": 0.9}),
]
DETECTOR_GRID: list[Variant] = [
    Variant("defaults"),
    Variant("person_score_0.3", {"min_person_score": 0.3}),
    Variant("person_score_0.5", {"min_person_score": 0.5}),
    Variant("tiles_1", {"tiles": 1}),
    Variant("tiles_3", {"tiles": 3}),
    Variant("rounds_1", {"search_rounds": 1}),
]
# Accepting a person on human evidence (a face, or a clearly human body, and the landmark
# model's presence where it reads the person again from their own joints, at the bar the
# first reading met or at MediaPipe's 0.5); 0 turns it off.
EVIDENCE_GRID: list[Variant] = [
    Variant("defaults"),
    Variant("evidence_off", {"min_body_evidence": 0.0}),
    Variant("reread_off", {"reread": False}),
    Variant("reread_presence_0.5", {"min_reread_presence": 0.5}),
    Variant("face_0.3", {"min_face_evidence": 0.3}),
    Variant("face_0.7", {"min_face_evidence": 0.7}),
    Variant("body_0.7", {"min_body_evidence": 0.7}),
    Variant("body_0.95", {"min_body_evidence": 0.95}),
]
# Where people are proposed besides the person detector's first grid: the finer grid where a
# person found spans less than a share of the image's height (0.3; 0.6 and 1, any person, are
# chosen here on one COCO photo, and read parts of large people: `people_search.FINE_BELOW`),
# and the full-range face detector's faces.
PROPOSAL_GRID: list[Variant] = [
    Variant("defaults"),
    Variant("fine_below_0.6", {"fine_below": 0.6}),
    Variant("fine_below_1", {"fine_below": 1.0}),
    Variant("faces_off", {"face_proposals": False}),
    Variant("fine_off", {"fine_tiles": False}),
    Variant("both_off", {"fine_tiles": False, "face_proposals": False}),
]
# How the brightened copy of a dark photo is smoothed before its lift (`low_light`), chosen
# on the evalset darkened (`--darken`).
LIFT_GRID: list[Variant] = [
    Variant("defaults"),
    Variant("smoothing_0", {"lift_smoothing": 0.0}),
    Variant("smoothing_0.3", {"lift_smoothing": 0.3}),
    Variant("smoothing_1", {"lift_smoothing": 1.0}),
]
GRIDS: dict[str, list[Variant]] = {
    "default": DEFAULT_GRID,
    "thresholds": THRESHOLD_GRID,
    "detector": DETECTOR_GRID,
    "evidence": EVIDENCE_GRID,
    "proposals": PROPOSAL_GRID,
    "lift": LIFT_GRID,
}

# variant name → source → counts
Table = Mapping[str, Mapping[str, SourceCounts]]


def objective(counts: SourceCounts) -> float:
    """What a variant maximises on the training sources (module docstring)."""
    return (
        (counts.recall_10plus or 0.0)
        + (counts.pck02_photo or 0.0)
        - FALSE_PEOPLE_WEIGHT * (counts.false_per_negative or 0.0)
    )


def training_counts(by_source: Mapping[str, SourceCounts], held_out: str) -> SourceCounts:
    """Every source's counts pooled, except the held-out source's."""
    return pooled(c for source, c in by_source.items() if source != held_out)


def choose_variant(table: Table, held_out: str) -> tuple[str, float]:
    """The variant with the best objective on every source but `held_out` (the first of
    equals, in the table's order), and that objective. The held-out source's counts are
    never read."""
    best: tuple[str, float] | None = None
    for name, by_source in table.items():
        score = objective(training_counts(by_source, held_out))
        if best is None or score > best[1] + 1e-12:
            best = (name, score)
    if best is None:
        raise ValueError("no variants to choose from")
    return best


@dataclass(frozen=True)
class HeldOut:
    """One leave-one-source-out fold: the variant chosen without `source`, and its counts
    on `source`."""

    source: str
    chosen: str
    training_objective: float
    counts: SourceCounts


def leave_one_source_out(table: Table, sources: Iterable[str]) -> list[HeldOut]:
    """One fold per source in `sources` (sources of the table not listed there are training
    data in every fold)."""
    folds = []
    for source in sources:
        chosen, score = choose_variant(table, source)
        counts = table[chosen].get(source, SourceCounts())
        folds.append(HeldOut(source, chosen, score, counts))
    return folds


def check_options(grid: Sequence[Variant]) -> None:
    """Stop with the valid names when a variant sets an option the backend does not have."""
    parameters = inspect.signature(keypoint_models.backend_class(BACKEND)).parameters
    valid = [name for name in parameters if name != "self"]
    for variant in grid:
        unknown = sorted((set(variant.options) | set(BASE_OPTIONS)) - set(valid))
        if unknown:
            raise SystemExit(
                f"variant {variant.name!r}: the {BACKEND} backend has no option "
                f"{', '.join(unknown)}; it has {', '.join(valid)}"
            )


def figures(counts: SourceCounts) -> dict[str, Any]:
    return {
        "images": counts.images,
        "people": counts.people,
        "recalled": counts.recalled,
        "recall": rounded(counts.recall),
        "people_10plus": counts.people_10plus,
        "recall_10plus": rounded(counts.recall_10plus),
        "pck02": rounded(counts.pck02),
        "pck02_photo": rounded(counts.pck02_photo),
        "negative_images": counts.negative_images,
        "false_people": counts.false_people,
    }


def run_grid(
    grid: Sequence[Variant],
    evalset: Path,
    extra_negatives: Sequence[Path] = (),
    extra_limit: int = DEFAULT_EXTRA_LIMIT,
    darkenings: Sequence[str] = (),
) -> tuple[dict[str, dict[str, SourceCounts]], dict[str, dict[str, Any]]]:
    """Counts per variant and source (extra folders as `extra:<name>` sources), and each
    variant's model id and time. Identical option sets run once. With `darkenings`, every
    image is read once per darkening and a source's counts are their sum."""
    images = load_evalset(evalset)
    pictures = [decode_image((evalset / image.file).read_bytes())[0] for image in images]
    prepares: list[Darkening | None] = [darkening(spec) for spec in darkenings] or [None]
    views = [
        (prepare, pictures if prepare is None else [prepare(p, i) for i, p in enumerate(pictures)])
        for prepare in prepares
    ]
    extras = {folder: extra_images(folder, extra_limit) for folder in extra_negatives}
    table: dict[str, dict[str, SourceCounts]] = {}
    runs: dict[str, dict[str, Any]] = {}
    done: dict[str, str] = {}  # model id → the variant that ran it
    for variant in grid:
        detector = keypoint_models.load(BACKEND, **{**BASE_OPTIONS, **variant.options})
        if detector.model_id in done:
            table[variant.name] = table[done[detector.model_id]]
            runs[variant.name] = {
                **runs[done[detector.model_id]],
                "same_as": done[detector.model_id],
            }
            continue
        detector.load()
        start = time.perf_counter()
        results: list[ImageDetections] = []
        by_source: dict[str, SourceCounts] = {}
        for prepare, view in views:
            read = detect_pictures(detector, zip(images, view, strict=True))
            results += read
            for source, counts in counts_by_source(read).items():
                by_source[source] = by_source.get(source, SourceCounts()) + counts
            for folder, paths in extras.items():
                found = count_people(detector, folder, paths, prepare)
                name = f"{EXTRA_PREFIX}{extra_label(folder, extra_negatives)}"
                by_source[name] = by_source.get(name, SourceCounts()) + SourceCounts(
                    images=found.images, negative_images=found.images, false_people=found.people
                )
        elapsed = time.perf_counter() - start
        table[variant.name] = by_source
        done[detector.model_id] = variant.name
        runs[variant.name] = {
            "options": dict(variant.options),
            "keypoint_model": detector.model_id,
            "seconds_per_image": round(
                sum(r.seconds for r in results) / len(results) if results else 0.0, 4
            ),
            "seconds": round(elapsed, 1),
        }
        print(f"ran {variant.name}: {elapsed:.1f} s", file=sys.stderr, flush=True)
    return table, runs


def report(
    table: Table, runs: Mapping[str, Mapping[str, Any]], grid_name: str, seconds: float
) -> dict[str, Any]:
    sources = [s for s in next(iter(table.values())) if not s.startswith(EXTRA_PREFIX)]
    folds = leave_one_source_out(table, sources)
    baseline = next(iter(table))
    held_out = pooled(f.counts for f in folds)
    base = pooled(c for s, c in table[baseline].items() if s in sources)
    chosen_counts: dict[str, int] = {}
    for fold in folds:
        chosen_counts[fold.chosen] = chosen_counts.get(fold.chosen, 0) + 1
    result: dict[str, Any] = {}
    for prefix, counts in (("loso", held_out), ("baseline", base)):
        result |= {
            f"{prefix}_recall": rounded(counts.recall),
            f"{prefix}_recall_10plus": rounded(counts.recall_10plus),
            f"{prefix}_pck02": rounded(counts.pck02),
            f"{prefix}_pck02_photo": rounded(counts.pck02_photo),
            f"{prefix}_false_people": counts.false_people,
        }
    result |= {
        "people": held_out.people,
        "people_10plus": held_out.people_10plus,
        "negative_images": held_out.negative_images,
        "images": held_out.images,
        "baseline_variant": baseline,
        "objective": OBJECTIVE,
        "grid": grid_name,
        "chosen": chosen_counts,
        "per_source": {
            f.source: {
                "chosen": f.chosen,
                "training_objective": round(f.training_objective, 4),
                **figures(f.counts),
                "baseline_recall_10plus": rounded(
                    table[baseline].get(f.source, SourceCounts()).recall_10plus
                ),
                "baseline_pck02": rounded(table[baseline].get(f.source, SourceCounts()).pck02),
                "baseline_false_people": table[baseline].get(f.source, SourceCounts()).false_people,
            }
            for f in folds
        },
        "per_variant": {
            name: {
                **runs[name],
                "objective_all": round(objective(pooled(by_source.values())), 4),
                **figures(pooled(c for s, c in by_source.items() if s in sources)),
                **{
                    f"false_people_{s}": c.false_people
                    for s, c in by_source.items()
                    if s.startswith(EXTRA_PREFIX)
                },
            }
            for name, by_source in table.items()
        },
        "seconds": round(seconds, 1),
        "machine": machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    return result


def print_tables(result: Mapping[str, Any]) -> None:
    print(f"{'variant':<18}{'options':<48}{'objective':>10}{'s/image':>9}")
    for name, v in result["per_variant"].items():
        options = json.dumps(v.get("options", {}))
        same = f" (= {v['same_as']})" if "same_as" in v else ""
        print(
            f"{name:<18}{(options + same)[:47]:<48}{v['objective_all']:>10.3f}"
            f"{v['seconds_per_image']:>9.3f}"
        )
    print()
    columns = {
        "people": "people",
        "recall": "recall",
        "recall_10plus": "recall_10+",
        "pck02": "pck02",
        "false_people": "false_people",
        "baseline_recall_10plus": "base_recall_10+",
        "baseline_pck02": "base_pck02",
    }
    print(f"{'held out':<12}{'chosen':<18}" + "".join(f"{c:>16}" for c in columns.values()))
    for source, row in result["per_source"].items():
        print(
            f"{source:<12}{row['chosen']:<18}"
            + "".join(format_cell(row.get(c), 16) for c in columns)
        )
    print()
    print(f"{'metric':<28}{'value':>12}")
    for key, value in result.items():
        if isinstance(value, int | float | str) and key != "objective":
            print(f"{key:<28}{value!s:>12}")
    print(f"objective: {result['objective']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=sorted(GRIDS), default="default")
    parser.add_argument("--evalset", type=Path, default=DEFAULT_EVALSET)
    parser.add_argument(
        "--extra-negatives",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of images with nobody, training data for every choice (repeatable)",
    )
    parser.add_argument("--extra-limit", type=int, default=DEFAULT_EXTRA_LIMIT, metavar="N")
    parser.add_argument(
        "--darken",
        action="append",
        default=[],
        metavar="SPEC",
        help=f"read the images darkened: {DARKENINGS} (repeatable)",
    )
    args = parser.parse_args(argv)
    for spec in args.darken:
        try:
            darkening(spec)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if not (args.evalset / "annotations.json").is_file():
        print(f"error: no evalset at {args.evalset}", file=sys.stderr)
        return 2
    for folder in args.extra_negatives:
        if not folder.is_dir():
            print(f"error: no folder {folder}", file=sys.stderr)
            return 2
    grid = GRIDS[args.grid]
    check_options(grid)
    start = time.perf_counter()
    table, runs = run_grid(grid, args.evalset, args.extra_negatives, args.extra_limit, args.darken)
    result = report(table, runs, args.grid, time.perf_counter() - start)
    result["darkenings"] = list(args.darken)
    print_tables(result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
