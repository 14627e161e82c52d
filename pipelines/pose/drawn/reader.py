"""The drawn-figure reader: the trained model of `pipelines.pose.drawn.model` on a drawing.

It answers two questions about a drawing: whether it shows a human figure at all (the
model's figure output, trained against drawn animals, food, objects and scribbles), and
where that figure's joints are. The figure output alone is sure of shapes it never saw
(letters, hats, chess pawns, ASL hands, `benchmarks.drawn_negatives`), so a figure must also be
read alike from the drawing's mirror image: at least `MIN_AGREEMENT` of its joints where the
mirror image's reading, mapped back, puts them. Where the model truly reads a figure its
joints move with the drawing; on a shape that is no figure they are guesses that do not.
A figure read lying down (a reclining pose, a stick man on his back) is read again turned
upright (`upright_turns`): the model learnt figures upright. A query drawing it sees no
figure in is read again turned (a handstand, a figure lying down), where a figure must pass
a higher bar.
The keypoint backend asks the first of every drawing (a figure BlazePose reads in a drawing
the model calls "nobody" is dropped: drawn animals are what BlazePose mistakes most;
`pipelines.pose.medium` asks it of grainy pages) and takes the second as the drawing's figure
unless BlazePose found several people or a clear one.

The committed weights (`weights/drawn-v1.pt`, fp16, ~4 MB) are rebuilt by `make
drawn-model` (`python -m pipelines.pose.drawn.train`, see there for the data recipe and seed).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipelines.images import luminance
from pipelines.pose.drawn.figures import COCO_OF_JOINT, FLIP, JOINTS
from pipelines.pose.drawn.ink import decode, ink_crop, ink_groups, paper_map, sheet_of
from pipelines.pose.figure_geometry import pck_either_side
from pipelines.records import COCO17_INDEX, NUM_JOINTS, Pose

WEIGHTS = Path(__file__).parent / "weights" / "drawn-v1.pt"
MIN_FIGURE = 0.5  # the figure probability a drawing needs to hold a person
MAX_SIDE = 640  # drawings are read at most this large: the model sees 128 pixels
# Figures drawn side by side: ink groups further apart than this share of the ink's extent
# are read apart, when each is at least FIGURE_SIZE of the largest (a head drawn apart from
# its body, a prop or a speck is no second figure).
FIGURE_GAP = 0.04
FIGURE_SIZE = 0.4
# A figure must be read the same from the drawing's mirror image: at least this share of its
# joints within AGREEMENT_RADIUS of the figure's size of where the mirrored reading puts them
# (the better of the two left/right assignments: a drawing's sides are ambiguous). The model's
# figure output is sure of letters, hats and chess pawns it never saw; its joints there are
# guesses that move when the drawing is mirrored (`benchmarks.drawn_negatives`; what it
# costs the renders and the clip art: `benchmarks.drawn_eval`). A majority of the 13 joints,
# and PCK@0.2's radius: the project's conventions, not searched.
MIN_AGREEMENT = 0.5
AGREEMENT_RADIUS = 0.2
# A figure lying down or upside down: the model learnt figures upright (under a camera's
# small roll), and on a figure lying down it mostly still sees a figure, with its joints
# astray. So a figure is read again turned by the quarter turns (numpy's: 1 counter-
# clockwise, 3 clockwise, 2 half) that bring the first reading's feet below its head
# (`upright_turns`), as MediaPipe turns a person's region upright by the person's own axis.
# Only figures are turned: a drawing read as no figure is not asked again turned (a drawn
# dog turned on end reads as a figure).
# But in a query (`for_queries`), turned by any turn: a figure drawn upside down (a handstand,
# a cartwheel, a dive) or lying on its side (a reclining pose, a figure bent double) is what
# the model most often sees no figure in (`benchmarks.other_renderer`'s misses), so a query
# drawing read as no figure is read again turned by each of `QUERY_TURNS`, and the figure
# seen at the turn the model is surest of counts only where the model is surer of it than an
# upright figure needs and its reading agrees with the turned drawing's mirror image (the
# index's mirror check: a drawn animal stood on end is a figure to the figure output, its
# joints guesses). Read at the upright bar and at every turn, drawn animals and food
# turned over became figures (clip-art animals, held-out half: 6.8 % → 29.7 %). The bar was
# chosen for half a turn in a one-off study (its script not kept) on the dev halves of Tux
# Paint's drawn stamps (`benchmarks.drawn_negatives`: no turned stamp passed it, with a
# mirror bar of 0.7 for the index) and 180 upright drawings of sampled poses by
# `benchmarks.other_renderer` (3 of the 7 it saw no figure in came back), and kept for the
# quarter turns. The index does not read so: there, even with that mirror bar, it made a few
# birds, an ice lolly and a hand into figures (the README has the figures), and a false
# figure in the index answers every pose search; whoever sends a drawing as a query means a
# figure.
TURNED_FIGURE = 0.9
# The turns (numpy's quarter turns) a query drawing with no figure is read again at: half a
# turn (upside down) and a quarter either way (lying down).
QUERY_TURNS = (2, 1, 3)
# A figure's joints must be read with some certainty: the mean height of its 13 heatmap
# peaks (what a reading's joint scores are) at least this. Where the figure output is sure
# of a shape that is no figure (a teddy bear, a water tower, a bird) the joints are faint
# guesses; on drawn figures they are not. In a one-off study (its script not kept; figures
# in the README) every one of 794 held-out renders of `benchmarks.drawn_eval`'s eight
# styles read a figure with a mean peak of at least 0.23, while of the false figures on the
# clip art's animals, food and toys and on Tux Paint's stamps 20–65 % lay below 0.25, and
# readings of real drawings that low were wrong (PCK@0.2 about 0.25). A round bar under the
# least sure render, not searched; like the mirror check, for the index only (`for_queries`).
MIN_JOINT_HEAT = 0.2


@dataclass(frozen=True)
class DrawnReading:
    figure: float  # probability that the drawing shows a human figure
    pose: Pose | None  # the figure's joints, in the drawing's pixels (None without ink)
    shows_figure: bool  # `figure` reaches `min_figure`, the joints `min_heat`, the mirror agrees
    agreement: float | None = None  # share of joints the mirror image's reading agrees on


class DrawnFigureReader:
    """Reads drawings with the committed (or given) weights; loads them on first use."""

    def __init__(
        self,
        weights: Path = WEIGHTS,
        min_figure: float = MIN_FIGURE,
        min_agreement: float = MIN_AGREEMENT,
        turned: bool = False,
        min_heat: float = MIN_JOINT_HEAT,
    ) -> None:
        self.weights = weights
        self.min_figure = min_figure
        self.min_agreement = min_agreement
        self.turned = turned
        self.min_heat = min_heat
        self._network = _Network(weights)

    def with_agreement(self, min_agreement: float) -> DrawnFigureReader:
        """This reader with another mirror bar (0: no mirror reading)."""
        return self._sibling(min_agreement, self.turned, self.min_heat)

    def for_queries(self) -> DrawnFigureReader:
        """The reader of drawings sent as queries: no mirror check or joint-heat bar, and a
        drawing it sees no figure in read again turned (`TURNED_FIGURE`); the
        keypoint backends' `for_queries` say why."""
        return self._sibling(0.0, turned=True, min_heat=0.0)

    def _sibling(self, min_agreement: float, turned: bool, min_heat: float) -> DrawnFigureReader:
        """A reader of the same weights and figure bar sharing this one's network (loaded
        once, whichever reads first)."""
        other = DrawnFigureReader(self.weights, self.min_figure, min_agreement, turned, min_heat)
        other._network = self._network
        return other

    @functools.cached_property
    def tag(self) -> str:
        """In the keypoint model id: other weights or another bar re-read the index (the
        weights are hashed once: model ids are asked for often)."""
        try:
            digest = hashlib.sha256(self.weights.read_bytes()).hexdigest()[:8]
        except OSError:
            digest = "missing"
        tag = f"{self.weights.stem}-{digest}|{self.min_figure:g}|upright|evenlight|rules|sheet"
        if self.min_agreement > 0:
            tag += f"|mirror{self.min_agreement:g}@{AGREEMENT_RADIUS:g}"
        if self.turned:
            tag += f"|turned{TURNED_FIGURE:g}m{MIN_AGREEMENT:g}"
        if self.min_heat > 0:
            tag += f"|heat{self.min_heat:g}"
        return tag

    def read(self, image: Image.Image) -> DrawnReading:
        """The model's reading of the whole drawing (one figure); of the sheet alone where
        the drawing was photographed lying on a desk (`sheet_of`)."""
        return self._read(*_grey(image))

    def read_figures(
        self, image: Image.Image, whole: DrawnReading | None = None
    ) -> list[DrawnReading]:
        """One reading per figure drawn side by side: where the ink falls into separate
        groups (`ink_groups`: apart by more than `FIGURE_GAP` of the ink's extent, each at
        least `FIGURE_SIZE` of the largest), each group is read alone, and the groups the
        model sees a figure in are the drawing's figures when they are two or more;
        otherwise the whole drawing's one reading (`whole`, when the caller has it)."""
        grey, scale, offset = _grey(image)
        groups = ink_groups(grey, FIGURE_GAP, FIGURE_SIZE)
        if len(groups) >= 2:
            paper = paper_map(grey)
            readings = [self._read(np.where(group, grey, paper), scale, offset) for group in groups]
            figures = [r for r in readings if r.shows_figure and r.pose is not None]
            if len(figures) >= 2:
                return figures
        return [whole if whole is not None else self._read(grey, scale, offset)]

    def _read(
        self, grey: np.ndarray, scale: float, offset: tuple[int, int] = (0, 0)
    ) -> DrawnReading:
        read = self._joints(grey)
        if read is None:
            return DrawnReading(0.0, None, False)
        joints, figure = read
        view, turns, min_figure = grey, 0, self.min_figure
        if figure >= self.min_figure:
            # A figure read lying down (or upside down) is read again stood up.
            quarters = upright_turns(joints)
            if quarters:
                stood = np.ascontiguousarray(np.rot90(grey, quarters))
                candidate = self._joints(stood)
                if candidate is not None and candidate[1] >= self.min_figure:
                    (joints, figure), view, turns = candidate, stood, quarters
        elif self.turned:
            # No figure: perhaps one drawn upside down or lying down (see TURNED_FIGURE):
            # the turn the model is surest of a figure at, read alike from its mirror image.
            min_figure = max(self.min_figure, TURNED_FIGURE)
            for quarters in QUERY_TURNS:
                turned_view = np.ascontiguousarray(np.rot90(grey, quarters))
                candidate = self._joints(turned_view)
                if (
                    candidate is not None
                    and candidate[1] >= max(min_figure, figure)
                    and self._agreement(candidate[0], turned_view) >= MIN_AGREEMENT
                ):
                    (joints, figure), view, turns = candidate, turned_view, quarters
        shows = figure >= min_figure and joint_heat(joints) >= self.min_heat
        agreement = None
        if shows and self.min_agreement > 0:
            agreement = self._agreement(joints, view)
            shows = agreement >= self.min_agreement
        joints[:, :2] = turned_back(joints[:, :2], turns, grey.shape)
        joints[:, :2] = joints[:, :2] / scale + np.array(offset)
        pose = np.zeros((NUM_JOINTS, 3))
        for j, coco in enumerate(COCO_OF_JOINT):
            pose[coco] = (joints[j, 0], joints[j, 1], float(np.clip(joints[j, 2], 0.0, 1.0)))
        nose = pose[COCO17_INDEX["nose"]]
        for name in ("left_eye", "right_eye", "left_ear", "right_ear"):
            pose[COCO17_INDEX[name]] = (nose[0], nose[1], 0.0)  # a drawn head shows no face
        return DrawnReading(figure, Pose.from_array(pose), shows, agreement)

    def _agreement(self, joints: np.ndarray, view: np.ndarray) -> float:
        """How well `joints`, read in `view`, agree with the reading of its mirror image
        (`mirror_agreement`; 0 where the mirror image shows no ink)."""
        mirrored = self._joints(np.ascontiguousarray(view[:, ::-1]))
        return 0.0 if mirrored is None else mirror_agreement(joints, mirrored[0], view.shape[1])

    def _joints(self, grey: np.ndarray) -> tuple[np.ndarray, float] | None:
        """The model's (13, 3) joints in `grey`'s pixels and its figure probability (None
        without ink)."""
        import torch

        cropped = ink_crop(grey)
        if cropped is None:
            return None
        x, crop = cropped
        heat, logit = self._network(torch.from_numpy(x)[None, None])
        joints = decode(heat[0].numpy())
        joints[:, :2] = crop.to_drawing(joints[:, :2])
        return joints, float(torch.sigmoid(logit[0]))


