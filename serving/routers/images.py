"""`GET /images/{id}` and its thumbnail: the stored image files, cacheable forever.

Image ids are the sha256 of the original bytes, so the id itself is a strong ETag and a
response for an id never changes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Response

from serving.deps import StoreDep
from serving.errors import ApiError
from serving.schemas import error_docs
from storage.blobs import is_image_id
from storage.records import ImageRecord
from storage.store import Store

router = APIRouter(prefix="/images", tags=["images"])

CACHE_FOREVER = "public, max-age=31536000, immutable"
ImageId = Annotated[str, Path(description="sha256 of the original image bytes (64 hex digits)")]
IfNoneMatch = Annotated[str | None, Header()]
_ERRORS = error_docs(
    {
        304: "Not modified (If-None-Match matched the ETag)",
        404: "No stored image with that id",
        422: "Not an image id",
    }
)


def _record(store: Store, image_id: str) -> ImageRecord:
    if not is_image_id(image_id):
        raise ApiError(422, "not an image id: expected 64 lowercase hex digits (a sha256)")
    record = store.get_image(image_id)
    if record is None:
        raise ApiError(404, f"no stored image {image_id}")
    return record


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _cached(content: bytes, media_type: str, etag: str, if_none_match: str | None) -> Response:
    headers = {"ETag": etag, "Cache-Control": CACHE_FOREVER}
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(content=content, media_type=media_type, headers=headers)


@router.get("/{image_id}", response_class=Response, responses=_ERRORS)
def original(image_id: ImageId, store: StoreDep, if_none_match: IfNoneMatch = None) -> Response:
    """The original file, byte for byte, with its stored media type."""
    record = _record(store, image_id)
    etag = f'"{image_id}"'
    if _matches(if_none_match, etag):
        return _cached(b"", record.media_type, etag, if_none_match)
    try:
        data = store.blobs.get(image_id)
    except KeyError:
        raise ApiError(
            404, f"the original of image {image_id} is missing from the blob store"
        ) from None
    return _cached(data, record.media_type, etag, if_none_match)


@router.get("/{image_id}/thumbnail", response_class=Response, responses=_ERRORS)
def thumbnail(image_id: ImageId, store: StoreDep, if_none_match: IfNoneMatch = None) -> Response:
    """A JPEG at most 256 px on its longer side."""
    record = _record(store, image_id)
    return _cached(record.thumbnail, "image/jpeg", f'"{image_id}-thumbnail"', if_none_match)
