"""`POST /search`: pose, text and hybrid search."""

from __future__ import annotations

from fastapi import APIRouter

from serving.deps import SearchServiceDep, VersionQuery
from serving.errors import ApiError
from serving.schemas import SearchRequest, SearchResponse, error_docs
from serving.search_service import decode_base64_image

router = APIRouter(tags=["search"])

_ERRORS = error_docs(
    {
        400: "The image is not valid base64",
        404: "No published search table version of that number or tag",
        409: "The index was built with another pose model than this service's",
        413: "The image is larger than POSEFRAMER_MAX_UPLOAD_BYTES",
        422: "Invalid request, unreadable image, or no figure found in it",
        503: "Nothing published yet, or text search unavailable (with the reason)",
    }
)


# A plain `def`: model inference is CPU-bound and runs in FastAPI's thread pool.
@router.post("/search", response_model=SearchResponse, responses=_ERRORS)
def search(
    body: SearchRequest, service: SearchServiceDep, version: VersionQuery = None
) -> SearchResponse:
    """Rank the served index by `lambda · pose_similarity + (1 − lambda) · text_similarity`.

    The pose is `keypoints` (17 COCO-17 `[x, y, score]`) or an `image` whose most prominent
    figure is detected; `text` is matched with CLIP. With only one of them, ranking uses that
    similarity alone. One result per image by default (its best-matching person,
    `person_index`), or one per person with `group_by_image: false`; best first.

    `mirror` also matches the left-right mirrored pose; `joints` restricts the comparison to
    body parts; keypoints with score 0 are "don't care" either way.
    """
    body_version = None if body.version is None else str(body.version)
    if version is not None and body_version is not None and version != body_version:
        raise ApiError(
            422, f"version given twice and differently: {version!r} and {body_version!r}"
        )
    image = (
        None if body.image is None else decode_base64_image(body.image, service.max_upload_bytes)
    )
    outcome = service.search(body.to_query(image, version or body_version))
    return SearchResponse.from_outcome(outcome)