_NOSE = JOINTS.index("nose")
_ANKLES = (JOINTS.index("left_ankle"), JOINTS.index("right_ankle"))


def joint_heat(joints: np.ndarray) -> float:
    """The mean height of a reading's 13 heatmap peaks, each as its joint score (0–1)."""
    return float(np.clip(joints[:, 2], 0.0, 1.0).mean())


def upright_turns(joints: np.ndarray) -> int:
    """The quarter turns (`np.rot90`'s) that bring a reading's feet (the mid-ankle) below its
    head (the nose): 0 where they are already more below than beside it."""
    dx, dy = joints[list(_ANKLES), :2].mean(axis=0) - joints[_NOSE, :2]
    if abs(dy) >= abs(dx):
        return 0 if dy >= 0 else 2
    return 3 if dx > 0 else 1


def turned_back(points: np.ndarray, quarters: int, shape: tuple[int, ...]) -> np.ndarray:
    """Points (x, y) read in `np.rot90(drawing, quarters)` → the drawing's pixels (`shape`:
    the drawing's (height, width)); pixel indices, as the mirror maps x → width − 1 − x."""
    height, width = shape[0], shape[1]
    x, y = points[:, 0], points[:, 1]
    if quarters % 4 == 1:  # counter-clockwise: turned[r, c] = drawing[c, width - 1 - r]
        return np.column_stack([width - 1 - y, x])
    if quarters % 4 == 3:  # clockwise: turned[r, c] = drawing[height - 1 - c, r]
        return np.column_stack([y, height - 1 - x])
    if quarters % 4 == 2:
        return np.column_stack([width - 1 - x, height - 1 - y])
    return points.copy()


