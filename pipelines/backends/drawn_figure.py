"""The drawn-figure model alone: the `drawn` keypoint backend.

For drawings only (sketches, stick figures, mannequins, line art): one figure per image, from
the trained model of `pipelines.pose.drawn`, where it is at least `min_figure` sure the drawing
shows one, reads its joints with a mean heatmap peak of at least `min_heat` and reads at
least `min_agreement` of them alike from the mirror image (0: no mirror reading). The default
`mediapipe` backend already routes drawings through this model (see
`MediaPipePoseDetector._drawn_figures`); this backend is for indexing a folder of drawings
with the model's reading alone, and for measuring it (`benchmarks.drawn_eval`).
"""

from __future__ import annotations

import copy
from pathlib import Path

from PIL import Image

from pipelines.pose.drawn.reader import (
    MIN_AGREEMENT,
    MIN_FIGURE,
    MIN_JOINT_HEAT,
    WEIGHTS,
    DrawnFigureReader,
    committed_reader,
)
from pipelines.pose.keypoints import KeypointDetector, keypoint_models
from pipelines.records import Pose


@keypoint_models.register("drawn")
class DrawnFigureDetector(KeypointDetector):
    name = "drawn"

    def __init__(
        self,
        min_figure: float = MIN_FIGURE,
        weights: str | None = None,
        min_agreement: float = MIN_AGREEMENT,
        min_heat: float = MIN_JOINT_HEAT,
    ) -> None:
        committed = (min_figure, weights, min_agreement, min_heat) == (
            MIN_FIGURE, None, MIN_AGREEMENT, MIN_JOINT_HEAT
        )  # fmt: skip
        self._reader = (
            committed_reader()
            if committed
            else DrawnFigureReader(
                Path(weights) if weights else WEIGHTS,
                min_figure=min_figure,
                min_agreement=min_agreement,
                min_heat=min_heat,
            )
        )

    @property
    def model_id(self) -> str:
        return f"drawn-figure({self._reader.tag})"

    def for_queries(self) -> KeypointDetector:
        """Without the mirror check or the joint-heat bar, reading turned what it sees no
        figure in (`MediaPipePoseDetector.for_queries` says why)."""
        lenient = copy.copy(self)
        lenient._reader = self._reader.for_queries()
        return lenient

    def detect(self, image: Image.Image) -> list[Pose]:
        reading = self._reader.read(image.convert("RGB"))
        if reading.pose is None or not reading.shows_figure:
            return []
        return [reading.pose]
