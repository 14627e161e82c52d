"""The web page at `/` and its static files (plain HTML, JS and CSS: no build step).

The files ship inside the package (`serving/static`, package data), so the page works from a
wheel and from an editable install alike. The page fetches nothing from outside this
service, and its Content-Security-Policy makes the browser hold it to that.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Header, Response

from serving.errors import ApiError

router = APIRouter(include_in_schema=False)

STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# Same origin only: images may also be blob:/data: URLs the page makes itself (the uploaded
# photo, the exported skeleton); downloads are blob: links, which need no policy.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# Revalidate every time (the ETag makes that a 304): a redeployed page must not mix with
# a cached script of the previous release.
_CACHE = "no-cache"

_STATIC_NAME = re.compile(r"^[A-Za-z0-9_-]+\.[a-z]+$")  # no paths: only the files shipped


def _static_file(name: str) -> tuple[bytes, str, str] | None:
    """The bytes, media type and ETag of a shipped static file, or None. Read on every
    request (they are small): an edited file is served without a restart."""
    if not _STATIC_NAME.match(name):
        return None
    media_type = STATIC_TYPES.get(name[name.rfind(".") :])
    if media_type is None:
        return None
    resource = resources.files("serving").joinpath("static").joinpath(name)
    if not resource.is_file():
        return None
    data = resource.read_bytes()
    return data, media_type, f'"{hashlib.sha256(data).hexdigest()[:32]}"'


def _serve(name: str, if_none_match: str | None) -> Response:
    found = _static_file(name)
    if found is None:
        raise ApiError(404, f"no static file {name!r}")
    data, media_type, etag = found
    headers = {
        "ETag": etag,
        "Cache-Control": _CACHE,
        "X-Content-Type-Options": "nosniff",
    }
    if media_type.startswith("text/html"):
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        headers["Referrer-Policy"] = "no-referrer"
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(content=data, media_type=media_type, headers=headers)


@router.get("/", response_class=Response)
def index_page(if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """The search page: pose a figure or upload a photo, type text, browse results."""
    return _serve("index.html", if_none_match)


@router.get("/static/{name}", response_class=Response)
def static_file(name: str, if_none_match: Annotated[str | None, Header()] = None) -> Response:
    return _serve(name, if_none_match)
