"""What the store hands out and takes in: its record types, and its errors."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from pipelines.retrieval.calibration import Affine, Calibration

_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def failure_id(stage: str, source_uri: str) -> str:
    """A failure row's id: one row per file and stage, holding the latest reason."""
    return f"{stage}|{source_uri}"


class StoreError(RuntimeError):
    pass


class VersionNotFoundError(StoreError):
    """No published version matches the one asked for."""


class NothingPublishedError(VersionNotFoundError):
    """The search table has never been published."""


def validate_batch_id(batch_id: str) -> str:
    if not _BATCH_ID.match(batch_id):
        raise ValueError(
            f"invalid batch id {batch_id!r}: use letters, digits and _ . : - (at most 128)"
        )
    return batch_id


@dataclass(frozen=True)
class Batch:
    batch_id: str
    source: str  # kind: folder, inbox, urls, crawl, openverse, pinterest
    location: str
    created_at: datetime
    options: dict[str, Any] | None = None  # the source's options; None: a plain folder
    source_name: str | None = None  # the configured source it came from, if any
    source_items: int | None = None  # what its last ingest found (None until it ran)
    new_images: int | None = None
    duplicates: int | None = None
    failures: int | None = None
    ingested_at: datetime | None = None

    def source_options(self) -> dict[str, Any]:
        """Options that rebuild the batch's source (`pipelines.sources.base.open_source`)."""
        if self.options is not None:
            return dict(self.options)
        return {"folder": self.location}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Batch:
        options = row.get("options")
        return cls(
            batch_id=row["batch_id"],
            source=row["source"],
            location=row["location"],
            created_at=row["created_at"],
            options=None if options is None else json.loads(options),
            source_name=row.get("source_name"),
            source_items=row.get("source_items"),
            new_images=row.get("new_images"),
            duplicates=row.get("duplicates"),
            failures=row.get("failures"),
            ingested_at=row.get("ingested_at"),
        )


@dataclass(frozen=True)
class ImageRecord:
    image_id: str
    batch_id: str
    source: str
    source_uri: str
    width: int
    height: int
    format: str
    media_type: str
    thumbnail: bytes
    page_url: str | None = None
    licence: str | None = None
    attribution: str | None = None
    fetched_at: datetime | None = None
    phash: str | None = None
    near_duplicate_group: str | None = None
    medium: str | None = None


@dataclass(frozen=True)
class PoseVector:
    image_id: str
    person_index: int
    vector: np.ndarray | None


@dataclass(frozen=True)
class FramingRecord:
    image_id: str
    framing: str
    person_framing: tuple[str, ...]


@dataclass(frozen=True)
class Publication:
    version: int
    tag: str
    published_at: datetime
    batches: tuple[str, ...]
    rows: int
    keypoint_model: str
    pose_model: str
    clip_model: str | None
    framing_model: str
    # Calibration of this version's similarities (pipelines.retrieval.calibration); identity by
    # default.
    pose_scale: float = 1.0
    pose_offset: float = 0.0
    clip_scale: float = 1.0
    clip_offset: float = 0.0

    @property
    def calibration(self) -> Calibration:
        return Calibration(
            Affine(self.pose_scale, self.pose_offset), Affine(self.clip_scale, self.clip_offset)
        )

    @property
    def models(self) -> dict[str, str | None]:
        return {
            "keypoint_model": self.keypoint_model,
            "pose_model": self.pose_model,
            "clip_model": self.clip_model,
            "framing_model": self.framing_model,
        }
