"""Content-addressed store for original image bytes, keyed by their sha256."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_IMAGE_ID = re.compile(r"^[0-9a-f]{64}$")


def is_image_id(value: str) -> bool:
    return bool(_IMAGE_ID.match(value))


def write_atomically(path: Path, data: bytes, prefix: str = ".tmp-") -> Path:
    """Write `data` to `path` through a hidden temporary file in the same folder, so a reader
    (or a folder watcher) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class BlobStore:
    """Originals on local disk under `root/ab/<sha256>`; writes are atomic and idempotent."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_for(self, image_id: str) -> Path:
        if not is_image_id(image_id):
            raise ValueError(f"not an image id (64 hex digits): {image_id!r}")
        return self.root / image_id[:2] / image_id

    def put(self, image_id: str, data: bytes) -> Path:
        path = self.path_for(image_id)
        if path.exists():
            return path
        return write_atomically(path, data)

    def get(self, image_id: str) -> bytes:
        try:
            return self.path_for(image_id).read_bytes()
        except FileNotFoundError:
            raise KeyError(image_id) from None

    def exists(self, image_id: str) -> bool:
        return self.path_for(image_id).exists()
