"""The robots rules a fetch obeys beyond robots.txt: X-Robots-Tag headers (noai, noimageai,
noindex), scoped to our user agent as the header's `agent: directive` form says."""

from __future__ import annotations

from typing import Any

import requests

# X-Robots-Tag directives that keep an image out of the index ("none" = noindex, nofollow).
BLOCKING_DIRECTIVES = frozenset({"noai", "noimageai", "noindex", "none"})
# Directives of the X-Robots-Tag that carry a value after a colon, unlike a user-agent prefix.
_VALUED_DIRECTIVES = frozenset(
    {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}
)


def robots_directives(values: list[str], token: str) -> set[str]:
    """The X-Robots-Tag directives (lower case) that apply to our user agent.

    Each header value is a comma-separated list; `agent: directive` scopes the directives after
    it (up to the next agent, within that header) to that crawler.
    """
    found: set[str] = set()
    for value in values:
        agent: str | None = None
        for part in value.split(","):
            directive = part.strip().lower()
            head, colon, rest = directive.partition(":")
            if colon and head.strip() not in _VALUED_DIRECTIVES:
                agent = head.strip()
                directive = rest.strip()
            if directive and agent in (None, "*", token):
                found.add(directive)
    return found


def robots_tag_block(values: list[str], token: str) -> str | None:
    """The X-Robots-Tag directive that forbids indexing for our user agent, if any."""
    blocked = sorted(robots_directives(values, token) & BLOCKING_DIRECTIVES)
    return blocked[0] if blocked else None


def robots_tags_of(headers: Any) -> list[str]:
    """Every X-Robots-Tag header value, kept apart (an agent prefix scopes one header only)."""
    getlist = getattr(headers, "getlist", None)
    if getlist is not None:
        return [str(v) for v in getlist("X-Robots-Tag")]
    value = headers.get("X-Robots-Tag") if hasattr(headers, "get") else None
    return [value] if value else []


def response_robots_tags(response: requests.Response) -> list[str]:
    raw = getattr(response, "raw", None)
    raw_headers = getattr(raw, "headers", None)
    if raw_headers is not None and hasattr(raw_headers, "getlist"):
        return robots_tags_of(raw_headers)
    return robots_tags_of(response.headers)
