"""Request and response models of the HTTP API (kept apart from the storage rows)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

from pipelines.records import NUM_JOINTS, Framing
from pipelines.retrieval.paging import Hit
from serving.query_models import QueryWarning
from serving.search_service import SearchOutcome, SearchQuery

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Keypoints = list[list[FiniteFloat]]

_EXAMPLE_KEYPOINTS: list[JsonValue] = [
    [320, 80, 0.9],  # nose
    [328, 72, 0.9],
    [312, 72, 0.9],
    [340, 78, 0.8],
    [300, 78, 0.8],
    [360, 130, 0.9],  # shoulders
    [280, 130, 0.9],
    [400, 180, 0.9],  # elbows (arms raised)
    [240, 180, 0.9],
    [430, 110, 0.9],  # wrists
    [210, 110, 0.9],
    [350, 260, 0.9],  # hips
    [290, 260, 0.9],
    [355, 350, 0.9],  # knees
    [285, 350, 0.9],
    [360, 440, 0.9],  # ankles
    [280, 440, 0.9],
]


def _check_keypoints(value: Keypoints | None) -> Keypoints | None:
    if value is None:
        return None
    if len(value) != NUM_JOINTS or any(len(k) != 3 for k in value):
        sizes = sorted({len(k) for k in value})
        raise ValueError(
            f"must be {NUM_JOINTS} COCO-17 triples [x, y, score] "
            f"(got {len(value)} entries of length {sizes})"
        )
    return value


def blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


class SearchRequest(BaseModel):
    """A pose (keypoints or an image), a text, or both, ranked by
    `lambda · pose_similarity + (1 − lambda) · text_similarity`."""

    model_config = ConfigDict(
        extra="forbid",  # a misspelt field (e.g. "lamda") must not be silently ignored
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {"keypoints": _EXAMPLE_KEYPOINTS, "k": 10, "framing": ["full_body"]},
                {"text": "a dancer mid-leap", "k": 10},
                {
                    "image": "data:image/png;base64,iVBORw0KGgo...",
                    "text": "in a painterly style",
                    "lambda": 0.7,
                },
                {
                    "keypoints": _EXAMPLE_KEYPOINTS,
                    "image": "data:image/jpeg;base64,/9j/4AAQ...",
                    "image_use": "look",
                    "text": "watercolour",
                    "text_weight": 0.3,
                    "lambda": 0.6,
                },
            ]
        },
    )

    keypoints: Keypoints | None = Field(
        None,
        description="17 COCO-17 [x, y, score] triples in any pixel frame; score 0 = don't care.",
    )
    image: str | None = Field(
        None,
        description="A photo or sketch: base64, optionally a data: URL. It counts for its "
        "pose, its look, or both (`image_use`).",
    )
    image_use: Literal["pose", "look", "both"] = Field(
        "pose",
        description="What the image counts for: `pose` (the figure found in it), `look` (its "
        "CLIP image vector: pictures that look like it, as image-to-image search), or "
        "`both`. With `look`, `keypoints` may give the pose.",
    )
    text_weight: FiniteFloat = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="With text and an image's look, the CLIP side of the query is "
        "`text_weight · text + (1 − text_weight) · image` (normalised): 1 = text only.",
    )
    text: str | None = Field(None, max_length=1000, description="What the picture should show.")
    lam: FiniteFloat = Field(
        0.5, alias="lambda", ge=0.0, le=1.0, description="Weight of the pose side (1: pose only)."
    )
    k: int = Field(10, ge=1, le=100, description="How many results.")
    framing: list[Framing] | None = Field(
        None, min_length=1, description="Only these framings (null: any)."
    )
    version: int | str | None = Field(
        None, description="Search table version number or tag (default: the served one)."
    )
    mirror: bool | None = Field(
        None,
        description="Also match the left-right mirrored pose; each result says if it matched so. "
        "null: yes for an uploaded drawing (its left and right are ambiguous: a front or a back "
        "view), no otherwise.",
    )
    joints: list[str] | None = Field(
        None,
        min_length=1,
        description="Body-part focus: only these joints count. COCO-17 joint names or groups: "
        "head, arms, left_arm, right_arm, torso, legs, left_leg, right_leg, upper_body, "
        "lower_body.",
        examples=[["arms"], ["legs", "torso"]],
    )
    min_visible_joints: int | None = Field(
        None, ge=1, le=NUM_JOINTS, description="Only people with at least this many joints in view."
    )
    more_like: str | None = Field(
        None,
        description="More like this: a result `id`; its pose and its picture (CLIP image "
        "vector) are the query (text may be added; the result itself is left out).",
    )
    cursor: str | None = Field(
        None, description="`next_cursor` of the previous page: continue after it (same version)."
    )
    min_score: FiniteFloat | None = Field(None, description="Relevance floor on `score`.")
    source: list[str] | None = Field(None, min_length=1, description="Only these sources.")
    licence: list[str] | None = Field(None, min_length=1, description="Only these licences.")
    medium: list[Literal["photo", "drawing"]] | None = Field(
        None,
        min_length=1,
        description="Only photos or only drawings (estimated from each image's pixels).",
    )
    min_people: int | None = Field(None, ge=0, description="Images with at least this many people.")
    max_people: int | None = Field(None, ge=0, description="Images with at most this many people.")
    collapse_duplicates: bool = Field(
        True, description="Show one image of each group of near-duplicates."
    )
    group_by_image: bool = Field(
        True,
        description="One result per image (its best-matching person), so a crowd photo does "
        "not fill the page; false: one result per person.",
    )

    check_keypoints = field_validator("keypoints")(_check_keypoints)
    blank_is_absent = field_validator("text", "image")(blank_to_none)

    @model_validator(mode="after")
    def _one_query(self) -> SearchRequest:
        if (
            self.keypoints is None
            and self.image is None
            and self.text is None
            and self.more_like is None
        ):
            raise ValueError("give at least one of keypoints, image, text or more_like")
        if self.keypoints is not None and self.image is not None and self.image_use != "look":
            raise ValueError(
                "keypoints and image are both a pose: give one of them (add text for a "
                'hybrid), or set image_use to "look" to search by the picture\'s look'
            )
        if self.image is None and self.image_use != "pose":
            raise ValueError(f"image_use {self.image_use!r} needs an image")
        return self

    def to_query(self, image: bytes | None, version: str | None = None) -> SearchQuery:
        """The service's query: `image` is the decoded `image`, `version` the one asked for
        (the `version` query parameter or this body's)."""
        if version is None and self.version is not None:
            version = str(self.version)
        return SearchQuery(
            keypoints=self.keypoints,
            image=image,
            text=self.text,
            lam=self.lam,
            k=self.k,
            framings=None if self.framing is None else frozenset(f.value for f in self.framing),
            version=version,
            one_per_image=self.group_by_image,
            mirror=self.mirror,
            joints=None if self.joints is None else tuple(self.joints),
            min_visible_joints=self.min_visible_joints,
            more_like=self.more_like,
            cursor=self.cursor,
            min_score=self.min_score,
            filters=tuple(
                (column, frozenset(values))
                for column, values in (
                    ("source", self.source),
                    ("licence", self.licence),
                    ("medium", self.medium),
                )
                if values
            ),
            min_people=self.min_people,
            max_people=self.max_people,
            collapse_duplicates=self.collapse_duplicates,
            image_use=self.image_use,
            text_weight=self.text_weight,
        )


class ErrorResponse(BaseModel):
    detail: str = Field(description="What went wrong and what to do about it")


def error_docs(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route's error statuses, each with the error body's schema."""
    return {
        status: {"description": text}
        if status < 400
        else {"model": ErrorResponse, "description": text}
        for status, text in descriptions.items()
    }


class SearchModels(BaseModel):
    keypoint_model: str
    pose_model: str
    clip_model: str | None
    framing_model: str


class QueryWarningModel(BaseModel):
    """What the person searching should know of the answer: part of the query left out
    while the rest was answered, or an image's figure read unsurely."""

    code: str = Field(
        description="Machine-readable: `text_ignored`, `look_ignored`, `unsure_figure`"
    )
    message: str = Field(description="One sentence for the person searching")


def warning_models(warnings: Sequence[QueryWarning]) -> list[QueryWarningModel]:
    return [QueryWarningModel(code=w.code, message=w.message) for w in warnings]


class SearchHit(BaseModel):
    id: str = Field(description="image_id:person_index (image_id:- for an image with nobody)")
    image_id: str
    person_index: int = Field(description="-1 for an image with no person")
    source: str = Field(description="The kind of source: folder, urls, crawl, openverse, …")
    source_uri: str = Field(
        description="Where the image came from: its URL, or its path inside the indexed "
        "folder (never a path on the server)"
    )
    width: int = Field(description="The stored image's width in pixels (keypoints' frame)")
    height: int = Field(description="The stored image's height in pixels")
    score: float
    pose_score: float | None = Field(description="null when the query had no pose")
    clip_score: float | None = Field(description="null when the query had no text")
    pose_raw: float | None = Field(None, description="Uncalibrated pose cosine behind pose_score")
    clip_raw: float | None = Field(None, description="Uncalibrated CLIP cosine behind clip_score")
    mirrored: bool = Field(False, description="The mirrored query pose matched (mirror: true)")
    licence: str | None = Field(None, description="The image's licence, when known")
    attribution: str | None = Field(None, description="Who made the image, when known")
    medium: str | None = Field(None, description="photo or drawing (null: indexed before)")
    page_url: str | None = Field(None, description="The page the image was found on, if any")
    framing: str
    keypoints: list[list[float]] | None = Field(
        description="The person's 17 [x, y, score] in pixels of the image, or null"
    )
    image_url: str
    thumbnail_url: str

    @classmethod
    def from_hit(cls, hit: Hit) -> SearchHit:
        row = hit.row
        image_id = str(row["image_id"])
        flat = row["keypoints"]
        keypoints = None
        if isinstance(flat, list):
            keypoints = [[float(v) for v in flat[i : i + 3]] for i in range(0, len(flat), 3)]
        return cls(
            id=str(row["id"]),
            image_id=image_id,
            person_index=cast(int, row["person_index"]),
            source=str(row.get("source") or "unknown"),
            source_uri=str(row["source_uri"]),
            width=cast(int, row["width"]),
            height=cast(int, row["height"]),
            score=hit.score,
            pose_score=hit.pose_score,
            clip_score=hit.clip_score,
            pose_raw=hit.pose_raw,
            clip_raw=hit.clip_raw,
            mirrored=hit.mirrored,
            licence=cast("str | None", row.get("licence")),
            attribution=cast("str | None", row.get("attribution")),
            medium=cast("str | None", row.get("medium")),
            page_url=cast("str | None", row.get("page_url")),
            framing=str(row["framing"]),
            keypoints=keypoints,
            image_url=image_url(image_id),
            thumbnail_url=thumbnail_url(image_id),
        )


class SearchResponse(BaseModel):
    results: list[SearchHit]
    table_version: int
    models: SearchModels = Field(description="The models that built the searched index")
    query_keypoints: list[list[float]] | None = Field(
        None, description="The pose searched for (as detected, for an image query)"
    )
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; null on the last page"
    )
    warnings: list[QueryWarningModel] = Field(
        default_factory=list,
        description="Parts of the query left out (e.g. text while text search is unavailable: "
        "the results are then ranked by pose alone), and a figure read unsurely from the "
        "image (`unsure_figure`: check `query_keypoints`)",
    )

    @classmethod
    def from_outcome(cls, outcome: SearchOutcome) -> SearchResponse:
        pose = outcome.query_pose
        return cls(
            results=[SearchHit.from_hit(h) for h in outcome.hits],
            table_version=outcome.snapshot.version,
            models=SearchModels.model_validate(outcome.snapshot.publication.models),
            query_keypoints=None if pose is None else [list(kp) for kp in pose.keypoints],
            next_cursor=outcome.next_cursor,
            warnings=warning_models(outcome.warnings),
        )


def image_url(image_id: str) -> str:
    return f"/images/{image_id}"


def thumbnail_url(image_id: str) -> str:
    return f"/images/{image_id}/thumbnail"
