"""Meta's SAM 3D Body as a keypoint detector: the optional `sam-3d-body` backend.

SAM 3D Body recovers a full 3D body mesh (the Momentum Human Rig, MHR) from one image and
projects its keypoints into the image: `pred_keypoints_2d`, the 70-point "MHR70" set, in
pixels of the input. This backend keeps those 2D points and maps them to the canonical
COCO-17 pose plus named extras (feet, hand joints, neck, elbow and shoulder landmarks).

It needs a GPU, the `sam_3d_body` package (installed from Meta's facebookresearch/sam-3d-body
repository, which is not on PyPI; `pip install 'poseframer[sam3d]'` brings its PyPI
dependencies) and the gated checkpoint (`model.ckpt` with `model_config.yaml` beside it, and
the MHR asset `assets/mhr_model.pt`), all local: nothing is downloaded.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipelines.backends import (
    file_digest,
    missing_file_problem,
    package_missing,
    raise_if_unavailable,
)
from pipelines.pose.keypoints import KeypointDetector, keypoint_models
from pipelines.records import COCO17_NAMES, Pose

# The MHR70 keypoint order, from `sam_3d_body/metadata/mhr70.py` (`mhr_names`, the first 70
# of MHR's 308 keypoints). It must match the checkpoint's metadata: if a release reorders
# them, this table, and only this table, changes. Names use underscores like COCO17_NAMES.
MHR70_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_big_toe",
    "left_small_toe",
    "left_heel",
    "right_big_toe",
    "right_small_toe",
    "right_heel",
    *(
        f"right_{finger}_{joint}"
        for finger in ("thumb", "index", "middle", "ring", "pinky")
        for joint in ("tip", "first_joint", "second_joint", "third_joint")
    ),
    "right_wrist",
    *(
        f"left_{finger}_{joint}"
        for finger in ("thumb", "index", "middle", "ring", "pinky")
        for joint in ("tip", "first_joint", "second_joint", "third_joint")
    ),
    "left_wrist",
    "left_olecranon",
    "right_olecranon",
    "left_cubital_fossa",
    "right_cubital_fossa",
    "left_acromion",
    "right_acromion",
    "neck",
)
MHR70_INDEX: dict[str, int] = {name: i for i, name in enumerate(MHR70_NAMES)}
NUM_MHR70 = len(MHR70_NAMES)

# COCO-17 joint j comes from MHR70 point MHR70_TO_COCO17[j]: every COCO joint exists in MHR70
# under the same name (the wrists sit at the end of each hand block, 41 and 62).
MHR70_TO_COCO17: tuple[int, ...] = tuple(MHR70_INDEX[name] for name in COCO17_NAMES)
MHR70_EXTRAS: dict[int, str] = {
    i: name for i, name in enumerate(MHR70_NAMES) if i not in set(MHR70_TO_COCO17)
}
# Joints projected this far outside the frame (fraction of the side) are the mesh's guess
# about unseen body parts: scored 0, "not seen", as the BlazePose backend does.
OUT_OF_FRAME_MARGIN = 0.02

HOW_TO_SELECT = (
    "Install SAM 3D Body from Meta's facebookresearch/sam-3d-body repository (see its "
    "INSTALL.md) plus `pip install 'poseframer[sam3d]'`, get the gated checkpoint, then select "
    "the backend with POSEFRAMER_KEYPOINT_MODEL=sam-3d-body and its options as JSON, e.g. "
    'POSEFRAMER_KEYPOINT_MODEL_OPTIONS=\'{"checkpoint_path": '
    '"/models/sam-3d-body-dinov3/model.ckpt"}\'.'
)


def mhr70_to_pose(
    keypoints_2d: np.ndarray,
    scores: np.ndarray | None = None,
    width: int | None = None,
    height: int | None = None,
) -> Pose:
    """MHR70 points `(70, 2)` in image pixels → a canonical Pose (COCO-17 + named extras).

    SAM 3D Body gives no per-keypoint confidence: with `scores` None every point counts as
    seen (1.0), except, when the image size is given, points projected outside the frame,
    which are scored 0. Given `scores` `(70,)` are clipped to [0, 1].
    """
    kp = np.asarray(keypoints_2d, dtype=np.float64)
    if kp.shape != (NUM_MHR70, 2):
        raise ValueError(f"expected ({NUM_MHR70}, 2) MHR70 keypoints, got {kp.shape}")
    if scores is None:
        score = np.ones(NUM_MHR70, dtype=np.float64)
    else:
        score = np.clip(np.asarray(scores, dtype=np.float64).reshape(-1), 0.0, 1.0)
        if score.shape != (NUM_MHR70,):
            raise ValueError(f"expected ({NUM_MHR70},) scores, got {score.shape}")
    if width is not None and height is not None:
        mx, my = OUT_OF_FRAME_MARGIN * width, OUT_OF_FRAME_MARGIN * height
        outside = (
            (kp[:, 0] < -mx) | (kp[:, 0] > width + mx) | (kp[:, 1] < -my) | (kp[:, 1] > height + my)
        )
        score = np.where(outside, 0.0, score)
    coco = np.concatenate([kp, score[:, None]], axis=1)[list(MHR70_TO_COCO17)]
    extras = tuple(
        (name, float(kp[i, 0]), float(kp[i, 1]), float(score[i]))
        for i, name in MHR70_EXTRAS.items()
    )
    return Pose.from_array(coco, extras=extras)  # score: the mean of the seen joints


def default_mhr_path(checkpoint_path: str) -> Path:
    """Where the released checkpoints keep the MHR asset: `assets/mhr_model.pt` beside it."""
    return Path(checkpoint_path).expanduser().parent / "assets" / "mhr_model.pt"


@keypoint_models.register("sam-3d-body")
class SAM3DBodyDetector(KeypointDetector):
    """SAM 3D Body's projected MHR70 keypoints as canonical poses.

    Options: `checkpoint_path` (required: `model.ckpt`, with `model_config.yaml` in its folder
    or the one above, as `load_sam_3d_body` looks for it), `mhr_path` (default
    `assets/mhr_model.pt` beside the checkpoint), `device`. People come from boxes passed to
    `detect` by another stage, else the whole image is one person, as the estimator does when
    it has no detector of its own (this backend does not load SAM 3D Body's ViTDet detector,
    which needs detectron2).
    """

    name = "sam-3d-body"

    def __init__(
        self,
        checkpoint_path: str | None = None,
        mhr_path: str | None = None,
        device: str = "cuda",
        inference_type: str = "full",
    ) -> None:
        if inference_type not in ("full", "body"):
            raise ValueError(f"inference_type must be 'full' or 'body', got {inference_type!r}")
        problems: list[str] = []
        ckpt_problem = missing_file_problem(
            "checkpoint_path",
            checkpoint_path,
            "the local SAM 3D Body model.ckpt (gated weights; never downloaded)",
        )
        if ckpt_problem is not None:
            problems.append(ckpt_problem)
        elif mhr_path is None:
            assert checkpoint_path is not None
            mhr_problem = missing_file_problem(
                "mhr_path",
                str(default_mhr_path(checkpoint_path)),
                "the MHR model asset (assets/mhr_model.pt beside the checkpoint, or set mhr_path)",
            )
            if mhr_problem is not None:
                problems.append(mhr_problem)
        if mhr_path is not None:
            mhr_problem = missing_file_problem("mhr_path", mhr_path, "the MHR asset mhr_model.pt")
            if mhr_problem is not None:
                problems.append(mhr_problem)
        if package_missing("sam_3d_body"):
            problems.append(
                "the sam_3d_body package is not installed: install it from Meta's "
                "facebookresearch/sam-3d-body repository (not on PyPI) and "
                "pip install 'poseframer[sam3d]' for its dependencies"
            )
        raise_if_unavailable(self.name, "keypoint", problems, HOW_TO_SELECT)
        assert checkpoint_path is not None
        self.checkpoint_path = checkpoint_path
        self.mhr_path = mhr_path or str(default_mhr_path(checkpoint_path))
        self.device = device
        self.inference_type = inference_type
        self._estimator: Any = None
        self._lock = threading.Lock()
        self._model_id: str | None = None

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            self._model_id = (
                f"sam-3d-body-{file_digest(self.checkpoint_path)}"
                f"(mhr={file_digest(self.mhr_path)},inference={self.inference_type},"
                f"out_of_frame_margin={OUT_OF_FRAME_MARGIN:g})"
            )
        return self._model_id

    def _load(self) -> Any:
        with self._lock:
            if self._estimator is None:
                from sam_3d_body import SAM3DBodyEstimator, load_sam_3d_body

                model, model_cfg = load_sam_3d_body(
                    self.checkpoint_path, device=self.device, mhr_path=self.mhr_path
                )
                self._estimator = SAM3DBodyEstimator(sam_3d_body_model=model, model_cfg=model_cfg)
            return self._estimator

    def detect(
        self, image: Image.Image, boxes: Sequence[Sequence[float]] | None = None
    ) -> list[Pose]:
        """People in `image`, most confident first; `boxes` (x0, y0, x1, y1) from another
        stage, else the whole image as one person."""
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        bboxes = None if boxes is None else np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        estimator = self._load()
        # The estimator keeps per-call state (its last batch and outputs): one image at a time.
        with self._lock:
            outputs = estimator.process_one_image(
                rgb, bboxes=bboxes, inference_type=self.inference_type
            )
        poses = [
            mhr70_to_pose(np.asarray(out["pred_keypoints_2d"])[:, :2], None, *image.size)
            for out in outputs
        ]
        return sorted(poses, key=lambda p: p.score, reverse=True)
