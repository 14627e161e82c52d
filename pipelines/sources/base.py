"""Source readers: where images come from.

A source yields `SourceItem`s (bytes plus provenance) or `IngestFailure`s; it never decides
what is already indexed. Every kind (a local folder, a URL list, a web crawl, Openverse, a
Pinterest board) implements the one `ImageSource` protocol and is built from plain options by
`open_source(kind, options)`, so the ingest asset does not change when a kind is added.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pipelines.images import (
    ImageDecodeError,
    decode_image,
    image_id_of,
    media_type_of,
    thumbnail,
)
from pipelines.pose.medium import medium_of
from pipelines.records import DecodedImage, IngestFailure
from pipelines.sources.dedupe import perceptual_hash
from pipelines.sources.fetcher import FetchPolicy

MAX_FILE_BYTES = 64 * 1024 * 1024

log = logging.getLogger(__name__)


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


CREDITS_FILE = "CREDITS.tsv"
# Column names of a CREDITS.tsv header: the first spelling is the documented one, the others
# are accepted too (other tools write "license" or "page_url").
_CREDIT_COLUMNS = {
    "file": ("file",),
    "licence": ("licence", "license"),
    "attribution": ("attribution", "author", "artist"),
    "page_url": ("source_url", "page_url"),
}


@dataclass(frozen=True)
class Credit:
    """A file's licence, attribution and source page, as a folder's CREDITS.tsv gives them."""

    licence: str | None = None
    attribution: str | None = None
    page_url: str | None = None


def read_credits(path: Path) -> dict[Path, Credit]:
    """The credits a CREDITS.tsv lists, by the resolved path of each file it names.

    A tab-separated file whose header names the columns (`file`, `licence`, `attribution`,
    `source_url`, in any order; others such as `title` are ignored); `file` is relative to the
    CREDITS.tsv's folder. Credits are a courtesy, never a reason to stop indexing: an
    unreadable file, a header without `file`, and bad lines (too few columns, no file name, a
    path outside the folder) are skipped with a warning naming the line.
    """
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("%s: unreadable, its credits are not used: %s", path, exc)
        return {}
    numbered = [
        (number, line)
        for number, line in enumerate(lines, start=1)
        if line.strip() and not line.startswith("#")
    ]
    if not numbered:
        return {}
    header = [name.strip().lower() for name in numbered[0][1].split("\t")]
    columns = {
        field: next((header.index(n) for n in names if n in header), None)
        for field, names in _CREDIT_COLUMNS.items()
    }
    file_column = columns["file"]
    if file_column is None:
        log.warning(
            "%s: the first line must name the columns (file, licence, attribution, "
            "source_url); its credits are not used",
            path,
        )
        return {}
    folder = path.parent.resolve()
    credits: dict[Path, Credit] = {}
    bad: list[int] = []
    for number, line in numbered[1:]:
        cells = [cell.strip() for cell in line.split("\t")]
        name = cells[file_column] if file_column < len(cells) else ""
        target = _inside(folder, name) if len(cells) > 1 else None
        if target is None:
            bad.append(number)
            continue
        licence, attribution, page_url = (
            _cell(cells, columns[field]) for field in ("licence", "attribution", "page_url")
        )
        credits[target] = Credit(licence, attribution, page_url)
    if bad:
        log.warning(
            "%s: %d line(s) skipped (need a file name inside the folder and tab-separated "
            "columns): line %s",
            path,
            len(bad),
            ", ".join(map(str, bad[:10])) + (" …" if len(bad) > 10 else ""),
        )
    return credits


def _inside(folder: Path, name: str) -> Path | None:
    """`folder / name` resolved, or None when that is not a file path below `folder`."""
    if not name:
        return None
    try:
        target = (folder / name).resolve()
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop
        return None
    return target if target != folder and target.is_relative_to(folder) else None


def _cell(cells: list[str], index: int | None) -> str | None:
    return (cells[index] or None) if index is not None and index < len(cells) else None


@dataclass(frozen=True)
class LocalFolderSource:
    """Every regular, non-hidden file under `folder`, recursively, in a stable order.

    Files are judged by their content, not their extension, so a mislabelled file is still
    read and a text file named .jpg is recorded as a failure with its reason. A folder's
    `CREDITS.tsv` (see `read_credits`) is not an image: it gives the files it lists, in that
    folder or below, their licence, attribution and source page; the nearest one wins.
    """

    folder: str
    kind: str = "folder"

    def describe(self) -> str:
        return f"folder {self.folder}"

    def items(self) -> Iterator[SourceItem | IngestFailure]:
        root = Path(self.folder)
        if not root.is_dir():
            raise FileNotFoundError(f"source folder does not exist: {root}")
        credits: dict[Path, Credit] = {}
        # Top-down: a folder's CREDITS.tsv is read before the files of its subfolders.
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            if CREDITS_FILE in filenames:
                credits.update(read_credits(Path(dirpath, CREDITS_FILE)))
            for name in sorted(filenames):
                if name.startswith(".") or name == CREDITS_FILE:
                    continue
                path = Path(dirpath, name)
                resolved = path.resolve()
                uri = str(resolved)
                try:
                    size = path.stat().st_size
                    if size > MAX_FILE_BYTES:
                        yield IngestFailure(uri, f"file too large ({size} bytes)")
                        continue
                    credit = credits.get(resolved, Credit())
                    yield SourceItem(
                        uri,
                        path.read_bytes(),
                        page_url=credit.page_url,
                        licence=credit.licence,
                        attribution=credit.attribution,
                        fetched_at=_now(),
                    )
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
        medium=medium_of(image),
    )


def source_kinds() -> dict[str, type]:
    """Every kind of source by name. The web sources are imported here, on demand."""
    from pipelines.sources.crawler import WebCrawlSource
    from pipelines.sources.openverse import OpenverseSource
    from pipelines.sources.pinterest import PinterestBoardSource
    from pipelines.sources.url_list import UrlListSource

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
