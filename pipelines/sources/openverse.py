"""Openverse: a search of openly licensed images, their licence and creator kept.

`GET {api_base}/v1/images/?q=…&license=…&page=…` pages through the results; each result's
image (`url`) is then fetched politely like any other web image, with its landing page,
licence ("CC BY 2.0", "CC0 1.0", "Public Domain Mark 1.0") and attribution (Openverse's own
attribution line, which names the title, the creator and the licence) kept as provenance.
The anonymous API serves at most 20 results a page.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pipelines.records import IngestFailure
from pipelines.sources.base import SourceItem, SourceUnavailableError
from pipelines.sources.fetcher import Fetcher, FetchError, FetchPolicy

DEFAULT_API_BASE = "https://api.openverse.org"


def licence_name(result: Mapping[str, Any]) -> str | None:
    """The human name of an Openverse result's licence, e.g. "CC BY-SA 4.0"."""
    code = str(result.get("license") or "").strip().lower()
    version = str(result.get("license_version") or "").strip()
    if not code:
        return None
    if code == "cc0":
        return f"CC0 {version or '1.0'}"
    if code == "pdm":
        return f"Public Domain Mark {version or '1.0'}"
    return f"CC {code.upper()} {version}".strip()


def attribution_of(result: Mapping[str, Any]) -> str | None:
    """Openverse's attribution line, or one made from the title and creator."""
    given = str(result.get("attribution") or "").strip()
    if given:
        return given
    title = str(result.get("title") or "").strip()
    creator = str(result.get("creator") or "").strip()
    parts = [f'"{title}"' if title else "", f"by {creator}" if creator else ""]
    licence = licence_name(result)
    text = " ".join(p for p in parts if p)
    if licence:
        text = f"{text} is licensed under {licence}" if text else f"licensed under {licence}"
    return text or None


@dataclass(frozen=True)
class OpenverseSource:
    """Up to `max_images` images matching `query`, optionally only under `licences`
    (Openverse codes: cc0, pdm, by, by-sa, by-nc, …) or a `licence_type` (commercial,
    modification, all-cc). `filters` adds other API parameters (source, category, size…)."""

    query: str
    licences: tuple[str, ...] = ()
    licence_type: str | None = None
    max_images: int = 100
    page_size: int = 20
    api_base: str = DEFAULT_API_BASE
    filters: Mapping[str, str] = field(default_factory=dict)
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    kind: ClassVar[str] = "openverse"

    def __post_init__(self) -> None:
        if isinstance(self.licences, str):
            object.__setattr__(self, "licences", (self.licences,))
        if not self.query.strip():
            raise ValueError("an Openverse source needs a query")
        if self.max_images < 1 or not 1 <= self.page_size <= 500:
            raise ValueError("max_images must be ≥ 1 and page_size between 1 and 500")
        if not self.api_base.startswith(("http://", "https://")):
            raise ValueError(f"api_base {self.api_base!r} is not an http(s) URL")

    def describe(self) -> str:
        licences = f" ({', '.join(self.licences)})" if self.licences else ""
        return f"Openverse search {self.query!r}{licences}"

    def _params(self, page: int) -> dict[str, Any]:
        return {
            "q": self.query,
            "license": ",".join(self.licences) or None,
            "license_type": self.licence_type,
            "page_size": self.page_size,
            "page": page,
            "mature": "false",
            **dict(self.filters),
        }

    def items(self) -> Iterator[SourceItem | IngestFailure]:
        endpoint = f"{self.api_base.rstrip('/')}/v1/images/"
        taken = 0
        page = 1
        with Fetcher(self.fetch) as fetcher:
            while taken < self.max_images:
                try:
                    answer = fetcher.fetch_json(endpoint, self._params(page))
                except FetchError as exc:
                    if page == 1:
                        raise SourceUnavailableError(
                            f"Openverse search {self.query!r} failed: {exc}"
                        ) from None
                    yield IngestFailure(f"{endpoint}?page={page}", f"Openverse page: {exc}")
                    return
                results = answer.get("results") if isinstance(answer, dict) else None
                if not results:
                    return
                for result in results:
                    if taken >= self.max_images:
                        return
                    taken += 1
                    url = str(result.get("url") or "")
                    if not url:
                        yield IngestFailure(
                            f"openverse:{result.get('id', '?')}", "result without an image URL"
                        )
                        continue
                    try:
                        fetched = fetcher.fetch_image(url)
                    except FetchError as exc:
                        yield IngestFailure(url, str(exc))
                        continue
                    yield SourceItem(
                        source_uri=fetched.url,
                        data=fetched.data,
                        page_url=result.get("foreign_landing_url") or None,
                        licence=licence_name(result),
                        attribution=attribution_of(result),
                        fetched_at=fetched.fetched_at,
                    )
                if page >= int(answer.get("page_count") or 0):
                    return
                page += 1
