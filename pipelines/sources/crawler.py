"""A small polite web crawler: seed pages → the images on them.

From each page it takes every `<img>` (the largest `srcset` candidate when there is one,
otherwise `src`), the largest candidate of each `<picture>`, and `og:image`; it follows
same-site links (`<a href>`) breadth-first to `depth` (0: the seed pages only). robots.txt,
per-host spacing, retries, timeouts, byte caps and the image checks are the `Fetcher`'s. A page
whose meta robots or X-Robots-Tag says noai / noimageai / noindex gives no images, and one that
says nofollow gives no links. A page's `<link rel="license">` becomes the licence of its images,
and its `<meta name="author">` their attribution, unless the source configures its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import ClassVar
from urllib.parse import urljoin, urlsplit

from pipelines.records import IngestFailure
from pipelines.sources.base import SourceItem
from pipelines.sources.fetcher import Fetcher, FetchError, FetchPolicy, normalise_url
from pipelines.sources.robots_tags import BLOCKING_DIRECTIVES, robots_directives

# Links to these are files, not pages: never fetched as pages.
_NOT_PAGES = (
    *(".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".svg", ".avif", ".ico"),
    *(".pdf", ".zip", ".gz", ".tgz", ".mp3", ".mp4", ".webm", ".mov"),
    *(".css", ".js", ".json", ".xml", ".woff", ".woff2"),
)
_OG_IMAGE = frozenset({"og:image", "og:image:url", "og:image:secure_url"})
# <picture><source type=…> we can decode; other types (avif, jxl, svg) are skipped.
_DECODABLE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"})


def parse_srcset(value: str) -> list[tuple[str, str]]:
    """`(url, descriptor)` candidates of a srcset, per the HTML spec's splitting rules
    (a URL may contain commas; a candidate ends at the comma after its descriptor)."""
    out: list[tuple[str, str]] = []
    pos, n = 0, len(value)
    while pos < n:
        while pos < n and (value[pos].isspace() or value[pos] == ","):
            pos += 1
        if pos >= n:
            break
        start = pos
        while pos < n and not value[pos].isspace():
            pos += 1
        url = value[start:pos]
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            start = pos
            while pos < n and value[pos] != ",":
                pos += 1
            descriptor = value[start:pos].strip()
        if url:
            out.append((url, descriptor))
    return out


def _size_of(descriptor: str) -> tuple[int, float]:
    """Sort key of a srcset descriptor: widths (`800w`) before densities (`2x`), larger last."""
    text = descriptor.strip().lower()
    try:
        if text.endswith("w"):
            return 1, float(text[:-1])
        if text.endswith("x"):
            return 0, float(text[:-1])
    except ValueError:
        pass
    return 0, 1.0  # no descriptor means 1x


def largest_candidate(srcset: str) -> str | None:
    candidates = parse_srcset(srcset)
    if not candidates:
        return None
    return max(candidates, key=lambda c: _size_of(c[1]))[0]


@dataclass
class ParsedPage:
    images: list[str] = field(default_factory=list)  # absolute, in document order, unique
    links: list[str] = field(default_factory=list)  # absolute, not nofollow
    robots: set[str] = field(default_factory=set)  # meta robots directives for us
    licence: str | None = None
    author: str | None = None


class _PageParser(HTMLParser):
    def __init__(self, token: str) -> None:
        super().__init__(convert_charrefs=True)
        self.token = token
        self.base: str | None = None
        self.raw_images: list[str] = []
        self.raw_links: list[str] = []
        self.robots: set[str] = set()
        self.licence: str | None = None
        self.author: str | None = None
        self._picture: list[tuple[str, str]] | None = None  # candidates of an open <picture>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "").strip() for k, v in attrs}
        rel = a.get("rel", "").lower().split()
        if tag == "base" and a.get("href") and self.base is None:
            self.base = a["href"]
        elif tag == "picture":
            self._picture = []
        elif tag == "source" and self._picture is not None:
            kind = a.get("type", "").lower()
            if a.get("srcset") and (not kind or kind in _DECODABLE_TYPES):
                self._picture.extend(parse_srcset(a["srcset"]))
        elif tag == "img":
            self._img(a)
        elif tag == "meta":
            self._meta(a)
        elif tag in ("a", "area") and a.get("href"):
            if "license" in rel and self.licence is None:
                self.licence = a["href"]
            if "nofollow" not in rel:
                self.raw_links.append(a["href"])
        elif tag == "link" and "license" in rel and a.get("href") and self.licence is None:
            self.licence = a["href"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "picture" and self._picture is not None:
            if self._picture:
                self.raw_images.append(max(self._picture, key=lambda c: _size_of(c[1]))[0])
            self._picture = None

    def _img(self, a: dict[str, str]) -> None:
        srcset = a.get("srcset") or a.get("data-srcset") or ""
        src = a.get("src") or ""
        if not src or src.startswith("data:"):
            src = a.get("data-src") or ""
        candidates = parse_srcset(srcset)
        if self._picture is not None:
            # The <img> of a <picture> is one more candidate of the same picture.
            self._picture.extend(candidates or ([(src, "")] if src else []))
            return
        best = largest_candidate(srcset) if candidates else src
        if best:
            self.raw_images.append(best)

    def _meta(self, a: dict[str, str]) -> None:
        key = (a.get("property") or a.get("name") or "").lower()
        content = a.get("content", "")
        if key in _OG_IMAGE and content:
            self.raw_images.append(content)
        elif key in ("robots", self.token) and content:
            self.robots.update(d.strip().lower() for d in content.split(","))
        elif key == "author" and content and self.author is None:
            self.author = content


def parse_page(html: str, page_url: str, token: str = "poseframerbot") -> ParsedPage:
    """The images, links and robots directives of an HTML page, as absolute URLs."""
    parser = _PageParser(token)
    parser.feed(html)
    parser.close()
    base = urljoin(page_url, parser.base) if parser.base else page_url

    def absolute(values: list[str]) -> list[str]:
        out: dict[str, None] = {}
        for raw in values:
            if raw.startswith(("data:", "javascript:", "mailto:", "#")):
                continue
            url = urljoin(base, raw)
            if urlsplit(url).scheme in ("http", "https"):
                out.setdefault(normalise_url(url), None)
        return list(out)

    return ParsedPage(
        images=absolute(parser.raw_images),
        links=absolute(parser.raw_links),
        robots=parser.robots,
        licence=urljoin(base, parser.licence) if parser.licence else None,
        author=parser.author,
    )


def _site(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def _is_file_link(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(_NOT_PAGES)


@dataclass(frozen=True)
class WebCrawlSource:
    """Images on `seeds` and the same-site pages they link to, up to `depth` links away."""

    seeds: tuple[str, ...]
    depth: int = 1
    max_pages: int = 100
    max_images: int = 500
    same_site: bool = True  # follow links only to the seeds' hosts (www. or not)
    licence: str | None = None  # for every image, over what the pages say
    attribution: str | None = None
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    kind: ClassVar[str] = "crawl"

    def __post_init__(self) -> None:
        if isinstance(self.seeds, str):
            object.__setattr__(self, "seeds", (self.seeds,))
        if not self.seeds:
            raise ValueError("a crawl needs at least one seed URL")
        for seed in self.seeds:
            if urlsplit(seed).scheme not in ("http", "https") or not urlsplit(seed).netloc:
                raise ValueError(f"seed {seed!r} is not an http(s) URL")
        if self.depth < 0 or self.max_pages < 1 or self.max_images < 1:
            raise ValueError("depth must be ≥ 0, max_pages and max_images ≥ 1")

    def describe(self) -> str:
        return f"crawl of {', '.join(self.seeds)} (depth {self.depth})"

    def items(self) -> Iterator[SourceItem | IngestFailure]:
        sites = {_site(s) for s in self.seeds}
        queue: deque[tuple[str, int]] = deque((normalise_url(s), 0) for s in self.seeds)
        seen_pages = {url for url, _ in queue}
        seen_images: set[str] = set()
        pages = images = 0
        with Fetcher(self.fetch) as fetcher:
            token = fetcher.policy.robots_token
            while queue and pages < self.max_pages and images < self.max_images:
                url, depth = queue.popleft()
                try:
                    page = fetcher.fetch_page(url)
                except FetchError as exc:
                    yield IngestFailure(url, f"page: {exc}")
                    continue
                pages += 1
                seen_pages.add(normalise_url(page.url))
                parsed = parse_page(page.text(), page.url, token)
                directives = parsed.robots | robots_directives(list(page.robots_tags), token)
                blocked = sorted(directives & BLOCKING_DIRECTIVES)
                if blocked and parsed.images:
                    yield IngestFailure(
                        page.url, f"page: images not taken: robots directive {blocked[0]}"
                    )
                for image_url in [] if blocked else parsed.images:
                    if images >= self.max_images:
                        break
                    if image_url in seen_images:
                        continue
                    seen_images.add(image_url)
                    try:
                        fetched = fetcher.fetch_image(image_url)
                    except FetchError as exc:
                        yield IngestFailure(image_url, str(exc))
                        continue
                    images += 1
                    yield SourceItem(
                        source_uri=fetched.url,
                        data=fetched.data,
                        page_url=page.url,
                        licence=self.licence or parsed.licence,
                        attribution=self.attribution or parsed.author,
                        fetched_at=fetched.fetched_at,
                    )
                if depth >= self.depth or directives & {"nofollow", "none"}:
                    continue
                for link in parsed.links:
                    if link in seen_pages or _is_file_link(link):
                        continue
                    if self.same_site and _site(link) not in sites:
                        continue
                    seen_pages.add(link)
                    queue.append((link, depth + 1))
