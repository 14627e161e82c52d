"""Where CLIP weights come from, found out in about a second, and failures remembered.

open_clip fetches a pretrained tag from the model hub (or a URL) on first use. Offline, that
costs tens of seconds of retries per file, in every process that tries. So before asking
open_clip, look in the local caches; when the weights are not there, probe the hub's host
with a short timeout; and remember a failure in a small JSON file (in the PoseFramer home),
so the next process says so at once instead of retrying. The memory expires after a
configurable interval and does not apply once the CLIP settings change.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

PROBE_TIMEOUT_S = 1.0
DEFAULT_RETRY_AFTER_S = 3600.0
HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"


@dataclass(frozen=True)
class WeightsLocation:
    """Where open_clip would get a pretrained tag's weights, and whether they are here."""

    cached: bool  # already on this machine: loading needs no network
    host: str | None  # the host a download would contact
    describe: str  # e.g. "laion/CLIP-ViT-B-32-laion2B-s34B-b79K on the model hub"


def locate(model: str, tag: str) -> WeightsLocation | None:
    """How open_clip would load `tag` for `model`; None when open_clip has no such tag."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model, tag)
    if not cfg:
        return None
    if cfg.get("file"):
        return WeightsLocation(Path(cfg["file"]).is_file(), None, "a local file")
    hub = str(cfg.get("hf_hub") or "")
    if hub:
        repo, filename = os.path.split(hub)
        return WeightsLocation(
            _in_hub_cache(repo, filename or HF_WEIGHTS_NAME),
            urlsplit(_hub_endpoint()).hostname,
            f"{repo} on the model hub",
        )
    url = str(cfg.get("url") or "")
    cached = (Path.home() / ".cache" / "clip" / os.path.basename(url)).is_file()
    return WeightsLocation(cached, urlsplit(url).hostname, url)


def _hub_endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def _in_hub_cache(repo: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    # open_clip prefers a .safetensors twin of a .bin file when the hub has one.
    names = [filename]
    if filename.endswith(".bin"):
        names.insert(0, filename.removesuffix(".bin") + ".safetensors")
    return any(isinstance(try_to_load_from_cache(repo, name), str) for name in names)


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Load cached hub files without the hub's network round trips (and their retries)."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def unreachable(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why `host` cannot be reached within `timeout` seconds (name lookup included), or None."""
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except OSError as exc:
            outcome.append(exc.strerror or type(exc).__name__)

    # A thread, because a name lookup ignores the socket timeout and can hang for long.
    worker = threading.Thread(target=probe, name="clip-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    if not outcome:
        return f"no answer within {timeout:g} s"
    return outcome[0]


@dataclass(frozen=True)
class RememberedFailure:
    reason: str
    failed_at: float  # unix time
    retry_at: float

    def describe(self) -> str:
        when = datetime.fromtimestamp(self.retry_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"{self.reason} (remembered; tried again after {when} or when the CLIP settings change)"
        )


class FailureMemo:
    """The last CLIP load failure of a home, for the settings `key` it happened with."""

    def __init__(self, path: Path, retry_after_s: float = DEFAULT_RETRY_AFTER_S) -> None:
        self.path = path
        self.retry_after_s = retry_after_s

    def recall(self, key: str, now: float | None = None) -> RememberedFailure | None:
        """The remembered failure for `key`, unless it is too old to trust or is not there."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("key") != key:
                return None  # the settings changed since: try them
            failed_at = float(data["failed_at"])
            reason = str(data["reason"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # nothing remembered, or an unreadable file: try again
        retry_at = failed_at + self.retry_after_s
        if (now if now is not None else time.time()) >= retry_at:
            return None
        return RememberedFailure(reason, failed_at, retry_at)

    def remember(self, key: str, reason: str, now: float | None = None) -> None:
        payload = {
            "key": key,
            "reason": reason,
            "failed_at": now if now is not None else time.time(),
            "note": "CLIP weights could not be loaded with these settings; delete this file "
            "to try again now",
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            partial.write_text(json.dumps(payload, indent=2), encoding="utf-8")
            partial.replace(self.path)  # atomic: a reader never sees half a file
        except OSError:
            pass  # a read-only home: the failure is just not remembered

    def forget(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
