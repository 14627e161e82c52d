"""Drawings from a second renderer: does the drawn-figure reader carry over to drawings made
by other hands than the ones it learnt from?

    python -m benchmarks.other_renderer [--evalset DIR] [--sampled 60] [--no-retrieval]

The drawn-figure model learnt from `pipelines.pose.drawn.render`'s drawings, and
`benchmarks.drawn_eval` scores it on that renderer's styles (with poses and a seed no training
run used). Artists' drawings and the drawings of whoever checks this project come from
elsewhere, so this draws poses with a renderer that shares no code with the training one:
PIL's lines and ellipses on a blank canvas, as a quick drawing program or script would.

- `stick`: a round head, a wobbly line down the spine, a bar across the shoulders and one
  across the hips, arms and legs from their ends.
- `stick_neck`: the same without the bars: the arms start at the neck and the legs at one
  point of the pelvis, so the shoulders and hips are not drawn where the pose has them (PCK
  still scores them there: what a reader can do when a drawing leaves them out).
- `mannequin`: a wooden mannequin's construction drawing in outline: an oval head, chest and
  pelvis ovals, a capsule for each limb segment, a circle at each elbow and knee.
- `stick_<variant>`: `stick` as other programs, pens and scans give it: 1-pixel lines on a
  1024-pixel canvas (`thin`), 12-pixel lines (`thick`), blue ink (`blue`), light pencil grey
  (`pencil`), a 256-pixel canvas (`small_canvas`), the figure a fifth of the canvas
  (`small_figure`), cream paper (`cream`), JPEG at quality 30 (`jpeg`), black strokes on a
  transparent PNG (`transparent`).
- `stick_upside_down`, `mannequin_upside_down`: the poses turned over (half a turn: a
  handstand, a dive), as those two styles draw them. `found` is the index's reading; sent as
  queries (`query_found_<style>`), the service reads them upside down too
  (`DrawnFigureReader.for_queries`).
- `stick_lying`, `mannequin_lying`: the poses turned a quarter, either way (a figure lying
  on its side, a reclining pose seen from above); the query reader reads them turned too.

Poses: the evalset's photo people with all 12 limb joints labelled (the photo whose pose was
drawn must come back: `retrieval_top5_<style>`, as in `benchmarks.drawn_eval`), and
`--sampled` poses from `pipelines.pose.drawn.figures.sample_figure` at `drawn_eval`'s test
seed (no training run uses it). The head is drawn at the pose's nose where it is labelled,
above the shoulders otherwise; PCK's nose is the head's centre. Each image goes through
`pipelines.images.decode_image`, as an upload does.

Readers, in the same run: `baseline` (BlazePose and the stick-figure reader, without the
drawn-figure model) and `now` (the default reader). For each style: `found` (the share read
as a figure) and `pck02` (PCK@0.2 of the trunk over the drawn joints, the better of the two
left/right assignments). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import io
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from benchmarks.drawn_eval import GOALS, TEST_SEED, GtCase, Retrieval, evalset_people
from benchmarks.paths import evalset_dir
from benchmarks.report import print_report
from benchmarks.stick_renders import StickRender, pck
from pipelines.catalog import keypoint_models
from pipelines.images import decode_image
from pipelines.pose.drawn.figures import COCO_OF_JOINT, sample_figure
from pipelines.records import COCO17_INDEX

LIMB_JOINTS = tuple(
    f"{side}_{part}"
    for side in ("left", "right")
    for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
)
CANVAS = 512
Colour = tuple[int, int, int]


def _point(xy: np.ndarray, name: str) -> np.ndarray:
    return xy[COCO17_INDEX[name]]


class Canvas:
    """A drawing in progress: `keypoints` (COCO-17 x, y, labelled) laid out on a blank canvas,
    the figure's height `fill` of it, with a pen of `width` pixels and a hand's `wobble`."""

    def __init__(
        self,
        keypoints: np.ndarray,
        rng: np.random.Generator,
        size: int = CANVAS,
        fill: float = 0.7,
        width: int | None = None,
        ink: Colour = (0, 0, 0),
        paper: Colour = (255, 255, 255),
    ) -> None:
        self.rng = rng
        self.image = Image.new("RGB", (size, size), paper)
        self.draw = ImageDraw.Draw(self.image)
        self.ink = ink
        self.width = width if width is not None else int(rng.integers(2, 7))
        labelled = keypoints[:, 2] > 0
        low, high = keypoints[labelled, :2].min(0), keypoints[labelled, :2].max(0)
        scale = size * fill / max(float((high - low).max()), 1e-6)
        self.xy = (keypoints[:, :2] - (low + high) / 2) * scale + size / 2
        self.wobble = float(rng.uniform(0.5, 3.0)) * size / CANVAS
        self.shoulders = (_point(self.xy, "left_shoulder") + _point(self.xy, "right_shoulder")) / 2
        self.hips = (_point(self.xy, "left_hip") + _point(self.xy, "right_hip")) / 2
        self.trunk = float(np.linalg.norm(self.shoulders - self.hips))
        up = (self.shoulders - self.hips) / max(self.trunk, 1e-6)
        self.head_radius = 0.22 * self.trunk
        nose = keypoints[COCO17_INDEX["nose"]]
        self.head = (
            self.xy[COCO17_INDEX["nose"]]
            if nose[2] > 0
            else self.shoulders + up * self.head_radius * 1.3
        )

    def line(self, *points: np.ndarray) -> None:
        """A hand-drawn polyline: each segment bends in a slow wave of the hand's wobble."""
        for a, b in itertools.pairwise(points):
            length = float(np.linalg.norm(b - a))
            steps = max(2, int(length / 6))
            t = np.linspace(0.0, 1.0, steps)[:, None]
            normal = np.array([a[1] - b[1], b[0] - a[0]]) / max(length, 1e-6)
            wave = self.wobble * np.sin(
                t[:, 0] * self.rng.uniform(2, 5) + self.rng.uniform(0, 2 * np.pi)
            )
            path = a * (1 - t) + b * t + normal * wave[:, None]
            self.draw.line([tuple(p) for p in path], fill=self.ink, width=self.width, joint="curve")

    def oval(self, centre: np.ndarray, rx: float, ry: float) -> None:
        x, y = float(centre[0]), float(centre[1])
        self.draw.ellipse([x - rx, y - ry, x + rx, y + ry], outline=self.ink, width=self.width)

    def capsule(self, a: np.ndarray, b: np.ndarray, radius: float) -> None:
        length = float(np.linalg.norm(b - a))
        side = np.array([a[1] - b[1], b[0] - a[0]]) / max(length, 1e-6) * radius
        for offset in (side, -side):
            self.draw.line([tuple(a + offset), tuple(b + offset)], fill=self.ink, width=self.width)
        for end in (a, b):
            self.oval(end, radius, radius)

    def truth(self) -> StickRender:
        """The pose drawn (the limbs' joints where the pose has them, the nose at the head's
        centre), with the trunk as PCK's unit."""
        joints = np.zeros((17, 3))
        for name in LIMB_JOINTS:
            joints[COCO17_INDEX[name]] = (*_point(self.xy, name), 1.0)
        joints[COCO17_INDEX["nose"]] = (*self.head, 1.0)
        return StickRender(self.image, joints, self.trunk)


