"""Loads the service's models in the background at startup, so it answers at once.

Loading CLIP weights takes seconds, and the keypoint models a second or two; the service
must not be unavailable meanwhile. `/health` says `loading` until every load has ended, a
query that needs a model still loading waits for it (bounded), and a failed CLIP load is
tried again after the configured interval.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable

from pipelines.clip.encoder import ClipEncoder, ClipUnavailableError

log = logging.getLogger(__name__)


class LoadState(enum.StrEnum):
    NOT_STARTED = "not_started"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class BackgroundLoad:
    """Runs `load()` once on a daemon thread and reports how it went."""

    def __init__(self, what: str, load: Callable[[], None], retry_after_s: float | None = None):
        self.what = what
        self._load_fn = load
        self.retry_after_s = retry_after_s  # None: a failure is final for this process
        self._state = LoadState.NOT_STARTED
        self._error: str | None = None
        self._failed_at = 0.0
        self._done = threading.Event()
        self._lock = threading.Lock()

    @property
    def state(self) -> LoadState:
        return self._state

    @property
    def error(self) -> str | None:
        """Why loading failed (with how to fix it), once it has."""
        return self._error

    @property
    def pending(self) -> bool:
        return self._state in (LoadState.NOT_STARTED, LoadState.LOADING)

    def retry_in(self) -> float | None:
        """Seconds until a failed load is tried again (None: not failed, or never again)."""
        if self._state is not LoadState.FAILED or self.retry_after_s is None:
            return None
        return max(0.0, self._failed_at + self.retry_after_s - time.monotonic())

    def start(self) -> None:
        """Begin loading unless begun (or again, once a failure is old enough); safe to call
        from every request."""
        with self._lock:
            if self._state is LoadState.FAILED and self.retry_in() == 0.0:
                self._retry()
            elif self._state is not LoadState.NOT_STARTED:
                return
            self._state = LoadState.LOADING
            self._done.clear()
        # Daemon: a hub download still hanging must not keep the process alive at shutdown.
        threading.Thread(target=self._run, name=f"load-{self.what}", daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        """Start loading if needed and wait up to `timeout` s; True once loading has ended."""
        self.start()
        return self._done.wait(timeout)

    def _retry(self) -> None:
        """Hook: forget a failure before loading again."""

    def _run(self) -> None:
        try:
            self._load_fn()
        except Exception as exc:  # any failure must still end "loading", with a reason
            self._error = self._describe(exc)
            self._failed_at = time.monotonic()
            self._state = LoadState.FAILED
        else:
            self._error = None
            self._state = LoadState.READY
            log.info("%s loaded", self.what)
        finally:
            self._done.set()

    def _describe(self, exc: Exception) -> str:
        log.error("loading %s failed", self.what, exc_info=exc)
        return f"loading {self.what} failed unexpectedly: {exc!r}"


class ClipLoader(BackgroundLoad):
    """The CLIP encoder's load: text search is off while it is loading or has failed."""

    def __init__(self, encoder: ClipEncoder, retry_after_s: float | None = None) -> None:
        super().__init__("CLIP", encoder.load, retry_after_s)
        self.encoder = encoder

    def _retry(self) -> None:
        self.encoder.forget_failure()

    def _describe(self, exc: Exception) -> str:
        if isinstance(exc, ClipUnavailableError):
            # The one line the service says about it; clients get the reason and the fix.
            log.warning("text search off: %s", exc.reason)
            return str(exc)
        return super()._describe(exc)
