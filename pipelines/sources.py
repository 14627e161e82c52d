"""Source readers: where images come from.

A source yields `SourceItem`s (bytes plus provenance) or `IngestFailure`s; it never decides
what is already indexed. Every kind (a local folder, a URL list, a web crawl, Openverse, a
Pinterest board) implements the one `ImageSource` protocol and is built from plain options by
`open_source(kind, options)`, so the ingest asset does not change when a kind is added.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pipelines.dedupe import perceptual_hash
from pipelines.fetcher import FetchPolicy
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
    """The bytes of one candidate image and where they came from."""

    source_uri: str  # the file path or the URL the bytes were read from
    data: bytes
    page_url: str | None = None  # the page the image was found on
    licence: str | None = None
    attribution: str | None = None
    fetched_at: datetime | None = None


class ImageSource(Protocol):
    @property
    def kind(self) -> str:
        """What sort of source this is (folder, urls, …), as stored with each image."""
        ...

    def describe(self) -> str: ...

    def items(self) -> Iterator[SourceItem | IngestFailure]: ...


class SourceConfigError(ValueError):
    """Options that do not describe a source; the message says which and why."""


class SourceUnavailableError(RuntimeError):
    """A source that could not be listed at all (its API is down, a package is missing)."""


def _now() -> datetime:
    return datetime.now(UTC)


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
                    yield SourceItem(uri, path.read_bytes(), fetched_at=_now())
                except OSError as exc:
                    yield IngestFailure(uri, f"unreadable: {exc.strerror or exc}")


def decode_item(item: SourceItem) -> DecodedImage | IngestFailure:
    """Validate a source item as an image and make its thumbnail and perceptual hash; a
    failure carries the reason."""
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
        page_url=item.page_url,
        licence=item.licence,
        attribution=item.attribution,
        fetched_at=item.fetched_at,
        phash=perceptual_hash(image),
    )


def source_kinds() -> dict[str, type]:
    """Every kind of source by name. The web sources are imported here, on demand."""
    from pipelines.crawler import WebCrawlSource
    from pipelines.openverse import OpenverseSource
    from pipelines.pinterest import PinterestBoardSource
    from pipelines.url_list import UrlListSource

    return {
        "folder": LocalFolderSource,
        "inbox": LocalFolderSource,  # a batch of files claimed from the watched inbox
        "urls": UrlListSource,
        "crawl": WebCrawlSource,
        "openverse": OpenverseSource,
        "pinterest": PinterestBoardSource,
    }


def open_source(kind: str, options: Mapping[str, Any]) -> ImageSource:
    """Build the source of `kind` from plain options (as configured, or stored with a batch).

    Construction is cheap and touches no network: it only validates the options. Lists become
    tuples and a `fetch` mapping becomes a `FetchPolicy`.
    """
    kinds = source_kinds()
    cls = kinds.get(kind)
    if cls is None:
        raise SourceConfigError(
            f"unknown source kind {kind!r}; valid kinds: {', '.join(sorted(kinds))}"
        )
    init_fields = {f.name for f in dataclasses.fields(cls) if f.init}
    internal = {f.name for f in dataclasses.fields(cls) if f.metadata.get("internal")}
    accepted = init_fields - internal - {"kind"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise SourceConfigError(
            f"{kind} source: unknown option(s) {', '.join(unknown)}; "
            f"valid options: {', '.join(sorted(accepted))}"
        )
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    if isinstance(values.get("fetch"), Mapping):
        try:
            values["fetch"] = FetchPolicy(**values["fetch"])
        except TypeError as exc:
            raise SourceConfigError(f"{kind} source: fetch: {exc}") from None
    if "kind" in init_fields:
        values["kind"] = kind
    try:
        source: ImageSource = cls(**values)
    except (TypeError, ValueError) as exc:
        raise SourceConfigError(f"{kind} source: {exc}") from None
    return source