def stick(canvas: Canvas, bars: bool = True) -> None:
    xy, r = canvas.xy, canvas.head_radius
    canvas.oval(canvas.head, r, r)
    neck = canvas.head + (canvas.shoulders - canvas.head) * r / max(
        float(np.linalg.norm(canvas.shoulders - canvas.head)), 1e-6
    )
    canvas.line(neck, canvas.shoulders, canvas.hips)
    if bars:
        canvas.line(_point(xy, "left_shoulder"), _point(xy, "right_shoulder"))
        canvas.line(_point(xy, "left_hip"), _point(xy, "right_hip"))
    for side in ("left", "right"):
        shoulder = _point(xy, f"{side}_shoulder") if bars else canvas.shoulders
        hip = _point(xy, f"{side}_hip") if bars else canvas.hips
        canvas.line(shoulder, _point(xy, f"{side}_elbow"), _point(xy, f"{side}_wrist"))
        canvas.line(hip, _point(xy, f"{side}_knee"), _point(xy, f"{side}_ankle"))


def mannequin(canvas: Canvas) -> None:
    xy, trunk = canvas.xy, canvas.trunk
    up = (canvas.shoulders - canvas.hips) / max(trunk, 1e-6)
    canvas.oval(canvas.head, canvas.head_radius * 0.85, canvas.head_radius)
    canvas.oval(canvas.shoulders - up * trunk * 0.3, trunk * 0.3, trunk * 0.32)
    canvas.oval(canvas.hips + up * trunk * 0.05, trunk * 0.25, trunk * 0.17)
    radius = 0.07 * trunk
    for side in ("left", "right"):
        for a, b, girth in (
            ("shoulder", "elbow", 1.0),
            ("elbow", "wrist", 0.8),
            ("hip", "knee", 1.4),
            ("knee", "ankle", 1.1),
        ):
            canvas.capsule(_point(xy, f"{side}_{a}"), _point(xy, f"{side}_{b}"), radius * girth)
        for joint in ("elbow", "knee"):
            canvas.oval(_point(xy, f"{side}_{joint}"), radius, radius)


STYLES: dict[str, tuple[Callable[[Canvas], None], dict[str, Any]]] = {
    "stick": (stick, {}),
    "stick_neck": (lambda canvas: stick(canvas, bars=False), {}),
    "mannequin": (mannequin, {}),
    "stick_thin": (stick, {"size": 1024, "width": 1}),
    "stick_thick": (stick, {"width": 12}),
    "stick_blue": (stick, {"ink": (20, 40, 200)}),
    "stick_pencil": (stick, {"ink": (150, 150, 150)}),
    "stick_small_canvas": (stick, {"size": 256, "width": 2}),
    "stick_small_figure": (stick, {"fill": 0.2}),
    "stick_cream": (stick, {"paper": (245, 235, 210)}),
    "stick_jpeg": (stick, {"save": "jpeg"}),
    "stick_transparent": (stick, {"save": "transparent"}),
    "stick_upside_down": (stick, {"quarters": 2}),
    "mannequin_upside_down": (mannequin, {"quarters": 2}),
    "stick_lying": (stick, {"quarters": "either"}),
    "mannequin_lying": (mannequin, {"quarters": "either"}),
}


