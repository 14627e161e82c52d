"""Request and response models of the seed project's endpoint (`/search_similar_images`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.records import Framing
from serving.schemas import FiniteFloat, QueryWarningModel, blank_to_none
from serving.search_service import SearchQuery

NOT_PORTRAIT = frozenset(f.value for f in Framing if f is not Framing.PORTRAIT)


class SeedSearchRequest(BaseModel):
    """The request of the seed project's frontend (`/search_similar_images`)."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {"sketch": "data:image/png;base64,iVBORw0KGgo...", "k": 12, "lambda": 0.8},
                {"text": "woman reading", "k": 12, "filter_portraits": True},
            ]
        },
    )

    sketch: str | None = Field(None, description="The drawn pose: base64 image or data URL")
    text: str | None = Field(None, max_length=1000)
    k: int = Field(10, ge=1, le=100)
    lam: FiniteFloat = Field(0.5, alias="lambda", ge=0.0, le=1.0)
    filter_portraits: bool = Field(
        False, description="Leave out head-and-shoulders portraits (useless as pose reference)"
    )

    blank_is_absent = field_validator("sketch", "text")(blank_to_none)

    @model_validator(mode="after")
    def _one_query(self) -> SeedSearchRequest:
        if self.sketch is None and self.text is None:
            raise ValueError("give a sketch, a text, or both")
        return self

    def to_query(self, sketch: bytes | None) -> SearchQuery:
        """The service's query: `sketch` is the decoded `sketch`, read for its figure's pose."""
        return SearchQuery(
            image=sketch,
            text=self.text,
            lam=self.lam,
            k=self.k,
            framings=NOT_PORTRAIT if self.filter_portraits else None,
            one_per_image=True,
        )


class SeedResult(BaseModel):
    path: str = Field(
        description="Where the image came from: its URL, or its path inside the indexed folder"
    )
    image: str = Field(description="Base64 JPEG, at most 768 px on its longer side")
    score: float
    image_url: str


class SeedSearchResponse(BaseModel):
    success: bool
    results: list[SeedResult] = Field(default_factory=list)
    error: str | None = None
    warnings: list[QueryWarningModel] = Field(
        default_factory=list, description="Parts of the query left out (see /search)"
    )


def seed_error_body(message: str) -> dict[str, Any]:
    """The seed frontend's error shape; `detail` too, like every other error of this API."""
    return {"success": False, "results": [], "error": message, "detail": message}
