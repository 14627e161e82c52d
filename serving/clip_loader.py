"""Loads the CLIP encoder in the background so the service answers pose queries at once.

Loading real weights takes seconds, and when the model hub is unreachable open_clip can take
~45 s just to fail; the service must not be unavailable for that long.
"""

from __future__ import annotations

import enum
import logging
import threading

from pipelines.clip import ClipEncoder, ClipUnavailableError

log = logging.getLogger(__name__)


class ClipState(enum.StrEnum):
    NOT_STARTED = "not_started"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class ClipLoader:
    """Runs `encoder.load()` once on a daemon thread and reports how it went."""

    def __init__(self, encoder: ClipEncoder) -> None:
        self.encoder = encoder
        self._state = ClipState.NOT_STARTED
        self._error: str | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()

    @property
    def state(self) -> ClipState:
        return self._state

    @property
    def error(self) -> str | None:
        """Why the weights could not be loaded (with how to configure them), once failed."""
        return self._error

    def start(self) -> None:
        """Begin loading unless already begun; safe to call from every request."""
        with self._lock:
            if self._state is not ClipState.NOT_STARTED:
                return
            self._state = ClipState.LOADING
        # Daemon: a hub download still hanging must not keep the process alive at shutdown.
        threading.Thread(target=self._load, name="clip-loader", daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        """Start loading if needed and wait up to `timeout` s; True once loading has ended."""
        self.start()
        return self._done.wait(timeout)

    def _load(self) -> None:
        try:
            self.encoder.load()
        except ClipUnavailableError as exc:
            self._error = str(exc)
            self._state = ClipState.FAILED
        except Exception as exc:  # any other failure must still end "loading" with a reason
            log.exception("loading the CLIP model failed")
            self._error = f"loading the CLIP model failed unexpectedly: {exc!r}"
            self._state = ClipState.FAILED
        else:
            self._state = ClipState.READY
            log.info("CLIP model %s loaded", self.encoder.model_id)
        finally:
            self._done.set()
