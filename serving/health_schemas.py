"""The `/health` response: what is served, with which models, and whether each search works."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from serving.schemas import SearchModels


class RowCounts(BaseModel):
    search: int = Field(description="Rows (people, and images with nobody) in the served version")
    images: int = Field(description="Images stored")
    failures: int = Field(description="Files that could not be ingested")


class ServiceModels(BaseModel):
    keypoint_model: str
    pose_model: str
    clip_model: str


class PoseSearchStatus(BaseModel):
    available: bool
    reason: str | None = Field(description="Why pose search is unavailable, or null")


class TextSearchStatus(BaseModel):
    available: bool
    summary: str | None = Field(
        None,
        description="One sentence for a person searching: why text search is off; null "
        "when it works",
    )
    reason: str | None = Field(description="Why text search is unavailable, or null")
    random_weights: bool = Field(description="CLIP runs on random test weights (no real search)")


class HealthResponse(BaseModel):
    status: Literal["loading", "ready"] = Field(
        description="`loading` while the models load at startup (queries that need them wait), "
        "then `ready`"
    )
    table_version: int | None = Field(description="The served version; null before publishing")
    tag: str | None
    message: str | None = Field(None, description="Why no version is served, when none is")
    rows: RowCounts
    models: SearchModels | None = Field(description="The models that built the served index")
    service_models: ServiceModels = Field(description="The models this service queries with")
    pose_search: PoseSearchStatus
    text_search: TextSearchStatus
    ann_index: str | None = Field(
        None,
        description="The served version's ANN index (e.g. `IVF632,SQ8 per side`); null when "
        "its rows are scored exactly (a table below POSEFRAMER_ANN_MIN_ROWS rows)",
    )
