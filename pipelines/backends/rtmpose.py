"""RTMPose keypoints through ONNX Runtime: the optional `rtmpose` keypoint backend.

Why ONNX Runtime rather than mmpose: the exported RTMPose models (mmdeploy's end-to-end
ONNX files, e.g. rtmpose-m body7 256×192) carry the whole network, so inference needs one
self-contained wheel (`onnxruntime`, ~30 MB, CPU; `onnxruntime-gpu` for CUDA) instead of the
mmpose + mmdet + mmengine + mmcv stack, whose compiled ops take ~30 minutes to build against
a given torch and pin torch versions this project does not use. What mmpose still contributes,
the pre- and post-processing around the network, is small, pure numpy and reimplemented here
with mmpose's conventions, so it is unit-tested without any model. The cost is that a model
must be exported once (by whoever has mmpose, or downloaded already exported) and that the
ONNX file is a frozen network: no training or fine-tuning through this backend.

Top-down, as mmpose's RTMPose inference runs it (the steps: `rtmpose_processing`):

The one-stage RTMO models have different outputs (boxes and keypoints directly) and are not
read by this backend; selecting one fails with an error saying so.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from pipelines.backends import (
    BackendUnavailableError,
    file_digest,
    missing_file_problem,
    package_missing,
    raise_if_unavailable,
)
from pipelines.backends.rtmpose_processing import (
    BBOX_PADDING,
    DETECTOR_PRESETS,
    SCORE_MODES,
    SIMCC_SPLIT_RATIO,
    detector_input,
    estimate_poses,
    person_boxes,
)
from pipelines.pose.keypoints import KeypointDetector, keypoint_models
from pipelines.records import Pose

HOW_TO_SELECT = (
    "Install the extra with `pip install 'poseframer[rtmpose]'`, then select the backend "
    "with POSEFRAMER_KEYPOINT_MODEL=rtmpose and its options as JSON, e.g. "
    'POSEFRAMER_KEYPOINT_MODEL_OPTIONS=\'{"model_path": '
    '"/models/rtmpose-m_body7-256x192.onnx", '
    '"detector_path": "/models/yolox-m_humanart.onnx"}\'.'
)


@keypoint_models.register("rtmpose")
class RTMPoseDetector(KeypointDetector):
    """RTMPose (SimCC, top-down) from a local exported ONNX file, run by ONNX Runtime.

    Options: `model_path` (required; a local .onnx, never downloaded), `detector_path` (an
    optional end-to-end YOLOX/RTMDet person detector .onnx, `detector_kind` saying which;
    without it, or without boxes passed to `detect`, the whole image is one person box),
    `device` ("cpu" or "cuda", the latter needing onnxruntime-gpu). `min_pose_score` drops a
    "person" whose mean COCO keypoint score is below it; its default 0.3 is the keypoint
    threshold of mmpose's RTMPose demos, not yet measured on the evalset.
    """

    name = "rtmpose"

    def __init__(
        self,
        model_path: str | None = None,
        detector_path: str | None = None,
        detector_kind: str = "yolox",
        detector_input_size: int = 640,
        detector_score: float = 0.3,
        device: str = "cpu",
        input_size: tuple[int, int] | None = None,
        bbox_padding: float = BBOX_PADDING,
        simcc_split_ratio: float = SIMCC_SPLIT_RATIO,
        score_mode: str = "min",
        min_keypoint_score: float = 0.0,
        min_pose_score: float = 0.3,
    ) -> None:
        if score_mode not in SCORE_MODES:
            raise ValueError(f"score_mode must be one of {SCORE_MODES}, got {score_mode!r}")
        if detector_kind not in DETECTOR_PRESETS:
            raise ValueError(
                f"detector_kind must be one of {sorted(DETECTOR_PRESETS)}, got {detector_kind!r}"
            )
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
        problems = [
            p
            for p in (
                missing_file_problem(
                    "model_path",
                    model_path,
                    "a local RTMPose .onnx file (e.g. rtmpose-m body7 256x192 exported by "
                    "mmdeploy); weights are never downloaded",
                ),
                None
                if detector_path is None
                else missing_file_problem(
                    "detector_path", detector_path, "a local YOLOX/RTMDet person detector .onnx"
                ),
            )
            if p is not None
        ]
        if package_missing("onnxruntime"):
            problems.append(
                "onnxruntime is not installed: pip install 'poseframer[rtmpose]' "
                "(onnxruntime-gpu instead for device='cuda')"
            )
        raise_if_unavailable(self.name, "keypoint", problems, HOW_TO_SELECT)
        assert model_path is not None  # checked above; tells mypy
        self.model_path = model_path
        self.detector_path = detector_path
        self.detector_kind = detector_kind
        self.detector_input_size = detector_input_size
        self.detector_score = detector_score
        self.device = device
        self.input_size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
        self.bbox_padding = bbox_padding
        self.simcc_split_ratio = simcc_split_ratio
        self.score_mode = score_mode
        self.min_keypoint_score = min_keypoint_score
        self.min_pose_score = min_pose_score
        self._pose_session: Any = None
        self._detector_session: Any = None
        self._model_input_size: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._model_id: str | None = None

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            detector = (
                "none"
                if self.detector_path is None
                else f"{self.detector_kind}-{file_digest(self.detector_path)}"
                f"@{self.detector_input_size}>{self.detector_score:g}"
            )
            size = "model" if self.input_size is None else "x".join(map(str, self.input_size))
            self._model_id = (
                f"rtmpose-{file_digest(self.model_path)}(detector={detector},input={size},"
                f"padding={self.bbox_padding:g},split={self.simcc_split_ratio:g},"
                f"score={self.score_mode},min_keypoint_score={self.min_keypoint_score:g},"
                f"min_pose_score={self.min_pose_score:g})"
            )
        return self._model_id

    def _providers(self, ort: Any) -> list[str]:
        if self.device == "cpu":
            return ["CPUExecutionProvider"]
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendUnavailableError(
                "rtmpose device='cuda' needs onnxruntime-gpu (pip install onnxruntime-gpu in "
                "place of onnxruntime); this onnxruntime offers "
                f"{ort.get_available_providers()}"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    def _load(self) -> tuple[Any, Any, tuple[int, int]]:
        with self._lock:
            if self._pose_session is None:
                import onnxruntime as ort

                providers = self._providers(ort)
                session = ort.InferenceSession(self.model_path, providers=providers)
                outputs = session.get_outputs()
                if len(outputs) != 2 or any(len(o.shape) != 3 for o in outputs):
                    raise BackendUnavailableError(
                        f"{self.model_path} is not a SimCC RTMPose model: it has outputs "
                        f"{[(o.name, o.shape) for o in outputs]}, expected simcc_x "
                        "(1, K, W·2) and simcc_y (1, K, H·2) (RTMO models are not supported)"
                    )
                self._model_input_size = self.input_size or _static_input_size(session)
                if self.detector_path is not None:
                    self._detector_session = ort.InferenceSession(
                        self.detector_path, providers=providers
                    )
                self._pose_session = session
            assert self._model_input_size is not None
            return self._pose_session, self._detector_session, self._model_input_size

    def person_boxes(self, rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Boxes of the people in `rgb`, best first: the detector's, else the whole image."""
        h, w = rgb.shape[:2]
        _, detector, _ = self._load()
        if detector is None:
            return [(0.0, 0.0, float(w), float(h))]
        x, ratio = detector_input(rgb, self.detector_input_size, self.detector_kind)
        outputs = detector.run(None, {detector.get_inputs()[0].name: x})
        labels = outputs[1] if len(outputs) > 1 else None
        return person_boxes(outputs[0], labels, ratio, self.detector_score, w, h)

    def detect(
        self, image: Image.Image, boxes: Sequence[Sequence[float]] | None = None
    ) -> list[Pose]:
        """People in `image`, most confident first; `boxes` (x0, y0, x1, y1) in image pixels
        from another stage replace the detector when given."""
        rgb = np.asarray(image.convert("RGB"))
        session, _, input_size = self._load()
        found = self.person_boxes(rgb) if boxes is None else list(boxes)
        input_name = session.get_inputs()[0].name

        def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            simcc_x, simcc_y = session.run(None, {input_name: x})
            return simcc_x, simcc_y

        poses = estimate_poses(
            rgb,
            found,
            run,
            input_size,
            padding=self.bbox_padding,
            split_ratio=self.simcc_split_ratio,
            score_mode=self.score_mode,
            min_keypoint_score=self.min_keypoint_score,
        )
        kept = [p for p in poses if p.score >= self.min_pose_score]
        return sorted(kept, key=lambda p: p.score, reverse=True)


def _static_input_size(session: Any) -> tuple[int, int]:
    """(w, h) of an ONNX model's fixed NCHW input; a dynamic one must be given as input_size."""
    shape = session.get_inputs()[0].shape
    if len(shape) != 4 or not all(isinstance(v, int) for v in shape[2:]):
        raise BackendUnavailableError(
            f"the RTMPose model's input shape {shape} has no fixed height and width: pass "
            "input_size=(w, h), e.g. (192, 256)"
        )
    return int(shape[3]), int(shape[2])
