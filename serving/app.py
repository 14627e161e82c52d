"""The FastAPI application: `create_app(settings)` wires settings, models, store and routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from config.settings import Settings
from serving.errors import install_error_handlers
from serving.routers import compat, health, images, pages, search, uploads
from serving.search_service import SearchService
from serving.seed_schemas import seed_error_body

log = logging.getLogger(__name__)

# Room for the JSON around a base64 image (4/3 of its bytes) in a request body.
_BODY_OVERHEAD = 64 * 1024

DESCRIPTION = """
Find art reference by **body pose** (keypoints, or a photo or sketch of the pose), by
**text** (CLIP), or both: `score = λ · pose_similarity + (1 − λ) · text_similarity`.

Every error is JSON `{"detail": "..."}` saying what went wrong and what to do.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The PoseFramer API; `settings` default to the `POSEFRAMER_*` environment."""
    settings = settings or Settings.from_env()
    service = SearchService.from_settings(settings, store=settings.storage.open_store())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # In the background: the service answers while the models load (or fail to); a query
        # that needs one waits for it, bounded.
        service.models.start_loading()
        log.info(
            "PoseFramer serving %s (version: %s)",
            settings.storage.home,
            settings.service.table_version or "latest",
        )
        yield

    app = FastAPI(
        title="PoseFramer",
        summary="Pose + CLIP search for art reference images",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.search_service = service
    install_error_handlers(app)

    max_body = settings.service.max_upload_bytes * 4 // 3 + _BODY_OVERHEAD

    @app.middleware("http")
    async def limit_body_size(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Refuse an oversized body by its declared length, before reading it into memory.
        length = request.headers.get("content-length", "")
        # Uploads hold many files and check their own sizes (per file and in all).
        limit = uploads.MAX_UPLOAD_REQUEST_BYTES if request.url.path == "/uploads" else max_body
        if length.isdigit() and int(length) > limit:
            message = (
                f"request body of {length} bytes is too large: images may have at most "
                f"{settings.service.max_upload_bytes} bytes (POSEFRAMER_MAX_UPLOAD_BYTES)"
            )
            seed = request.url.path in compat.SEED_PATHS
            body = seed_error_body(message) if seed else {"detail": message}
            return JSONResponse(status_code=413, content=body)
        return await call_next(request)

    if settings.service.cors_origins:
        # Added last so it wraps everything: error responses carry CORS headers too, and a
        # browser frontend can read their messages.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.service.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["ETag"],
        )

    app.include_router(search.router)
    app.include_router(compat.router)
    app.include_router(images.router)
    app.include_router(health.router)
    app.include_router(uploads.router)
    app.include_router(pages.router)

    return app
