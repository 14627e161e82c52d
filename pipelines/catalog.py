"""Every model backend, registered in one place: import the registries from here.

Each backend module registers itself in its kind's registry when imported (keypoint
detectors, pose embedders, framing classifiers, CLIP encoders); this module imports every
one of them, and only this module does, so asking `keypoint_models.load("rtmpose")` through
the catalog always finds every backend, and the modules that define the registries import no
backend (no import cycles). Importing a backend is cheap: its heavy package (onnxruntime,
torch models, mmaction2, …) loads only when it is selected.
"""

from __future__ import annotations

from pipelines.backends import drawn_figure, posec3d, rtmpose, sam3d_body
from pipelines.clip.encoder import clip_models
from pipelines.pose.embedding import pose_models
from pipelines.pose.framing import framing_models
from pipelines.pose.keypoints import keypoint_models

OPTIONAL_BACKENDS = (drawn_figure, posec3d, rtmpose, sam3d_body)

__all__ = ["OPTIONAL_BACKENDS", "clip_models", "framing_models", "keypoint_models", "pose_models"]
