"""`POST /uploads`: users add their own images from a frontend.

The files are saved into `$POSEFRAMER_HOME/inbox/<upload id>/`; the Dagster inbox sensor turns
them into a new ingest batch and indexes it (within about a minute while the Dagster daemon
runs). Behind an API key (`POSEFRAMER_API_KEY`, sent as `X-API-Key`): without a configured
key the endpoint is off (503). Each file may have at most `POSEFRAMER_MAX_UPLOAD_BYTES` and
must be an image by its content; other files are listed as rejected, with the reason.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from config.settings import Settings
from pipelines.sources.fetcher import sniff_image_type
from serving.deps import SettingsDep, StoreDep
from serving.errors import ApiError
from serving.schemas import error_docs
from storage.blobs import write_atomically

router = APIRouter(prefix="/uploads", tags=["uploads"])

MAX_FILES_PER_UPLOAD = 100
# The whole multipart body; each file is also held to POSEFRAMER_MAX_UPLOAD_BYTES.
MAX_UPLOAD_REQUEST_BYTES = 512 * 1024 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

_ERRORS = error_docs(
    {
        400: "Not a multipart form",
        401: "Missing or wrong X-API-Key",
        411: "No Content-Length",
        413: "Too many files, or the request is too large",
        415: "None of the files is an image",
        422: "No files in the form",
        503: "Uploads are disabled: no POSEFRAMER_API_KEY is configured",
    }
)
_MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "one or more image files (jpeg, png, webp, gif, "
                            "bmp, tiff)",
                        }
                    },
                }
            }
        },
    }
}


def require_api_key(
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header(description="The server's POSEFRAMER_API_KEY")] = None,
) -> None:
    """Checked before the body is read: an unauthenticated client cannot make us store it."""
    if settings.service.api_key is None:
        raise ApiError(
            503,
            "uploads are disabled on this server: set POSEFRAMER_API_KEY to enable them",
        )
    expected = settings.service.api_key.get_secret_value().encode()
    if x_api_key is None or not secrets.compare_digest(x_api_key.encode(), expected):
        raise HTTPException(
            401,
            "missing or wrong API key: send the server's POSEFRAMER_API_KEY in the X-API-Key "
            "header",
            headers={"WWW-Authenticate": "ApiKey"},
        )


ApiKeyDep = Annotated[None, Depends(require_api_key)]


class UploadedFile(BaseModel):
    name: str = Field(description="The file name the client sent")
    saved_as: str = Field(description="Path of the saved file under the inbox")
    bytes: int
    sha256: str = Field(description="The image id the file will have once indexed")
    already_indexed: bool = Field(description="Its bytes are indexed already (skipped)")


class RejectedFile(BaseModel):
    name: str
    reason: str


class UploadResponse(BaseModel):
    upload_id: str = Field(description="The inbox folder the files were saved in")
    accepted: list[UploadedFile]
    rejected: list[RejectedFile]
    message: str


def _safe_name(filename: str | None, index: int) -> str:
    base = Path((filename or "").replace("\\", "/")).name
    name = _SAFE_NAME.sub("_", base).strip("._")[:100]
    return name or f"file-{index}"


def _save(folder: Path, name: str, data: bytes) -> Path:
    # A hidden ".part-" name until complete, so the inbox sensor never claims half a file.
    return write_atomically(folder / name, data, prefix=".part-")


def inbox_of(settings: Settings) -> Path:
    return settings.storage.inbox


@router.post(
    "",
    status_code=202,
    response_model=UploadResponse,
    responses=_ERRORS,
    openapi_extra=_MULTIPART_BODY,
    summary="Upload images to be indexed (multipart, API key)",
)
async def upload_images(
    request: Request, settings: SettingsDep, store: StoreDep, _: ApiKeyDep
) -> UploadResponse:
    """Save one or more image files (multipart field `files`) into the inbox; the Dagster
    inbox sensor indexes them as a new batch. Answers 202: indexing happens afterwards."""
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise ApiError(411, "send the upload with a Content-Length header")
    if int(length) > MAX_UPLOAD_REQUEST_BYTES:
        raise ApiError(
            413, f"request of {length} bytes is larger than {MAX_UPLOAD_REQUEST_BYTES} bytes"
        )
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "send the files as multipart/form-data (field `files`)")
    try:
        form = await request.form(max_files=MAX_FILES_PER_UPLOAD + 1, max_fields=50)
    except MultiPartException as exc:
        limit = "Too many files" in exc.message
        raise ApiError(
            413 if limit else 400,
            f"at most {MAX_FILES_PER_UPLOAD} files per upload"
            if limit
            else f"unreadable multipart form: {exc.message}",
        ) from None
    try:
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not files:
            raise ApiError(422, "no files: send image files in the multipart field `files`")
        if len(files) > MAX_FILES_PER_UPLOAD:
            raise ApiError(413, f"at most {MAX_FILES_PER_UPLOAD} files per upload")
        now = datetime.now(UTC)
        upload_id = f"upload-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"
        folder = inbox_of(settings) / upload_id
        accepted: list[UploadedFile] = []
        rejected: list[RejectedFile] = []
        for index, upload in enumerate(files, 1):
            name = upload.filename or f"file-{index}"
            data = await upload.read(settings.service.max_upload_bytes + 1)
            if len(data) > settings.service.max_upload_bytes:
                rejected.append(
                    RejectedFile(
                        name=name,
                        reason=f"too large: more than {settings.service.max_upload_bytes} bytes "
                        "(POSEFRAMER_MAX_UPLOAD_BYTES)",
                    )
                )
                continue
            if sniff_image_type(data) is None:
                rejected.append(
                    RejectedFile(
                        name=name,
                        reason="not an image: jpeg, png, webp, gif, bmp or tiff content expected",
                    )
                )
                continue
            digest = hashlib.sha256(data).hexdigest()
            saved_name = f"{digest[:12]}-{_safe_name(upload.filename, index)}"
            path = await run_in_threadpool(_save, folder, saved_name, data)
            accepted.append(
                UploadedFile(
                    name=name,
                    saved_as=path.relative_to(inbox_of(settings)).as_posix(),
                    bytes=len(data),
                    sha256=digest,
                    already_indexed=False,
                )
            )
    finally:
        await form.close()
    if not accepted:
        reasons = "; ".join(f"{r.name}: {r.reason}" for r in rejected)
        status = 413 if all(r.reason.startswith("too large") for r in rejected) else 415
        raise ApiError(status, f"no file was accepted: {reasons}")
    known = store.known_image_ids(f.sha256 for f in accepted)
    accepted = [f.model_copy(update={"already_indexed": f.sha256 in known}) for f in accepted]
    fresh = sum(1 for f in accepted if not f.already_indexed)
    return UploadResponse(
        upload_id=upload_id,
        accepted=accepted,
        rejected=rejected,
        message=(
            f"{len(accepted)} file(s) saved ({fresh} not yet indexed); the Dagster inbox sensor "
            "indexes them as a new batch (while the Dagster daemon runs)"
        ),
    )