def drawing(
    keypoints: np.ndarray, style: str, rng: np.random.Generator
) -> tuple[bytes, StickRender]:
    """`keypoints` (COCO-17, the 12 limb joints labelled) drawn in `style`, as the bytes an
    upload would carry, and the pose drawn."""
    draw, options = STYLES[style]
    options = dict(options)
    save = options.pop("save", "png")
    quarters = options.pop("quarters", 0)  # 2: a handstand; a quarter: a figure lying down
    if quarters == "either":
        quarters = 1 if rng.random() < 0.5 else 3
    keypoints = keypoints.copy()
    for _ in range(quarters):  # a quarter turn: (x, y) → (y, −x)
        keypoints[:, :2] = np.column_stack([keypoints[:, 1], -keypoints[:, 0]])
    canvas = Canvas(keypoints, rng, **options)
    draw(canvas)
    truth = canvas.truth()
    data = io.BytesIO()
    if save == "jpeg":
        canvas.image.save(data, "JPEG", quality=30)
    elif save == "transparent":
        alpha = 255 - np.asarray(canvas.image.convert("L"))
        strokes = np.zeros((*alpha.shape, 4), dtype=np.uint8)
        strokes[..., 3] = alpha
        Image.fromarray(strokes).save(data, "PNG")
    else:
        canvas.image.save(data, "PNG")
    return data.getvalue(), truth


# The styles whose drawings of the evalset's people query the index (the variants of `stick`
# are only read, which keeps a run near five minutes). The upside-down and lying drawings are
# sent as queries for `query_found` and their PCK; their top 5 is not reported: the photo
# shows the pose upright, and a pose search tells a handstand from a stand.
RANKED = (
    "gt_stick",
    "gt_stick_neck",
    "gt_mannequin",
    "gt_stick_upside_down",
    "gt_mannequin_upside_down",
    "gt_stick_lying",
    "gt_mannequin_lying",
)


TURNED = ("_upside_down", "_lying")


def drawable(keypoints: np.ndarray) -> bool:
    return all(keypoints[COCO17_INDEX[name], 2] > 0 for name in LIMB_JOINTS)


def sampled_poses(count: int) -> list[np.ndarray]:
    """`count` poses of `sample_figure` at the held-out seed, as COCO-17 keypoints."""
    rng = np.random.default_rng(TEST_SEED)
    poses = []
    for _ in range(count):
        keypoints = np.zeros((17, 3))
        keypoints[list(COCO_OF_JOINT)] = sample_figure(rng).truth()
        poses.append(keypoints)
    return poses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evalset", type=Path, default=None)
    parser.add_argument("--sampled", type=int, default=60)
    parser.add_argument("--no-retrieval", action="store_true")
    args = parser.parse_args(argv)
    evalset = args.evalset or evalset_dir()
    has_evalset = (evalset / "annotations.json").is_file()
    people = [(f, k) for f, k in evalset_people(evalset) if drawable(k)] if has_evalset else []
    poses = [k for _, k in people] + [k for k in sampled_poses(args.sampled) if drawable(k)]
    if not poses:
        print("error: no poses (no evalset and --sampled 0)", file=sys.stderr)
        return 2
    cases: dict[str, list[tuple[Image.Image, StickRender]]] = {}
    gt: dict[str, list[GtCase]] = {}
    for style in STYLES:
        rng = np.random.default_rng(TEST_SEED)
        drawn = [drawing(k, style, rng) for k in poses]
        cases[style] = [(decode_image(data)[0], truth) for data, truth in drawn]
        gt[f"gt_{style}"] = [
            (file, image, truth)
            for (file, _), (image, truth) in zip(people, cases[style], strict=False)
        ]
    result: dict[str, Any] = {"poses": len(poses), "evalset_poses": len(people)}
    ranker = Retrieval(evalset) if has_evalset and not args.no_retrieval else None
    readers = [("baseline", {"hands": False, "drawn_model": False}), ("now", {"hands": False})]
    for label, options in readers:
        detector = keypoint_models.load("mediapipe", **options)
        started = time.perf_counter()
        for style, items in cases.items():
            read = [(detector.detect(image), truth) for image, truth in items]
            scores = [pck(people[0].array().astype(np.float64), t) for people, t in read if people]
            result[f"{label}_{style}_found"] = round(len(scores) / len(items), 3)
            result[f"{label}_{style}_pck02"] = round(float(np.mean(scores)), 3) if scores else 0.0
        if ranker is not None:
            for key, value in ranker.top5("mediapipe", options, {k: gt[k] for k in RANKED}).items():
                if not (key.startswith("retrieval_top5_") and key.endswith(TURNED)):
                    result[f"{label}_{key}"] = value
        result[f"{label}_seconds"] = round(time.perf_counter() - started, 1)
    result.update(GOALS)
    print_report(result, width=12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
