"""The watched inbox: files dropped (or uploaded) into a folder become a new ingest batch.

`claim_inbox` moves the settled files out of the inbox into the new batch's own folder, so a
file is claimed once and never makes a second batch. Files whose bytes are already indexed
are removed instead (their bytes are in the blob store): dropping a whole library again
makes a batch of only what is new. Files still being written (modified within `settle_s`) and
hidden files (names starting with `.`, such as an upload's partial file) wait.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path


def inbox_folder(home: Path) -> Path:
    """The watched folder of a PoseFramer home: files dropped or uploaded here become a batch."""
    return home / "inbox"


def claimed_batches_folder(home: Path) -> Path:
    """Where the inbox sensor moves each claimed batch of files (one folder per batch)."""
    return home / "inbox-batches"


MAX_CLAIM_FILES = 2000  # per batch: the rest waits for the next one
MAX_CLAIM_BYTES = 4 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class InboxClaim:
    folder: Path | None  # the new batch's folder; None when nothing new was claimed
    files: list[str] = field(default_factory=list)  # claimed, relative to the inbox
    already_indexed: list[str] = field(default_factory=list)  # removed: bytes already indexed
    waiting: int = 0  # files left for later (still being written, or over the batch limits)


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def settled_files(inbox: Path, settle_s: float, now: float | None = None) -> tuple[list[Path], int]:
    """Non-hidden regular files under `inbox` unmodified for `settle_s`, in a stable order,
    and how many others are still too fresh."""
    now = time.time() if now is None else now
    ready: list[Path] = []
    fresh = 0
    if not inbox.is_dir():
        return ready, fresh
    for dirpath, dirnames, filenames in os.walk(inbox):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath, name)
            try:
                stat = path.stat()
            except OSError:
                continue
            if not path.is_file():
                continue
            if now - stat.st_mtime < settle_s:
                fresh += 1
            else:
                ready.append(path)
    return ready, fresh


def _remove_empty_dirs(inbox: Path, settle_s: float) -> None:
    now = time.time()  # after the moves, which touched the folders
    for dirpath, _, _ in sorted(os.walk(inbox), key=lambda w: -len(w[0])):
        path = Path(dirpath)
        if path == inbox or any(part.startswith(".") for part in path.relative_to(inbox).parts):
            continue
        try:
            # A folder an upload just made may be about to receive its files.
            if now - path.stat().st_mtime >= settle_s and not any(path.iterdir()):
                path.rmdir()
        except OSError:
            continue


def claim_inbox(
    inbox: Path,
    destination: Path,
    known_ids: Callable[[Iterable[str]], set[str]],
    settle_s: float = 10.0,
    now: float | None = None,
    max_files: int = MAX_CLAIM_FILES,
    max_bytes: int = MAX_CLAIM_BYTES,
) -> InboxClaim:
    """Move the inbox's settled, not yet indexed files into `destination` (keeping their
    relative paths); `known_ids(sha256s)` says which bytes are already indexed."""
    now = time.time() if now is None else now
    ready, waiting = settled_files(inbox, settle_s, now)
    chosen: list[Path] = []
    total = 0
    for path in ready:
        size = path.stat().st_size
        if chosen and (len(chosen) >= max_files or total + size > max_bytes):
            waiting += 1
            continue
        chosen.append(path)
        total += size
    hashes = {path: _sha256(path) for path in chosen}
    known = known_ids(hashes.values())
    claimed: list[str] = []
    already: list[str] = []
    for path in chosen:
        relative = path.relative_to(inbox)
        if hashes[path] in known:
            path.unlink(missing_ok=True)
            already.append(relative.as_posix())
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        claimed.append(relative.as_posix())
    _remove_empty_dirs(inbox, settle_s)
    return InboxClaim(destination if claimed else None, claimed, already, waiting)
