"""Where a published version's ANN files live, beside the tables, and how they are found.

The index itself (what the files hold, how they are built and searched) is
`pipelines.retrieval.ann`; this module only keeps its files:

    <db>/_poseframer_ann/search/v<version>/{pose.faiss, clip.faiss, clip.f32, clip_rows.npy,
                                            meta.json}

in the tables' own filesystem (a local directory or S3, through `Store.files()`). The files are
built in a local folder and copied with `meta.json` last, so a folder that lacks it (a publish
killed while copying) holds no index. A service on another machine reads a version's folder
through a local copy, downloaded once per index.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from pipelines.retrieval.ann import FILES, AnnIndex

ANN_DIR = "_poseframer_ann"


def version_dir(root: str, version: int) -> str:
    return f"{root.rstrip('/')}/{ANN_DIR}/search/v{version}"


def save_index(work: Path, fs: pafs.FileSystem, root: str, version: int) -> None:
    """Copy the index files built in the local folder `work` to `version`'s folder, meta.json
    last (its presence says the folder is complete)."""
    target = version_dir(root, version)
    fs.create_dir(target, recursive=True)
    for name in FILES:
        pafs.copy_files(
            str(work / name),
            f"{target}/{name}",
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=fs,
        )


def _local_copy(fs: pafs.FileSystem, folder: str, version: int) -> Path | None:
    """The index folder as a local path: itself on a local filesystem, else a cached download."""
    if isinstance(fs, pafs.LocalFileSystem):
        path = Path(folder)
        return path if (path / "meta.json").is_file() else None
    info = fs.get_file_info(f"{folder}/meta.json")
    if info.type != pafs.FileType.File:
        return None
    with fs.open_input_stream(f"{folder}/meta.json") as src:
        meta = src.read()
    # Keyed by the index's own description too: a rebuilt index is another download.
    key = hashlib.sha256(folder.encode() + b"\0" + meta).hexdigest()[:24]
    local = Path(tempfile.gettempdir()) / "poseframer-ann" / f"{key}-v{version}"
    if not (local / "meta.json").is_file():
        partial = local.with_name(local.name + f".part{os.getpid()}")
        partial.mkdir(parents=True, exist_ok=True)
        # meta.json last, as the writer did.
        for name in FILES:
            pafs.copy_files(
                f"{folder}/{name}",
                str(partial / name),
                source_filesystem=fs,
                destination_filesystem=pafs.LocalFileSystem(),
            )
        with contextlib.suppress(OSError):  # another process got there first
            partial.rename(local)
    return local


def open_index(
    fs: pafs.FileSystem, root: str, version: int, ids: pa.ChunkedArray
) -> AnnIndex | None:
    """The index of `version`, or None when it has none (or one that does not match the rows
    `ids` in scan order)."""
    folder = _local_copy(fs, version_dir(root, version), version)
    return None if folder is None else AnnIndex.open(folder, version, ids)
