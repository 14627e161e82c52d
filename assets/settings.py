"""Indexing settings from the environment (the edge of the Dagster layer).

The same `POSEFRAMER_*` variables configure the search service, so the index and the queries
are built with the same models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from pipelines.clip import CLIP_STATUS_FILE, clip_models
from pipelines.framing import framing_models
from pipelines.inbox import inbox_folder
from pipelines.keypoints import keypoint_models
from pipelines.pose_embedding import pose_models
from pipelines.registry import check_device, parse_options
from storage.location import parse_db_uri, parse_storage_options
from storage.store import Store

DEFAULT_HOME = ".poseframer"


def _env(name: str, default: str) -> str:
    return dg.EnvVar(f"POSEFRAMER_{name}").get_value(default) or default


def _seconds(name: str, default: str) -> float:
    """A `POSEFRAMER_<name>` duration: a number of seconds ≥ 0."""
    text = _env(name, default)
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise ValueError(f"POSEFRAMER_{name} must be a number ≥ 0, not {text!r}")
    return value


@dataclass(frozen=True)
class IndexSettings:
    home: Path
    keypoint_model: str = "mediapipe"
    pose_model: str = "geometric-v1"
    # Backend options (weights paths and the like), JSON objects in the environment.
    keypoint_options: dict[str, Any] = field(default_factory=dict)
    pose_options: dict[str, Any] = field(default_factory=dict)
    framing_model: str = "keypoint-rules-v1"
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = "laion2b_s34b_b79k"
    clip_config: str | None = None
    device: str = "auto"
    batch_size: int = 32
    # How long a failure to load CLIP weights is remembered before they are tried again.
    clip_retry_after_s: float = 3600.0
    # The configured sources (YAML); None: $POSEFRAMER_HOME/sources.yaml when it exists.
    sources_file: Path | None = None
    inbox_settle_seconds: float = 10.0
    # The LanceDB tables: None is <home>/lancedb; or object storage (s3://bucket/prefix) with
    # its storage options (endpoint, region, allow_http, keys; see storage/location.py).
    lancedb_uri: str | None = None
    lancedb_storage_options: dict[str, str] = field(default_factory=dict)

    def open_store(self) -> Store:
        """The tables (local or object storage) and the home's blob store."""
        return Store.at_home(self.home, self.lancedb_uri, self.lancedb_storage_options)

    @property
    def clip_status_file(self) -> Path:
        """Where a failure to load CLIP weights is remembered (see pipelines.clip_weights)."""
        return self.home / CLIP_STATUS_FILE

    @property
    def inbox(self) -> Path:
        """The watched folder: files dropped or uploaded here become a new batch."""
        return inbox_folder(self.home)

    @property
    def sources_path(self) -> Path | None:
        if self.sources_file is not None:
            return self.sources_file
        default = self.home / "sources.yaml"
        return default if default.is_file() else None

    @classmethod
    def from_env(cls) -> IndexSettings:
        batch_size = _env("BATCH_SIZE", "32")
        if not batch_size.isdigit() or int(batch_size) < 1:
            raise ValueError(
                f"POSEFRAMER_BATCH_SIZE must be a positive integer, not {batch_size!r}"
            )
        device = _env("DEVICE", "auto")
        try:
            check_device(device)
        except ValueError as exc:
            raise ValueError(f"POSEFRAMER_DEVICE: {exc}") from None
        settle_s = _seconds("INBOX_SETTLE_SECONDS", "10")
        retry_s = _seconds("CLIP_RETRY_AFTER", "3600")
        sources = _env("SOURCES", "")
        lancedb_uri = _env("LANCEDB_URI", "")
        return cls(
            home=Path(_env("HOME", DEFAULT_HOME)).resolve(),
            keypoint_model=_env("KEYPOINT_MODEL", cls.keypoint_model),
            pose_model=_env("POSE_MODEL", cls.pose_model),
            keypoint_options=parse_options(
                _env("KEYPOINT_MODEL_OPTIONS", "{}"), "POSEFRAMER_KEYPOINT_MODEL_OPTIONS"
            ),
            pose_options=parse_options(
                _env("POSE_MODEL_OPTIONS", "{}"), "POSEFRAMER_POSE_MODEL_OPTIONS"
            ),
            framing_model=_env("FRAMING_MODEL", cls.framing_model),
            clip_model=_env("CLIP_MODEL", cls.clip_model),
            clip_pretrained=_env("CLIP_PRETRAINED", cls.clip_pretrained),
            clip_config=_env("CLIP_CONFIG", "") or None,
            device=device,
            batch_size=int(batch_size),
            clip_retry_after_s=retry_s,
            sources_file=Path(sources).expanduser().resolve() if sources else None,
            inbox_settle_seconds=settle_s,
            lancedb_uri=parse_db_uri(lancedb_uri, "POSEFRAMER_LANCEDB_URI")
            if lancedb_uri
            else None,
            lancedb_storage_options=parse_storage_options(
                _env("LANCEDB_STORAGE_OPTIONS", "{}"), "POSEFRAMER_LANCEDB_STORAGE_OPTIONS"
            ),
        )


@dataclass(frozen=True)
class ModelIds:
    """Each model asset's `code_version`: changing a model marks exactly its assets stale."""

    keypoints: str
    pose: str
    framing: str
    clip: str

    @classmethod
    def of(cls, settings: IndexSettings) -> ModelIds:
        # Constructors are cheap (weights load lazily), so this is safe at definitions load.
        clip = clip_models.load(
            "open-clip",
            model=settings.clip_model,
            pretrained=settings.clip_pretrained,
            config_path=settings.clip_config,
            device=settings.device,
            batch_size=settings.batch_size,
        )
        return cls(
            keypoints=keypoint_models.load(
                settings.keypoint_model, **settings.keypoint_options
            ).model_id,
            pose=pose_models.load(settings.pose_model, **settings.pose_options).model_id,
            framing=framing_models.load(settings.framing_model).model_id,
            clip=clip.model_id,
        )
