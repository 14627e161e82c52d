"""The seed project's endpoint, so its Next.js frontend works unchanged.

Its errors keep the seed's body shape (`success: false` and `error`), with a 4xx status.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from serving.deps import SearchServiceDep
from serving.errors import error_headers, redact_paths, status_and_message
from serving.schemas import image_url, warning_models
from serving.search_service import decode_base64_image
from serving.seed_schemas import (
    SeedResult,
    SeedSearchRequest,
    SeedSearchResponse,
    seed_error_body,
)

SEED_PATHS = frozenset({"/search_similar_images"})  # answered in the seed's error shape


class SeedErrorRoute(APIRoute):
    """Answers expected errors, request validation included, in the seed's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                mapped = status_and_message(exc)
                if mapped is None:
                    raise  # a bug: the app's catch-all logs it and answers 500
                status_code, message = mapped
                return JSONResponse(
                    status_code=status_code,
                    content=seed_error_body(redact_paths(message)),
                    headers=error_headers(exc),
                )

        return handle


router = APIRouter(tags=["seed compatibility"], route_class=SeedErrorRoute)


@router.post(
    "/search_similar_images",
    response_model=SeedSearchResponse,
    responses={
        400: {"model": SeedSearchResponse},
        413: {"model": SeedSearchResponse},
        422: {"model": SeedSearchResponse},
        503: {"model": SeedSearchResponse},
    },
)
def search_similar_images(body: SeedSearchRequest, service: SearchServiceDep) -> SeedSearchResponse:
    """Search by a drawn `sketch` (its figure's pose), a `text`, or both, ranked by
    `lambda · pose_similarity + (1 − lambda) · text_similarity`, one result per image.

    `filter_portraits: true` leaves out images classified `portrait` (head-and-shoulders
    crops): they show too little of the body to be useful as pose reference. Each result's
    `image` is a base64 JPEG of at most 768 px; `image_url` serves the original.
    """
    sketch = (
        None if body.sketch is None else decode_base64_image(body.sketch, service.max_upload_bytes)
    )
    outcome = service.search(body.to_query(sketch))
    results = []
    for hit in outcome.hits:
        image_id = str(hit.row["image_id"])
        display = service.display_rendition(image_id)
        if display is None:  # the image row vanished between search and render
            continue
        results.append(
            SeedResult(
                path=str(hit.row["source_uri"]),  # public: a URL, or relative to its folder
                image=base64.b64encode(display).decode("ascii"),
                score=hit.score,
                image_url=image_url(image_id),
            )
        )
    return SeedSearchResponse(
        success=True,
        results=results,
        error=None,
        warnings=warning_models(outcome.warnings),
    )
