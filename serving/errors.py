"""How errors become HTTP responses.

Expected problems (bad input, an index that does not match the service, CLIP still loading)
become 4xx/503 JSON `{"detail": "..."}` with a message saying what to do. Anything else is a
bug: it is logged and answered with a JSON 500 rather than an HTML page or a dropped
connection.
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from pipelines.clip.encoder import ClipUnavailableError
from pipelines.errors import QueryError
from pipelines.images import ImageDecodeError
from pipelines.query import ImageDataError, ImageTooLargeError
from serving.query_models import ModelMismatchError, SearchUnavailableError
from serving.search_service import NOTHING_PUBLISHED_RETRY_S, ResultNotFoundError
from storage.records import NothingPublishedError, VersionNotFoundError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An expected failure with the HTTP status that describes it and a message for the user."""

    def __init__(self, status_code: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.retry_after = retry_after  # seconds, sent as Retry-After (a 503 says when to retry)


def validation_message(exc: RequestValidationError | ValidationError) -> str:
    """Pydantic's errors as one readable line: `k: Input should be ...; lambda: ...`."""
    parts = []
    for error in exc.errors():
        # "body" is where the field sits in FastAPI's request model, not part of its name.
        loc = [str(p) for p in error["loc"] if p != "body"]
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return "; ".join(parts) or "invalid request"


def _error_list(exc: RequestValidationError) -> list[dict[str, object]]:
    # Without `input` and `ctx`: the input may be a many-megabyte base64 image, and ctx can
    # hold exception objects that are not JSON.
    return [{"type": e["type"], "loc": list(e["loc"]), "msg": str(e["msg"])} for e in exc.errors()]


# An absolute path: two or more segments after a leading slash, not part of a URL.
_ABSOLUTE_PATH = re.compile(r"(?<![\w/.])/(?:[\w.+@~-]+/)+[\w.+@~-]*")
_ROOT_DIRS: set[str] = set()


def redact_paths(message: str) -> str:
    """`message` without this server's file system paths (a response never shows them).

    A path is recognised by its first segment being a directory at this machine's root
    (`/home/…`, `/tmp/…`, `/models/…`), so API routes such as `/images/{id}` stay as they
    are; what remains is the file's name.
    """
    if not _ROOT_DIRS:
        with contextlib.suppress(OSError):
            _ROOT_DIRS.update(p.name for p in Path("/").iterdir())

    def shorten(match: re.Match[str]) -> str:
        path = match.group(0)
        first = path.lstrip("/").split("/", 1)[0]
        if first not in _ROOT_DIRS:
            return path
        name = path.rstrip("/").rsplit("/", 1)[-1]
        return f"…/{name}" if name else "…"

    return _ABSOLUTE_PATH.sub(shorten, message)


# The search core's errors, said as they are, and their status (first match wins: the image
# errors are kinds of QueryError).
DOMAIN_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (ImageTooLargeError, 413),
    (ImageDataError, 400),
    (QueryError, 422),  # includes NoFigureFoundError
    (SearchUnavailableError, 503),
    (ModelMismatchError, 409),
    (ResultNotFoundError, 404),
)


def retry_after(exc: Exception) -> int | None:
    """Seconds after which a refused request may succeed (sent as Retry-After), if known."""
    if isinstance(exc, ApiError | SearchUnavailableError):
        return exc.retry_after
    if isinstance(exc, NothingPublishedError):
        return NOTHING_PUBLISHED_RETRY_S
    return None


def status_and_message(exc: Exception) -> tuple[int, str] | None:
    """The status and message of an expected error, or None for an unexpected one (a bug)."""
    if isinstance(exc, ApiError):
        return exc.status_code, exc.message
    if isinstance(exc, RequestValidationError):
        return 422, validation_message(exc)
    for exc_type, status in DOMAIN_STATUS:
        if isinstance(exc, exc_type):
            return status, str(exc)
    if isinstance(exc, ImageDecodeError):
        return 422, f"the uploaded image cannot be read: {exc}"
    if isinstance(exc, NothingPublishedError):
        return 503, f"{exc}: there is nothing to search yet"
    if isinstance(exc, VersionNotFoundError):
        return 404, str(exc)
    if isinstance(exc, ClipUnavailableError):
        return 503, f"text search is unavailable: {exc}"
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail)
    return None


async def _expected_error(request: Request, exc: Exception) -> JSONResponse:
    mapped = status_and_message(exc)
    if mapped is None:
        return await _unexpected_error(request, exc)
    status_code, message = mapped
    body: dict[str, object] = {"detail": redact_paths(message)}
    if isinstance(exc, RequestValidationError):
        body["errors"] = _error_list(exc)
    return JSONResponse(status_code=status_code, content=body, headers=error_headers(exc))


def error_headers(exc: Exception) -> dict[str, str] | None:
    seconds = retry_after(exc)
    return None if seconds is None else {"Retry-After": str(seconds)}


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # The server logs the traceback too (Starlette re-raises after this response is sent);
    # this line ties it to the request.
    log.error("unexpected error on %s %s: %r", request.method, request.url.path, exc)
    return JSONResponse(
        status_code=500,
        content={
            "detail": "internal error while handling the request; this is a bug in PoseFramer, "
            "not a problem with your input (the server log has the details)"
        },
    )


def install_error_handlers(app: FastAPI) -> None:
    for exc_type in (
        ApiError,
        RequestValidationError,
        *(exc_type for exc_type, _ in DOMAIN_STATUS),
        ImageDecodeError,
        VersionNotFoundError,
        ClipUnavailableError,
    ):
        app.add_exception_handler(exc_type, _expected_error)
    app.add_exception_handler(Exception, _unexpected_error)
