"""A Pinterest board (the seed project's source), through the optional `pinterest-dl` package.

`pip install 'poseframer[pinterest]'` adds it. pinterest-dl lists the board's pins (image URL,
pin page, alt text); the images themselves are fetched by our own polite `Fetcher`, like every
other web image. Pins carry no licence: it is stored as unknown (null).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pipelines.records import IngestFailure
from pipelines.sources.base import SourceItem, SourceUnavailableError
from pipelines.sources.fetcher import Fetcher, FetchError, FetchPolicy

INSTALL_HINT = "pip install 'poseframer[pinterest]' (the pinterest-dl package)"


@dataclass(frozen=True)
class Pin:
    image_url: str
    pin_url: str | None
    description: str | None


def _field(media: Any, name: str) -> Any:
    if isinstance(media, dict):
        return media.get(name)
    return getattr(media, name, None)


def pins_from_media(media: Iterable[Any]) -> list[Pin | IngestFailure]:
    """pinterest-dl's scraped media (objects or their `to_dict()` form) as pins."""
    out: list[Pin | IngestFailure] = []
    for item in media:
        src = str(_field(item, "src") or "").strip()
        origin = str(_field(item, "origin") or "").strip() or None
        if not src or urlsplit(src).scheme not in ("http", "https"):
            out.append(
                IngestFailure(
                    origin or f"pinterest:{_field(item, 'id')}", "pin without an image URL"
                )
            )
            continue
        alt = str(_field(item, "alt") or "").strip() or None
        out.append(Pin(src, origin, alt))
    return out


def _scrape_with_pinterest_dl(board_url: str, limit: int, timeout: float) -> list[Any]:
    try:
        from pinterest_dl import PinterestDL
    except ImportError:
        raise SourceUnavailableError(
            f"the pinterest source needs the optional extra: {INSTALL_HINT}"
        ) from None
    return list(
        PinterestDL.with_api(timeout=timeout, verbose=False).scrape(url=board_url, num=limit)
    )


@dataclass(frozen=True)
class PinterestBoardSource:
    """Up to `max_images` pins of the board (or pin, or search) at `board_url`."""

    board_url: str
    max_images: int = 100
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    # The scraper seam: (board_url, limit, timeout) → pinterest-dl media. Tests pass a fake.
    scrape: Callable[[str, int, float], list[Any]] = field(
        default=_scrape_with_pinterest_dl, repr=False, compare=False, metadata={"internal": True}
    )
    kind: ClassVar[str] = "pinterest"

    def __post_init__(self) -> None:
        host = (urlsplit(self.board_url).hostname or "").lower()
        if not (host == "pin.it" or host.endswith("pinterest.com") or "pinterest." in host):
            raise ValueError(f"{self.board_url!r} is not a Pinterest URL")
        if self.max_images < 1:
            raise ValueError("max_images must be ≥ 1")

    def describe(self) -> str:
        return f"Pinterest {self.board_url}"

    def pins(self) -> list[Pin | IngestFailure]:
        try:
            media = self.scrape(self.board_url, self.max_images, self.fetch.read_timeout_s)
        except SourceUnavailableError:
            raise
        except Exception as exc:  # pinterest-dl raises many kinds; the board is unreadable
            raise SourceUnavailableError(
                f"Pinterest board {self.board_url} could not be listed: {type(exc).__name__}: {exc}"
            ) from None
        return pins_from_media(media)[: self.max_images]

    def items(self) -> Iterator[SourceItem | IngestFailure]:
        pins = self.pins()
        with Fetcher(self.fetch) as fetcher:
            for pin in pins:
                if isinstance(pin, IngestFailure):
                    yield pin
                    continue
                try:
                    fetched = fetcher.fetch_image(pin.image_url)
                except FetchError as exc:
                    yield IngestFailure(pin.image_url, str(exc))
                    continue
                yield SourceItem(
                    source_uri=fetched.url,
                    data=fetched.data,
                    page_url=pin.pin_url,
                    licence=None,
                    attribution=f"saved on Pinterest: {pin.pin_url}" if pin.pin_url else None,
                    fetched_at=fetched.fetched_at,
                )
