"""The .tflite models the mediapipe wheel carries, run directly under LiteRT (`WheelModel`).

BlazePose's person detector and landmark model, the hand models and the face detectors all
load this way: fully offline, each on first use (the heavy imports, ai_edge_litert and the
mediapipe package, happen then).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

INTERPRETER_THREADS = 2


def _model_path(relative: str) -> Path:
    """A model file shipped inside the mediapipe wheel (`modules/...`)."""
    try:
        import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - mediapipe is a core dependency
        raise RuntimeError("BlazePose needs mediapipe==0.10.21 installed") from exc
    path = Path(mp.__file__).parent / "modules" / relative
    if not path.is_file():
        raise RuntimeError(f"the mediapipe wheel has no {relative} (looked at {path})")
    return path


def _interpreter(model: Path) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise RuntimeError(
            "the mediapipe backend needs ai-edge-litert installed (it runs the .tflite models "
            "of the mediapipe wheel: multi-person BlazePose and hands)"
        ) from exc
    interpreter = Interpreter(model_path=str(model), num_threads=INTERPRETER_THREADS)
    interpreter.allocate_tensors()
    return interpreter


class WheelModel:
    """One .tflite model of the mediapipe wheel under LiteRT, loaded on first use.

    A LiteRT interpreter holds its tensors between calls, so one input runs at a time.
    """

    def __init__(self, relative_path: str) -> None:
        self.relative_path = relative_path
        self._interpreter: Any = None
        self._lock = threading.Lock()

    def __call__(self, tensor: FloatArray) -> dict[str, FloatArray]:
        """Every output of the model for one input tensor, by output name."""
        with self._lock:
            if self._interpreter is None:
                self._interpreter = _interpreter(_model_path(self.relative_path))
            interpreter = self._interpreter
            inputs = interpreter.get_input_details()[0]
            interpreter.set_tensor(inputs["index"], tensor.astype(np.float32))
            interpreter.invoke()
            return {
                d["name"]: np.array(interpreter.get_tensor(d["index"]), dtype=np.float64)
                for d in interpreter.get_output_details()
            }
