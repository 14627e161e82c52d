"""Optional model backends: each needs a package or weights that the default install lacks.

Importing a backend module registers it (in `keypoint_models` or `pose_models`) without
importing its heavy package. Selecting one (`load(name, **options)`) checks, cheaply, that its
package can be imported and its weight files exist, and otherwise raises
`BackendUnavailableError` listing everything that is missing and how to provide it, so a
misconfigured deployment fails when the model is chosen rather than deep inside a run.

This package deliberately imports none of its backend modules: `pipelines.pose.keypoints` and
`pipelines.pose.embedding` import them to register them, and the backends import those
modules for their base classes.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

DIGEST_LENGTH = 12


class BackendUnavailableError(RuntimeError):
    """A backend was selected whose package or weights are not available here."""


def package_missing(module: str) -> bool:
    """Whether `module` cannot be imported, found without importing it (which may be slow)."""
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def missing_file_problem(option: str, value: str | Path | None, what: str) -> str | None:
    """Why the file option `option` is unusable, or None when it names an existing file."""
    if value is None or str(value) == "":
        return f"{option} is not set: give {what}"
    if not Path(value).expanduser().is_file():
        return f"{option}={str(value)!r} is not a file: give {what}"
    return None


def raise_if_unavailable(backend: str, kind: str, problems: list[str], how_to_select: str) -> None:
    """Raise `BackendUnavailableError` naming every problem when there is any."""
    if not problems:
        return
    lines = "\n".join(f"  - {p}" for p in problems)
    raise BackendUnavailableError(
        f"the {backend!r} {kind} backend cannot run here:\n{lines}\n{how_to_select}"
    )


def file_digest(path: str | Path) -> str:
    """The first hex digits of the sha256 of a weights file: the weights tag of a model id.

    A checksum, not the path or the modification time, so the same weights copied elsewhere
    keep their id and different weights under the same name get a new one. Cached per
    (path, size, mtime) because model ids are read often and checkpoints can be gigabytes.
    """
    resolved = Path(path).expanduser().resolve()
    stat = resolved.stat()
    return _digest(str(resolved), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:DIGEST_LENGTH]
