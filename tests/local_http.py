"""A tiny programmable HTTP server on 127.0.0.1 (a random port) for the web-source tests.

Each route answers with a `Reply` (or a function of how many times the route was asked, for
"429 then 200"); every request is logged with its time and headers, so tests can assert what
was fetched, how often and how far apart. Nothing leaves the loopback interface.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = "text/html; charset=utf-8"
    send_length: bool = True  # False: no Content-Length, the body ends when the connection does


@dataclass(frozen=True)
class Hit:
    path: str  # with the query string
    time: float
    user_agent: str


Route = Reply | Callable[[int], Reply]


@dataclass
class LocalSite:
    routes: dict[str, Route]
    hits: list[Hit] = field(default_factory=list)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        with self._lock:
            return [h.path for h in self.hits]

    def count(self, path: str) -> int:
        return sum(1 for p in self.paths() if urlsplit(p).path == path)

    def _answer(self, raw_path: str, user_agent: str) -> Reply:
        with self._lock:
            path = urlsplit(raw_path).path
            asked = sum(1 for h in self.hits if urlsplit(h.path).path == path)
            self.hits.append(Hit(raw_path, time.monotonic(), user_agent))
        route = self.routes.get(path)
        if route is None:
            return Reply(404, b"not found", content_type="text/plain")
        return route(asked) if callable(route) else route


@contextmanager
def serve(routes: dict[str, Route]) -> Iterator[LocalSite]:
    site = LocalSite(dict(routes))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            reply = site._answer(self.path, self.headers.get("User-Agent", ""))
            self.send_response(reply.status)
            if reply.content_type:
                self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers:
                self.send_header(name, value)
            if reply.send_length:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            # The client may stop reading (a size cap): expected.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(reply.body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


def textured_image(seed: int, size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    """A small image with structure (blurred noise), so each seed has its own perceptual hash."""
    rng = np.random.default_rng(seed)
    small = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
    image = Image.fromarray(small).resize(size, Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def png_reply(data: bytes, *headers: tuple[str, str]) -> Reply:
    return Reply(200, data, headers=tuple(headers), content_type="image/png")


def jpeg_reply(data: bytes, *headers: tuple[str, str]) -> Reply:
    return Reply(200, data, headers=tuple(headers), content_type="image/jpeg")
