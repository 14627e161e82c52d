"""`GET /health`: what is served, with which models, and whether text search works."""

from __future__ import annotations

from fastapi import APIRouter

from serving.deps import SearchServiceDep
from serving.errors import redact_paths
from serving.health_schemas import (
    HealthResponse,
    PoseSearchStatus,
    RowCounts,
    ServiceModels,
    TextSearchStatus,
)
from serving.query_models import SearchUnavailableError
from serving.schemas import SearchModels
from storage.records import VersionNotFoundError
from storage.snapshot import SearchSnapshot
from storage.tables import T_FAILURES, T_IMAGES

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse)
def health(service: SearchServiceDep) -> HealthResponse:
    """Always 200 while the process runs: before anything is published `table_version` is
    null and `message` says what to do."""
    snapshot: SearchSnapshot | None = None
    message: str | None = None
    try:
        snapshot = service.snapshot()
    except (SearchUnavailableError, VersionNotFoundError) as exc:
        # Nothing published yet, or the pinned version does not exist.
        message = redact_paths(str(exc))
    pose_problem = service.models.pose_search_problem(snapshot)
    text_problem = service.models.text_search_problem(snapshot)
    encoder = service.models.clip.encoder
    return HealthResponse(
        status=service.models.status,
        table_version=None if snapshot is None else snapshot.version,
        tag=None if snapshot is None else snapshot.publication.tag,
        message=message,
        rows=RowCounts(
            search=0 if snapshot is None else len(snapshot),
            images=service.store.count_rows(T_IMAGES),
            failures=service.store.count_rows(T_FAILURES),
        ),
        models=None
        if snapshot is None
        else SearchModels.model_validate(snapshot.publication.models),
        service_models=ServiceModels(
            keypoint_model=service.models.detector.model_id,
            pose_model=service.models.embedder.model_id,
            clip_model=encoder.model_id,
        ),
        pose_search=PoseSearchStatus(
            available=pose_problem is None,
            reason=None if pose_problem is None else redact_paths(pose_problem),
        ),
        text_search=TextSearchStatus(
            available=text_problem is None,
            summary=service.models.text_search_summary(snapshot),
            reason=None if text_problem is None else redact_paths(text_problem),
            random_weights=encoder.random_weights,
        ),
        ann_index=None if snapshot is None or snapshot.ann is None else snapshot.ann.describe(),
    )
