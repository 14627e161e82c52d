"""The drawn-figure reader: the trained model of `pipelines.pose.drawn.model` on a drawing.

It answers two questions about a drawing: whether it shows a human figure at all (the
model's figure output, trained against drawn animals, food, objects and scribbles), and
where that figure's joints are. The keypoint backend asks the first of every drawing (a
figure BlazePose reads in a drawing the model calls "nobody" is dropped: drawn animals are
what BlazePose mistakes most; `pipelines.pose.medium` asks it of grainy pages) and takes the
second as the drawing's figure unless BlazePose found several people or a clear one.

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

from pipelines.pose.drawn.figures import COCO_OF_JOINT
from pipelines.pose.drawn.ink import decode, ink_crop, ink_groups, paper_of
from pipelines.records import COCO17_INDEX, NUM_JOINTS, Pose

WEIGHTS = Path(__file__).parent / "weights" / "drawn-v1.pt"
MIN_FIGURE = 0.5  # the figure probability a drawing needs to hold a person
MAX_SIDE = 640  # drawings are read at most this large: the model sees 128 pixels
# Figures drawn side by side: ink groups further apart than this share of the ink's extent
# are read apart, when each is at least FIGURE_SIZE of the largest (a head drawn apart from
# its body, a prop or a speck is no second figure).
FIGURE_GAP = 0.04
FIGURE_SIZE = 0.4


@dataclass(frozen=True)
class DrawnReading:
    figure: float  # probability that the drawing shows a human figure
    pose: Pose | None  # the figure's joints, in the drawing's pixels (None without ink)
    shows_figure: bool  # `figure` reaches the reader's `min_figure`


class DrawnFigureReader:
    """Reads drawings with the committed (or given) weights; loads them on first use."""

    def __init__(self, weights: Path = WEIGHTS, min_figure: float = MIN_FIGURE) -> None:
        self.weights = weights
        self.min_figure = min_figure
        self._net: Any = None  # DrawnPoseNet, loaded with torch on first use
        self._lock = threading.Lock()

    @functools.cached_property
    def tag(self) -> str:
        """In the keypoint model id: other weights or another bar re-read the index (the
        weights are hashed once: model ids are asked for often)."""
        try:
            digest = hashlib.sha256(self.weights.read_bytes()).hexdigest()[:8]
        except OSError:
            digest = "missing"
        return f"{self.weights.stem}-{digest}|{self.min_figure:g}"

    def _model(self) -> Any:
        if self._net is None:
            import torch

            from pipelines.pose.drawn.model import DrawnPoseNet

            saved = torch.load(self.weights, map_location="cpu", weights_only=True)
            net = DrawnPoseNet(int(saved["width"]))
            net.load_state_dict({k: v.float() for k, v in saved["state"].items()})
            net.eval()
            self._net = net
        return self._net

    def read(self, image: Image.Image) -> DrawnReading:
        """The model's reading of the whole drawing (one figure)."""
        return self._read(*_grey(image))

    def read_figures(
        self, image: Image.Image, whole: DrawnReading | None = None
    ) -> list[DrawnReading]:
        """One reading per figure drawn side by side: where the ink falls into separate
        groups (`ink_groups`: apart by more than `FIGURE_GAP` of the ink's extent, each at
        least `FIGURE_SIZE` of the largest), each group is read alone, and the groups the
        model sees a figure in are the drawing's figures when they are two or more;
        otherwise the whole drawing's one reading (`whole`, when the caller has it)."""
        grey, scale = _grey(image)
        groups = ink_groups(grey, FIGURE_GAP, FIGURE_SIZE)
        if len(groups) >= 2:
            paper = paper_of(grey)
            readings = [self._read(np.where(group, grey, paper), scale) for group in groups]
            figures = [r for r in readings if r.shows_figure and r.pose is not None]
            if len(figures) >= 2:
                return figures
        return [whole if whole is not None else self._read(grey, scale)]

    def _read(self, grey: np.ndarray, scale: float) -> DrawnReading:
        import torch

        cropped = ink_crop(grey)
        if cropped is None:
            return DrawnReading(0.0, None, False)
        x, crop = cropped
        with self._lock, torch.inference_mode():
            heat, logit = self._model()(torch.from_numpy(x)[None, None])
        joints = decode(heat[0].numpy())
        joints[:, :2] = crop.to_drawing(joints[:, :2]) / scale
        pose = np.zeros((NUM_JOINTS, 3))
        for j, coco in enumerate(COCO_OF_JOINT):
            pose[coco] = (joints[j, 0], joints[j, 1], float(np.clip(joints[j, 2], 0.0, 1.0)))
        nose = pose[COCO17_INDEX["nose"]]
        for name in ("left_eye", "right_eye", "left_ear", "right_ear"):
            pose[COCO17_INDEX[name]] = (nose[0], nose[1], 0.0)  # a drawn head shows no face
        figure = float(torch.sigmoid(logit[0]))
        return DrawnReading(figure, Pose.from_array(pose), figure >= self.min_figure)


def _grey(image: Image.Image) -> tuple[np.ndarray, float]:
    """The drawing in grey [0, 1] at most `MAX_SIDE` pixels, and the scale it was read at."""
    scale = min(1.0, MAX_SIDE / max(image.size))
    small = (
        image
        if scale == 1.0
        else image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.LANCZOS,
        )
    )
    return np.asarray(small.convert("L"), dtype=np.float32) / 255.0, scale


@functools.cache
def committed_reader() -> DrawnFigureReader:
    """The committed weights at the default bar, one per process (loaded on first reading):
    the keypoint reader, the medium decision and the `drawn` backend share it."""
    return DrawnFigureReader()
