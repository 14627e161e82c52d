"""Drawn figures: the keypoint reader before and after a change, in one run.

    python -m benchmarks.drawn_eval [--renders 150] [--clipart /usr/share/openclipart/png]
        [--evalset DIR] [--no-retrieval] [--skip-baseline] [--weights OTHER.pt ...]

Baseline: the `mediapipe` backend without the drawn-figure model (`drawn_model=False`:
BlazePose and the stick-figure reader, as before the model); now: the default backend;
model: the drawn-figure model alone (the `drawn` backend), on every image, as if each were
known to be a drawing (the default backend reads an image as a drawing only when it looks
like one, `pipelines.pose.human_evidence.looks_drawn`).

- `sticks_open` / `sticks_any`: stick figures of `benchmarks.stick_renders` (a renderer the
  model never trained on), limbs apart or crossing.
- `stick` / `mannequin` / `contour` / `bean` / `child` / `traced`: `pipelines.pose.drawn.render`'s
  styles on poses sampled with a seed no training run uses.
- `gt_<style>`: the evalset's annotated photo people (≥ 10 labelled joints) drawn in each
  style: poses of real people, none of them in the training data.
- `gt_stick_photographed`, `gt_mannequin_photographed`, `gt_contour_photographed`: those
  drawings as a phone photographs them (`benchmarks.sketch_pages`: light falling off across
  the page, warm paper, noise, blur, JPEG); `gt_stick_ruled`, `gt_stick_squared`,
  `gt_mannequin_ruled`, `gt_mannequin_squared`: drawn on a notebook's ruled or squared paper;
  `gt_stick_on_desk`, `gt_mannequin_on_desk`: photographed lying on a desk.
- `gt_photo_traced`: the same people traced from their photos (`benchmarks.traced`: the
  outline and the edges inside it, where the selfie segmentation model sees people);
  `gt_photo_traced_alone`: the person alone (the segmented regions at their joints, short
  bits of edge left out), as an artist tracing that person would.
- `gt_photo_cutout`: the same people cut out on white at their photo's resolution (those
  segmented regions, the rest of the square white), as a stock cut-out or a reference photo
  with its background removed is: photos, not drawings; `photo_cutout_as_drawing` is the
  share of them the medium decision (`pipelines.pose.medium.is_drawing`) takes for drawings;
  `gt_photo_square` and `photo_square_as_drawing`: the same squares of their photos, as they
  are (neighbours included: a reading is scored as the most prominent figure's).
With `--only NAME` (repeatable), only those sets of drawings are read (the clip art only when
`clipart` is named): a quick look at one style.
  For each: `found` (the share read as a figure) and `pck02` (PCK@0.2 of the trunk over the
  drawn joints of those read, the better of the two left/right assignments).
- `retrieval_top5_<style>`: the evalset indexed by the real job; each of those people whose
  photo has a figure in the index, drawn in the style, is the image query (mirror-invariant,
  as drawn queries are) of a service reading queries with the reader in question; the share
  whose photo comes back in the top 5.
- `query_found_<style>`: every such drawing sent to that service as `POST /search` would
  (issue 12's check): the share answered with a figure; `query_unsure_<style>`: the share of
  those answered with the `unsure_figure` warning; `query_pck02_sure_<style>` and
  `query_pck02_unsure_<style>`: PCK@0.2 of the query figures without and with it.
- Open Clip Art (`openclipart-png`): the share of `people/stickmen` in which a figure is
  read, of all of `people/` (drawn people of every kind, some only faces or hands), and of
  `animals/` and `food/` (nobody there) in which one is; for `people/`, `animals/` and
  `food/` also over the half the model never trained on (`_held_out`).
With `--weights OTHER.pt` (repeatable), other drawn-figure weights (a retraining) are read
as `now` and `model` are, in the same run (`now_OTHER`, `model_OTHER`): the keypoint
backends take them as `drawn_weights` and `weights`.
Last line: one JSON object (`benchmarks.report.print_report`).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.paths import evalset_dir
from benchmarks.pose_eval import evalset_service, index_evalset
from benchmarks.pose_eval_extra import count_people, extra_images
from benchmarks.pose_eval_matching import load_evalset
from benchmarks.report import print_report
from benchmarks.sketch_pages import (
    DESK_STYLES,
    PHOTOGRAPHED_STYLES,
    RULED_STYLES,
    on_desk,
    on_ruled_paper,
    photographed,
)
from benchmarks.stick_renders import StickRender, pck, render
from benchmarks.traced import cut_out_people, traced_people
from pipelines.catalog import keypoint_models
from pipelines.pose.drawn.figures import COCO_OF_JOINT, Figure, figure_from_keypoints, sample_figure
from pipelines.pose.drawn.render import STYLES
from pipelines.pose.drawn.render import render as draw
from pipelines.pose.drawn.training_data import HELD_OUT_HALF, is_training_file
from pipelines.pose.keypoints import KeypointDetector
from pipelines.pose.medium import is_drawing

CLIPART = Path("/usr/share/openclipart/png")
FOLDERS = (
    ("stickmen", "people/stickmen"),
    ("people", "people"),
    ("animals", "animals"),
    ("food", "food"),
)
TEST_SEED = 2027  # training renders use seeds ≥ 10 000 000 and validation 99
# Issue 12's goals for drawn figures: found, PCK@0.2 of those found, the photo in the top 5.
GOALS = {"goal_found": 0.9, "goal_pck02": 0.6, "goal_retrieval_top5": 0.6}


def drawn(figure: Figure, rng: np.random.Generator, style: str) -> tuple[Image.Image, StickRender]:
    """`figure` drawn in `style`, as an image and the (COCO-17) truth PCK is scored against."""
    grey, truth, trunk = draw(figure, rng, style)
    image = Image.fromarray((grey * 255).astype(np.uint8)).convert("RGB")
    coco = np.zeros((17, 3))
    coco[list(COCO_OF_JOINT)] = truth
    return image, StickRender(image, coco, trunk)


def score(
    detector: KeypointDetector, cases: list[tuple[Image.Image, StickRender]]
) -> dict[str, float]:
    read, scores = 0, []
    for image, truth in cases:
        people = detector.detect(image)
        if people:
            read += 1
            scores.append(pck(people[0].array().astype(np.float64), truth))
    mean = round(float(np.mean(scores)), 3) if scores else 0.0
    return {"found": round(read / max(len(cases), 1), 3), "pck02": mean}


def sampled_cases(count: int) -> dict[str, list[tuple[Image.Image, StickRender]]]:
    cases: dict[str, list[tuple[Image.Image, StickRender]]] = {}
    for kind in ("open", "any"):
        rng = np.random.default_rng(2026)
        cases[f"sticks_{kind}"] = [(r.image, r) for r in (render(rng, kind) for _ in range(count))]
    for style in STYLES:
        rng = np.random.default_rng(TEST_SEED)
        cases[style] = [drawn(sample_figure(rng), rng, style) for _ in range(count)]
    return cases


def evalset_people(evalset: Path) -> list[tuple[str, np.ndarray]]:
    """(image file, keypoints) of the evalset's photo people with ≥ 10 labelled joints."""
    return [
        (image.file, person.keypoints)
        for image in load_evalset(evalset)
        if image.medium == "photo"
        for person in image.people
        if int((person.keypoints[:, 2] > 0).sum()) >= 10
    ]


