"""Source readers: where images come from.

A source yields `SourceItem`s (bytes plus provenance) or `IngestFailure`s; it never decides
what is already indexed. Later sources (URL lists, crawlers, Openverse) implement the same
`ImageSource` protocol, so the ingest asset does not change when one is added.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipelines.images import (
    ImageDecodeError,
    decode_image,
    image_id_of,
    media_type_of,
    thumbnail,
)
from pipelines.records import DecodedImage, IngestFailure

MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SourceItem:
    source_uri: str
    data: bytes


class ImageSource(Protocol):
    @property
    def kind(self) -> str:
        """What sort of source this is (folder, urls, …), as stored with each image."""
        ...

    def describe(self) -> str: ...

    def items(self) -> Iterator[SourceItem | IngestFailure]: ...


@dataclass(frozen=True)
class LocalFolderSource:
    """Every regular, non-hidden file under `folder`, recursively, in a stable order.

    Files are judged by their content, not their extension, so a mislabelled file is still
    read and a text file named .jpg is recorded as a failure with its reason.
    """

    folder: str
    kind: str = "folder"

    def describe(self) -> str:
        return f"folder {self.folder}"

    def items(self) -> Iterator[SourceItem | IngestFailure]:
        root = Path(self.folder)
        if not root.is_dir():
            raise FileNotFoundError(f"source folder does not exist: {root}")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = Path(dirpath, name)
                uri = str(path.resolve())
                try:
                    size = path.stat().st_size
                    if size > MAX_FILE_BYTES:
                        yield IngestFailure(uri, f"file too large ({size} bytes)")
                        continue
                    yield SourceItem(uri, path.read_bytes())
                except OSError as exc:
                    yield IngestFailure(uri, f"unreadable: {exc.strerror or exc}")


def decode_item(item: SourceItem) -> DecodedImage | IngestFailure:
    """Validate a source item as an image and make its thumbnail; a failure carries the reason."""
    try:
        image, fmt = decode_image(item.data)
    except ImageDecodeError as exc:
        return IngestFailure(item.source_uri, str(exc))
    return DecodedImage(
        image_id=image_id_of(item.data),
        source_uri=item.source_uri,
        data=item.data,
        width=image.width,
        height=image.height,
        format=fmt,
        media_type=media_type_of(fmt),
        thumbnail=thumbnail(image),
    )