def mirror_agreement(joints: np.ndarray, mirrored: np.ndarray, width: int) -> float:
    """The share of `joints` (13, read from a drawing `width` pixels wide) within
    `AGREEMENT_RADIUS` × the figure's size (its joints' box diagonal) of the joints read from
    the drawing's mirror image, mapped back; the better of the two left/right assignments."""
    back = mirrored.copy()
    back[:, 0] = width - 1 - back[:, 0]
    size = float(np.hypot(*np.ptp(joints[:, :2], axis=0)))
    if size <= 0:
        return 0.0
    return pck_either_side(back, joints, FLIP, AGREEMENT_RADIUS * size)


class _Network:
    """The drawn-figure network of one weights file, loaded with torch on first use; one
    reading at a time."""

    def __init__(self, weights: Path) -> None:
        self.weights = weights
        self._net: Any = None  # DrawnPoseNet
        self._lock = threading.Lock()

    def __call__(self, x: Any) -> Any:
        import torch

        with self._lock, torch.inference_mode():
            if self._net is None:
                from pipelines.pose.drawn.model import DrawnPoseNet

                saved = torch.load(self.weights, map_location="cpu", weights_only=True)
                net = DrawnPoseNet(int(saved["width"]))
                net.load_state_dict({k: v.float() for k, v in saved["state"].items()})
                net.eval()
                self._net = net
            return self._net(x)