GtCase = tuple[str, Image.Image, StickRender]  # (evalset image, drawing, truth)


def gt_cases(people: list[tuple[str, np.ndarray]], style: str) -> list[GtCase]:
    rng = np.random.default_rng(TEST_SEED)
    out = []
    for file, keypoints in people:
        labelled = keypoints.copy()
        labelled[:, 2] = (labelled[:, 2] > 0).astype(float)
        figure = figure_from_keypoints(labelled, min_score=0.5)
        if figure is not None:
            image, truth = drawn(figure, rng, style)
            out.append((file, image, truth))
    return out


def _on_desk(
    image: Image.Image, truth: StickRender, rng: np.random.Generator
) -> tuple[Image.Image, StickRender]:
    """A drawing photographed lying on a desk (`benchmarks.sketch_pages.on_desk`), and its
    truth moved with it."""
    picture, corner = on_desk(image, rng)
    joints = truth.truth.copy()
    joints[:, :2] += corner
    return picture, StickRender(picture, joints, truth.trunk)


def clipart(detector: KeypointDetector, root: Path, limit: int) -> dict[str, float]:
    shares = {}
    for name, folder in FOLDERS:
        paths = extra_images(root / folder, limit)
        # Each image read once: the halves counted apart, the folder's share from both.
        halves = [
            count_people(detector, root / folder, [p for p in paths if is_training_file(p) == t])
            for t in (True, False)
        ]
        found, images = (sum(h.images_with_people for h in halves), sum(h.images for h in halves))
        shares[name] = round(found / max(images, 1), 3)
        if name in HELD_OUT_HALF:
            held = halves[1]
            shares[f"{name}_held_out"] = round(held.images_with_people / max(held.images, 1), 3)
    return shares


