"""A list of image URLs in a file: plain text, CSV or JSON lines.

- `.txt`: one URL per line; blank lines and lines starting with `#` are skipped.
- `.csv`: a header row naming a `url` column, and optionally `page_url`, `licence` (or
  `license`) and `attribution`.
- `.jsonl` / `.ndjson`: one object per line with the same keys.

Each URL is fetched politely (robots.txt, X-Robots-Tag, rate limit, retries, size and type
checks: see `pipelines.sources.fetcher`); a line that cannot be read or fetched becomes an
`IngestFailure` with the reason.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pipelines.records import IngestFailure
from pipelines.sources.base import SourceItem
from pipelines.sources.fetcher import Fetcher, FetchError, FetchPolicy

MAX_LIST_BYTES = 64 * 1024 * 1024
_FORMATS = {".txt": "txt", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class UrlEntry:
    url: str
    page_url: str | None = None
    licence: str | None = None
    attribution: str | None = None


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _entry(record: dict[str, object]) -> UrlEntry:
    keys = {str(k).strip().lower(): v for k, v in record.items() if k is not None}
    url = _text(keys.get("url"))
    if not url:
        raise ValueError("no url")
    return UrlEntry(
        url=url,
        page_url=_text(keys.get("page_url")),
        licence=_text(keys.get("licence", keys.get("license"))),
        attribution=_text(keys.get("attribution")),
    )


def parse_url_list(text: str, fmt: str, name: str) -> Iterator[UrlEntry | IngestFailure]:
    """Entries of a URL list in format `fmt` (txt, csv, jsonl); bad lines are failures
    named `name:line`."""
    if fmt == "txt":
        for line in text.splitlines():
            url = line.strip()
            if url and not url.startswith("#"):
                yield UrlEntry(url)
    elif fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        columns = {c.strip().lower() for c in reader.fieldnames or []}
        if "url" not in columns:
            raise ValueError(f"{name}: a CSV URL list needs a header row with a `url` column")
        for row in reader:
            try:
                yield _entry(row)
            except ValueError as exc:
                yield IngestFailure(f"{name}:{reader.line_num}", f"bad line: {exc}")
    elif fmt == "jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                yield _entry(record)
            except ValueError as exc:
                yield IngestFailure(f"{name}:{number}", f"bad line: {exc}")
    else:
        raise ValueError(f"unknown URL list format {fmt!r}: use txt, csv or jsonl")


@dataclass(frozen=True)
class UrlListSource:
    """The images listed in `path`; `format` defaults to the file's extension."""

    path: str
    format: str | None = None
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    kind: ClassVar[str] = "urls"

    def __post_init__(self) -> None:
        fmt = self.format or _FORMATS.get(Path(self.path).suffix.lower())
        if fmt not in ("txt", "csv", "jsonl"):
            raise ValueError(
                f"cannot tell the format of URL list {self.path}: name it .txt, .csv or "
                ".jsonl, or set format"
            )

    def describe(self) -> str:
        return f"URL list {self.path}"

    def entries(self) -> Iterator[UrlEntry | IngestFailure]:
        path = Path(self.path)
        if not path.is_file():
            raise FileNotFoundError(f"URL list does not exist: {path}")
        if path.stat().st_size > MAX_LIST_BYTES:
            raise ValueError(f"URL list {path} is larger than {MAX_LIST_BYTES} bytes")
        fmt = self.format or _FORMATS[path.suffix.lower()]
        text = path.read_text(encoding="utf-8-sig", errors="replace")
        yield from parse_url_list(text, fmt, str(path))

    def items(self) -> Iterator[SourceItem | IngestFailure]:
        seen: set[str] = set()
        with Fetcher(self.fetch) as fetcher:
            for entry in self.entries():
                if isinstance(entry, IngestFailure):
                    yield entry
                    continue
                if entry.url in seen:
                    continue
                seen.add(entry.url)
                try:
                    fetched = fetcher.fetch_image(entry.url)
                except FetchError as exc:
                    yield IngestFailure(entry.url, str(exc))
                    continue
                yield SourceItem(
                    source_uri=fetched.url,
                    data=fetched.data,
                    page_url=entry.page_url,
                    licence=entry.licence,
                    attribution=entry.attribution,
                    fetched_at=fetched.fetched_at,
                )
