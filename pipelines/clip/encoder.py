"""CLIP image and text encoders (open_clip) behind a registry.

Weights come from a pretrained tag (downloaded from the hub by open_clip) or a local
checkpoint path. If they cannot be loaded the encoder says so (`ClipUnavailableError` with
the reason and how to configure weights) instead of falling back to random weights. Random
weights are only used when asked for by name (`pretrained="random"`, for tests), and the
model id then says `random-weights` so no result can pass for real search.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipelines.backends import file_digest
from pipelines.clip.weights import (
    DEFAULT_RETRY_AFTER_S,
    FailureMemo,
    hub_offline,
    locate,
    unreachable,
)
from pipelines.records import FloatArray
from pipelines.registry import Registry

log = logging.getLogger(__name__)

RANDOM_WEIGHTS = "random"
CLIP_STATUS_FILE = "clip-status.json"  # in the PoseFramer home: a remembered load failure
CONFIGURE_HINT = (
    "Set POSEFRAMER_CLIP_PRETRAINED to an open_clip pretrained tag reachable from this machine "
    "or to a local checkpoint file (and POSEFRAMER_CLIP_MODEL to its architecture), then "
    "re-index the CLIP embeddings."
)


class ClipUnavailableError(RuntimeError):
    """CLIP weights could not be loaded; the message gives the reason and the fix.

    `reason` alone is the short form, for a log line or a summary.
    """

    def __init__(self, reason: str, hint: str | None = CONFIGURE_HINT) -> None:
        reason = reason.rstrip(". ")
        super().__init__(f"{reason}. {hint}" if hint else f"{reason}.")
        self.reason = reason


class ClipEncoder(abc.ABC):
    name: str

    @property
    @abc.abstractmethod
    def model_id(self) -> str: ...

    @property
    @abc.abstractmethod
    def dim(self) -> int: ...

    @property
    def random_weights(self) -> bool:
        return False

    @abc.abstractmethod
    def load(self) -> None:
        """Load weights now; raises ClipUnavailableError with the reason when impossible."""

    @abc.abstractmethod
    def encode_images(self, images: list[Image.Image]) -> FloatArray:
        """`(n, dim)` L2-normalised float32 vectors."""

    @abc.abstractmethod
    def encode_texts(self, texts: list[str]) -> FloatArray:
        """`(n, dim)` L2-normalised float32 vectors."""

    def forget_failure(self) -> None:  # noqa: B027 - optional: most encoders keep no failure
        """Let the next `load()` try again after a failure (a long-running service retries)."""

    def available(self) -> bool:
        try:
            self.load()
        except ClipUnavailableError:
            return False
        return True


clip_models: Registry[ClipEncoder] = Registry("CLIP")


@clip_models.register("open-clip")
class OpenClipEncoder(ClipEncoder):
    """An open_clip model: architecture `model`, weights `pretrained` (tag, path or "random").

    `config_path` registers an extra open_clip model config (a JSON file) before building, for
    architectures open_clip does not ship.
    """

    name = "open-clip"

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str = "laion2b_s34b_b79k",
        config_path: str | None = None,
        device: str = "auto",
        batch_size: int = 32,
        status_file: str | None = None,
        retry_after_s: float = DEFAULT_RETRY_AFTER_S,
    ) -> None:
        self.model_name = model
        self.pretrained = pretrained
        self.config_path = config_path
        self.device_option = device
        self.batch_size = batch_size
        self._model: Any = None
        self._preprocess: Any = None
        self._tokenizer: Any = None
        self._device: str = "cpu"
        self._error: str | None = None
        self._lock = threading.Lock()
        # Where a failure to get hub weights is remembered (None: not remembered).
        self._memo = None if status_file is None else FailureMemo(Path(status_file), retry_after_s)

    @property
    def random_weights(self) -> bool:
        return self.pretrained == RANDOM_WEIGHTS

    @property
    def weights_tag(self) -> str:
        if self.random_weights:
            return "random-weights"
        path = Path(self.pretrained)
        if path.is_file():
            return f"sha256-{file_digest(path)}"  # cached per file, size and mtime
        if "/" in self.pretrained:
            # A checkpoint not (yet) there: named by its file, not by where it was looked for
            # (model ids are shown to clients; server paths are not).
            return f"missing-file-{path.name}"
        return self.pretrained

    @property
    def model_id(self) -> str:
        return f"open-clip:{self.model_name}:{self.weights_tag}"

    @property
    def dim(self) -> int:
        self._register_config()
        import open_clip

        config = open_clip.get_model_config(self.model_name)
        if config is None:
            raise ClipUnavailableError(f"open_clip has no model config named {self.model_name!r}")
        return int(config["embed_dim"])

    @property
    def unavailable_reason(self) -> str | None:
        return self._error

    def forget_failure(self) -> None:
        with self._lock:
            self._error = None

    def _register_config(self) -> None:
        if self.config_path:
            import open_clip

            if not Path(self.config_path).is_file():
                raise ClipUnavailableError(f"CLIP model config not found: {self.config_path}", None)
            open_clip.add_model_config(self.config_path)

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            if self._error is not None:
                raise ClipUnavailableError(self._error, None)
            # Only a download is slow enough to be worth remembering a failure of.
            memo = self._memo if self._from_hub else None
            key = f"{self.model_name}|{self.pretrained}|{self.config_path or ''}"
            remembered = None if memo is None else memo.recall(key)
            try:
                if remembered is not None:
                    raise ClipUnavailableError(remembered.describe())
                self._load_locked()
            except ClipUnavailableError as exc:
                self._error = str(exc)
                log.info("CLIP unavailable, text search off: %s", exc.reason)
                if memo is not None and remembered is None:
                    memo.remember(key, exc.reason)
                raise
            if memo is not None:
                memo.forget()

    @property
    def _from_hub(self) -> bool:
        """Weights named by a pretrained tag (a download), not a file or random weights."""
        return (
            not self.random_weights
            and not Path(self.pretrained).is_file()
            and ("/" not in self.pretrained)
        )

    def _load_locked(self) -> None:
        try:
            import open_clip
            import torch
        except ImportError as exc:  # pragma: no cover - core dependencies
            raise ClipUnavailableError(f"open_clip/torch not importable: {exc}") from exc
        self._register_config()
        if open_clip.get_model_config(self.model_name) is None and not self.model_name.startswith(
            "hf-hub:"
        ):
            raise ClipUnavailableError(f"open_clip has no model named {self.model_name!r}")
        if self.device_option == "auto":
            self._device = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            self._device = self.device_option
        pretrained: str | None = None if self.random_weights else self.pretrained
        if pretrained and "/" in pretrained and not Path(pretrained).is_file():
            raise ClipUnavailableError(f"CLIP checkpoint file not found: {pretrained}")
        offline: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if self._from_hub:
            offline = self._check_reachable()
        if self.random_weights:
            # Same random weights in every process, so an index and a service built apart
            # still agree (random weights exist only to exercise the plumbing in tests).
            torch.manual_seed(0)
        try:
            with offline:
                model, _, preprocess = open_clip.create_model_and_transforms(
                    self.model_name, pretrained=pretrained, device=self._device
                )
        except Exception as exc:  # open_clip raises RuntimeError/OSError/HF errors alike
            raise ClipUnavailableError(
                f"could not load CLIP weights {self.pretrained!r} for {self.model_name}: "
                f"{textwrap.shorten(str(exc), 300, placeholder=' …')}"
            ) from exc
        model.eval()
        self._model = model
        self._preprocess = preprocess
        self._tokenizer = open_clip.get_tokenizer(self.model_name)

    def _check_reachable(self) -> contextlib.AbstractContextManager[None]:
        """Fail within about a second when a tag's weights are neither cached nor reachable;
        the context to load them in (offline when they are cached)."""
        where = locate(self.model_name, self.pretrained)
        if where is None:
            raise ClipUnavailableError(
                f"open_clip has no pretrained weights {self.pretrained!r} for {self.model_name}"
            )
        if where.cached:
            return hub_offline()
        problem = None if where.host is None else unreachable(where.host)
        if problem is not None:
            raise ClipUnavailableError(
                f"CLIP weights {self.pretrained!r} for {self.model_name} are not on this "
                f"machine and {where.host} cannot be reached ({problem})"
            )
        return contextlib.nullcontext()

    def encode_images(self, images: list[Image.Image]) -> FloatArray:
        self.load()
        import torch

        out: list[np.ndarray] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            batch = torch.stack([self._preprocess(im.convert("RGB")) for im in chunk])
            with torch.inference_mode():
                feats = self._model.encode_image(batch.to(self._device))
            out.append(_normalise(feats.float().cpu().numpy()))
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def encode_texts(self, texts: list[str]) -> FloatArray:
        self.load()
        import torch

        out: list[np.ndarray] = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self._tokenizer(texts[start : start + self.batch_size])
            with torch.inference_mode():
                feats = self._model.encode_text(tokens.to(self._device))
            out.append(_normalise(feats.float().cpu().numpy()))
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)


def _normalise(x: np.ndarray) -> FloatArray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)