def _grey(image: Image.Image) -> tuple[np.ndarray, float, tuple[int, int]]:
    """The drawing in grey [0, 1] at most `MAX_SIDE` pixels, the scale it was read at, and
    where that grey begins in the image (x, y, in the image's pixels): the sheet alone
    (`sheet_box`), where the drawing was photographed lying on a desk."""
    sheet = sheet_box(image)
    offset = (0, 0) if sheet is None else (sheet[0], sheet[1])
    if sheet is not None:
        image = image.crop(sheet)
    scale = min(1.0, MAX_SIDE / max(image.size))
    small = (
        image
        if scale == 1.0
        else image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.LANCZOS,
        )
    )
    return np.asarray(small.convert("L"), dtype=np.float32) / 255.0, scale, offset


def sheet_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    """The sheet a drawing was photographed on, lying on a desk (`sheet_of`), as a (left,
    top, right, bottom) box in `image`'s pixels, or None. It is looked for in the image's
    statistics rendition (`luminance`, which the medium decision reads anyway): every photo
    is asked, so a full-size rendition would cost every photo its resizing."""
    grey = luminance(image).astype(np.float32)
    sheet = sheet_of(grey)
    if sheet is None:
        return None
    top, bottom, left, right = sheet
    fx, fy = image.width / grey.shape[1], image.height / grey.shape[0]
    return round(left * fx), round(top * fy), round(right * fx), round(bottom * fy)


@functools.cache
def committed_reader() -> DrawnFigureReader:
    """The committed weights at the default bar, one per process (loaded on first reading):
    the keypoint reader, the medium decision and the `drawn` backend share it."""
    return DrawnFigureReader()
