"""Polite HTTP for every web source (URL lists, the crawler, Openverse, Pinterest).

One `Fetcher` per source run. It sends an identifying User-Agent, obeys robots.txt (parsed by
`urllib.robotparser`, including its Crawl-delay), spaces requests to one host, retries 429 and
5xx answers with exponential backoff while honouring Retry-After, follows redirects itself (so
every hop is checked against robots.txt), sets connect and read timeouts and a deadline per
response, and caps the bytes it reads. `fetch_image` also refuses images whose X-Robots-Tag
says noai / noimageai / noindex, whose content type is not an image, or whose first bytes are
not those of a supported image format. Every refusal is a `FetchError` whose message is the
reason recorded with the URL.
"""

from __future__ import annotations

import email.utils
import json
import time
import urllib.robotparser
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import requests

from pipelines.images import media_type_of, sniff_format
from pipelines.sources.robots_tags import response_robots_tags, robots_tag_block

USER_AGENT = "PoseFramerBot/0.1 (pose reference image indexer; +https://github.com/poseframer)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Served by some object stores for everything: the magic bytes decide.
GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
MAX_ROBOTS_BYTES = 512 * 1024
_CHUNK = 64 * 1024


class FetchError(Exception):
    """A URL that was not fetched; the message is the reason recorded with it."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class FetchPolicy:
    """How politely and how far a source fetches. Every field has a safe default."""

    user_agent: str = USER_AGENT
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    total_timeout_s: float = 120.0  # one response, body included
    max_image_bytes: int = 32 * 1024 * 1024
    max_page_bytes: int = 5 * 1024 * 1024
    min_interval_s: float = 1.0  # between two requests to one host
    max_attempts: int = 4  # per request, retries of 429 / 5xx / network errors included
    backoff_s: float = 1.0  # doubled after each failed attempt without a Retry-After
    max_wait_s: float = 120.0  # a longer Retry-After or Crawl-delay gives up instead
    max_redirects: int = 5
    obey_robots: bool = True

    def __post_init__(self) -> None:
        if not self.user_agent.strip():
            raise ValueError("user_agent must identify the crawler")
        for name in ("max_image_bytes", "max_page_bytes", "max_attempts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("connect_timeout_s", "read_timeout_s", "total_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")

    @property
    def robots_token(self) -> str:
        """The product token robots.txt groups are matched against (`poseframerbot`)."""
        return self.user_agent.split("/")[0].strip().lower()


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    content_type: str  # media type without parameters, lower case
    data: bytes
    headers: Mapping[str, str] = field(repr=False)
    robots_tags: tuple[str, ...] = ()  # every X-Robots-Tag header value
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def charset(self) -> str | None:
        for param in self.headers.get("Content-Type", "").split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "charset" and value:
                return value.strip("\"'")
        return None

    def text(self) -> str:
        try:
            return self.data.decode(self.charset or "utf-8", errors="replace")
        except LookupError:  # an unknown charset name
            return self.data.decode("utf-8", errors="replace")


def media_type(headers: Mapping[str, str]) -> str:
    return headers.get("Content-Type", "").split(";")[0].strip().lower()


def sniff_image_type(data: bytes) -> str | None:
    """The media type of a supported image format from its first bytes, or None."""
    fmt = sniff_format(data)
    return None if fmt is None else media_type_of(fmt)


def _retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def normalise_url(url: str) -> str:
    """`url` without its fragment, with a lower-case scheme and host and a path of at least /."""
    parts = urlsplit(url.strip())
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, "")
    )


@dataclass
class _Robots:
    parser: urllib.robotparser.RobotFileParser | None  # None: everything allowed
    disallow_all: bool = False
    delay: float = 0.0


class Fetcher:
    """A polite HTTP client for one source run (not thread-safe; one per run)."""

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or FetchPolicy()
        self.session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._next_turn: dict[str, float] = {}
        self._robots: dict[str, _Robots] = {}
        self.requests_made = 0

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    # ---------------------------------------------------------------- robots.txt

    def _robots_for(self, url: str) -> _Robots:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        robots = self._robots.get(origin)
        if robots is not None:
            return robots
        try:
            fetched = self.get(
                origin + "/robots.txt",
                accept="text/plain",
                max_bytes=MAX_ROBOTS_BYTES,
                robots=False,
            )
        except FetchError as exc:
            # RFC 9309: an unavailable robots.txt (4xx) allows everything; an unreachable one
            # (5xx, 429, network errors) means the site cannot say, so assume it disallows all.
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                robots = _Robots(None)
            else:
                robots = _Robots(None, disallow_all=True)
        else:
            parser = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
            parser.parse(fetched.text().splitlines())
            delay = parser.crawl_delay(self.policy.robots_token)
            robots = _Robots(parser, delay=float(delay or 0.0))
        self._robots[origin] = robots
        return robots

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets our user agent fetch `url` (always, when not obeying it)."""
        if not self.policy.obey_robots:
            return True
        robots = self._robots_for(url)
        if robots.disallow_all:
            return False
        return robots.parser is None or robots.parser.can_fetch(self.policy.robots_token, url)

    # ---------------------------------------------------------------- requests

    def _interval(self, host: str, url: str) -> float:
        robots = self._robots.get(f"{urlsplit(url).scheme}://{host}")
        delay = robots.delay if robots is not None else 0.0
        return max(self.policy.min_interval_s, min(delay, self.policy.max_wait_s))

    def _wait_turn(self, host: str, url: str) -> None:
        delay = self._next_turn.get(host, 0.0) - self._clock()
        if delay > 0:
            self._sleep(delay)
        self._next_turn[host] = self._clock() + self._interval(host, url)

    def _request(self, url: str, accept: str) -> requests.Response:
        """One GET with retries of 429, 5xx and network errors; the body is not read yet."""
        policy = self.policy
        host = urlsplit(url).netloc
        for attempt in range(1, policy.max_attempts + 1):
            self._wait_turn(host, url)
            self.requests_made += 1
            try:
                response = self.session.get(
                    url,
                    headers={"User-Agent": policy.user_agent, "Accept": accept},
                    timeout=(policy.connect_timeout_s, policy.read_timeout_s),
                    stream=True,
                    allow_redirects=False,
                )
            except requests.Timeout:
                problem, wait = "timed out", policy.backoff_s * 2 ** (attempt - 1)
            except requests.RequestException as exc:
                problem = f"connection failed ({type(exc).__name__})"
                wait = policy.backoff_s * 2 ** (attempt - 1)
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                response.close()
                problem = f"HTTP {response.status_code}"
                after = _retry_after(response.headers.get("Retry-After"))
                wait = after if after is not None else policy.backoff_s * 2 ** (attempt - 1)
                if attempt == policy.max_attempts:
                    raise FetchError(
                        f"{problem} after {attempt} attempts", status=response.status_code
                    )
                if wait > policy.max_wait_s:
                    raise FetchError(
                        f"{problem}: Retry-After of {wait:.0f} s exceeds the "
                        f"{policy.max_wait_s:.0f} s this crawler waits",
                        status=response.status_code,
                    )
            if attempt == policy.max_attempts:
                raise FetchError(f"{problem} after {attempt} attempts")
            # The next turn on this host is no sooner than the wait asked for.
            self._next_turn[host] = max(self._next_turn.get(host, 0.0), self._clock() + wait)
        raise AssertionError("unreachable")

    def _read(self, response: requests.Response, max_bytes: int, started: float) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise FetchError(f"too large: {declared} bytes (limit {max_bytes})")
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"too large: more than {max_bytes} bytes")
                if self._clock() - started > self.policy.total_timeout_s:
                    raise FetchError(
                        f"timed out: body not read within {self.policy.total_timeout_s:.0f} s"
                    )
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise FetchError(f"body not read ({type(exc).__name__})") from None
        return b"".join(chunks)

    def get(
        self,
        url: str,
        *,
        accept: str = "*/*",
        max_bytes: int | None = None,
        robots: bool = True,
        check: Callable[[str, Mapping[str, str], list[str]], None] | None = None,
    ) -> Fetched:
        """GET `url`, following redirects; `check(media_type, headers, x_robots_tags)` may
        refuse the response (raising FetchError) before its body is read."""
        max_bytes = max_bytes or self.policy.max_page_bytes
        current = url
        for hop in range(self.policy.max_redirects + 1):
            scheme = urlsplit(current).scheme.lower()
            if scheme not in ("http", "https"):
                raise FetchError(f"unsupported URL scheme {scheme or '(none)'!r}")
            if robots and not self.allowed(current):
                where = f" (redirected to {current})" if hop else ""
                raise FetchError(f"disallowed by robots.txt{where}")
            started = self._clock()
            response = self._request(current, accept)
            try:
                status = response.status_code
                if status in REDIRECT_STATUSES:
                    location = response.headers.get("Location")
                    if not location:
                        raise FetchError(f"HTTP {status} redirect without a Location", status)
                    current = urljoin(current, location)
                    continue
                if status != 200:
                    raise FetchError(f"HTTP {status}", status)
                tags = response_robots_tags(response)
                if check is not None:
                    check(media_type(response.headers), response.headers, tags)
                data = self._read(response, max_bytes, started)
                return Fetched(
                    current, media_type(response.headers), data, response.headers, tuple(tags)
                )
            finally:
                response.close()
        raise FetchError(f"more than {self.policy.max_redirects} redirects")

    # ---------------------------------------------------------------- kinds of content

    def fetch_image(self, url: str) -> Fetched:
        """An image: allowed by robots.txt and X-Robots-Tag, an image by type and by content."""
        token = self.policy.robots_token

        def check(kind: str, headers: Mapping[str, str], tags: list[str]) -> None:
            blocked = robots_tag_block(tags, token)
            if blocked:
                raise FetchError(f"X-Robots-Tag: {blocked}")
            if kind == "image/svg+xml":
                raise FetchError("unsupported image type image/svg+xml (vector graphics)")
            if not kind.startswith("image/") and kind not in GENERIC_TYPES:
                raise FetchError(f"not an image: content type {kind}")

        fetched = self.get(
            url,
            accept="image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8",
            max_bytes=self.policy.max_image_bytes,
            check=check,
        )
        if sniff_image_type(fetched.data) is None:
            raise FetchError(
                f"not an image: the content of this {fetched.content_type or 'untyped'} "
                "response does not start like any supported image format"
            )
        return fetched

    def fetch_page(self, url: str) -> Fetched:
        def check(kind: str, headers: Mapping[str, str], tags: list[str]) -> None:
            if kind not in HTML_TYPES:
                raise FetchError(f"not an HTML page: content type {kind or '(none)'}")

        return self.get(url, accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.5", check=check)

    def fetch_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        """A JSON API answer. APIs are called, not crawled, so robots.txt does not apply."""
        if params:
            query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        fetched = self.get(url, accept="application/json", robots=False)
        try:
            return json.loads(fetched.data)
        except ValueError:
            raise FetchError(f"invalid JSON from {url}") from None