class Retrieval:
    """The evalset indexed by the real job (once, by the default reader: its photos read the
    same either way), queried with drawings by a service with given reader options."""

    def __init__(self, evalset: Path) -> None:
        from storage.store import Store

        self.home = Path(tempfile.mkdtemp(prefix="poseframer-drawn-eval-"))
        index_evalset(evalset, self.home)
        # The images with a figure in the index, as the indexing job read them.
        store = Store.at_home(self.home)
        with_people = {k.image_id for k in store.keypoints_for_batches(["evalset"]) if k.people}
        self.indexed = {
            Path(r.source_uri).name
            for r in store.images_for_batches(["evalset"])
            if r.image_id in with_people
        }

    def top5(
        self, backend: str, options: dict[str, Any], cases: dict[str, list[GtCase]]
    ) -> dict[str, float]:
        from serving.search_service import SearchQuery

        service = evalset_service(self.home, keypoint_model=backend, keypoint_model_options=options)
        out: dict[str, float] = {}
        for style, items in cases.items():
            hits = total = 0
            sure: list[float] = []  # PCK of the query readings without a warning
            unsure: list[float] = []  # and of those answered with `unsure_figure`
            for file, image, truth in items:
                data = io.BytesIO()
                image.save(data, "PNG")
                try:
                    outcome = service.search(
                        SearchQuery(image=data.getvalue(), k=5, one_per_image=True)
                    )
                except Exception:  # no figure read in the drawing: a miss
                    outcome = None
                if outcome is not None and outcome.query_pose is not None:
                    warned = any(w.code == "unsure_figure" for w in outcome.warnings)
                    score = pck(outcome.query_pose.array().astype(np.float64), truth)
                    (unsure if warned else sure).append(score)
                if Path(file).name not in self.indexed:
                    continue
                total += 1
                if outcome is not None:
                    names = [Path(str(h.row["source_uri"])).name for h in outcome.hits]
                    hits += Path(file).name in names
            name = style.removeprefix("gt_")
            out[f"retrieval_top5_{name}"] = round(hits / max(total, 1), 3)
            out["retrieval_people"] = total
            read = len(sure) + len(unsure)
            out[f"query_found_{name}"] = round(read / max(len(items), 1), 3)
            out[f"query_unsure_{name}"] = round(len(unsure) / max(read, 1), 3)
            for label, scores in (("sure", sure), ("unsure", unsure)):
                if scores:
                    out[f"query_pck02_{label}_{name}"] = round(float(np.mean(scores)), 3)
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=150)
    parser.add_argument("--clipart", type=Path, default=CLIPART)
    parser.add_argument("--limit", type=int, default=150, help="images per clip-art folder")
    parser.add_argument("--evalset", type=Path, default=None)
    parser.add_argument("--no-retrieval", action="store_true")
    parser.add_argument(
        "--weights",
        type=Path,
        action="append",
        default=[],
        help="other drawn-figure weights, read as `now` and `model` are (columns now_<name>, "
        "model_<name>): before and after a retraining in one run",
    )
    parser.add_argument("--skip-baseline", action="store_true", help="leave out `baseline`")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="read only these sets of drawings (e.g. gt_photo_traced; `clipart` for the clip art)",
    )
    args = parser.parse_args(argv)
    evalset = args.evalset or evalset_dir()
    has_evalset = evalset is not None and (evalset / "annotations.json").is_file()
    cases = sampled_cases(args.renders)
    gt: dict[str, list[GtCase]] = {}
    if has_evalset:
        people = evalset_people(evalset)
        gt = {f"gt_{style}": gt_cases(people, style) for style in STYLES}
        for style in PHOTOGRAPHED_STYLES:
            rng = np.random.default_rng(TEST_SEED)
            gt[f"gt_{style}_photographed"] = [
                (file, photographed(image, rng), truth) for file, image, truth in gt[f"gt_{style}"]
            ]
        for style in DESK_STYLES:
            rng = np.random.default_rng(TEST_SEED)
            gt[f"gt_{style}_on_desk"] = [
                (file, *_on_desk(image, truth, rng)) for file, image, truth in gt[f"gt_{style}"]
            ]
        for style in RULED_STYLES:
            for paper in ("ruled", "squared"):
                rng = np.random.default_rng(TEST_SEED)
                gt[f"gt_{style}_{paper}"] = [
                    (file, on_ruled_paper(image, rng, paper == "squared"), truth)
                    for file, image, truth in gt[f"gt_{style}"]
                ]
        gt["gt_photo_traced"], gt["gt_photo_traced_alone"] = traced_people(people, evalset)
        gt["gt_photo_square"], gt["gt_photo_cutout"] = cut_out_people(people, evalset)
    if args.only:
        cases = {k: v for k, v in cases.items() if k in args.only}
        gt = {k: v for k, v in gt.items() if k in args.only}
    read_clipart = args.clipart.is_dir() and (not args.only or "clipart" in args.only)
    ranker = Retrieval(evalset) if has_evalset and not args.no_retrieval else None
    result: dict[str, Any] = {}
    for name in ("photo_square", "photo_cutout"):
        if f"gt_{name}" in gt:
            photos = [image for _, image, _ in gt[f"gt_{name}"]]
            drawings = sum(is_drawing(image) for image in photos)
            result[f"{name}_as_drawing"] = round(drawings / max(len(photos), 1), 3)
    readers: list[tuple[str, str, dict[str, Any]]] = [
        ("baseline", "mediapipe", {"hands": False, "drawn_model": False}),
        ("now", "mediapipe", {"hands": False}),
        ("model", "drawn", {}),
    ][1 if args.skip_baseline else 0 :]
    for weights in args.weights:
        readers += [
            (f"now_{weights.stem}", "mediapipe", {"hands": False, "drawn_weights": str(weights)}),
            (f"model_{weights.stem}", "drawn", {"weights": str(weights)}),
        ]
    for label, backend, options in readers:
        detector = keypoint_models.load(backend, **options)
        started = time.perf_counter()
        everything = {**cases, **{k: [(i, t) for _, i, t in v] for k, v in gt.items()}}
        for name, items in everything.items():
            for key, value in score(detector, items).items():
                result[f"{label}_{name}_{key}"] = value
        if read_clipart:
            for key, value in clipart(detector, args.clipart, args.limit).items():
                result[f"{label}_clipart_{key}_found"] = value
        if ranker is not None:
            for key, value in ranker.top5(backend, options, gt).items():
                result[f"{label}_{key}"] = value
        result[f"{label}_seconds"] = round(time.perf_counter() - started, 1)
    result.update(GOALS)
    result["goal_stickmen_found"] = 0.9
    result["goal_animals_found"] = 0.1
    result["goal_food_found"] = 0.05
    print_report(result, width=12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
