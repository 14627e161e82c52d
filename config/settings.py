"""PoseFramer's settings: one model, read from the environment in this one module.

Every field is read from `POSEFRAMER_<FIELD>` (e.g. `POSEFRAMER_HOME`,
`POSEFRAMER_MAX_UPLOAD_BYTES`), whichever concern it belongs to, so one environment builds
the index (the Dagster layer) and answers queries (the service) with the same models. The
fields are grouped by concern: `storage` (where things are), `models` (what reads the
images), `indexing` (sources, the inbox) and `service` (the HTTP API). Bad values are all
reported at once, each naming its variable (`describe_settings_error`), when the settings
are read, not later as a confusing error mid-run.

    settings = Settings.from_env()                 # the environment, as the programs read it
    settings = Settings.from_env(port=9001)        # with the command line's overrides
    settings = Settings.of(home=tmp, device="cpu") # keyword values only (tests, benchmarks)
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from pipelines.catalog import clip_models, framing_models, keypoint_models, pose_models
from pipelines.clip.encoder import CLIP_STATUS_FILE, ClipEncoder
from pipelines.pose.embedding import PoseEmbedder
from pipelines.pose.framing import FramingClassifier
from pipelines.pose.keypoints import KeypointDetector
from pipelines.registry import Registry, UnknownModelError, check_device, parse_options
from pipelines.retrieval.ann import ANN_MIN_ROWS
from pipelines.sources.inbox import inbox_folder
from storage.location import parse_db_uri, parse_storage_options
from storage.store import Store

ENV_PREFIX = "POSEFRAMER_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any, info: Any) -> Any:
        # An exported-but-empty variable (POSEFRAMER_TABLE_VERSION=) means "not set".
        if isinstance(value, str) and not value.strip():
            field = cls.model_fields[info.field_name]
            if not field.is_required():
                return field.get_default(call_default_factory=True)
        return value.strip() if isinstance(value, str) else value


class StorageSettings(_Section):
    """Where the tables, originals and the Dagster instance live."""

    home: Path = Field(
        Path(".poseframer"),
        description="One directory holding lancedb/ (tables), blobs/ (originals) and dagster/.",
    )
    lancedb_uri: str | None = Field(
        None,
        description="Where the LanceDB tables are: a local directory or object storage "
        "(s3://bucket/prefix); unset: <home>/lancedb. Originals stay in <home>/blobs.",
    )
    lancedb_storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="Object-store options of the LanceDB location, a JSON object "
        '(e.g. {"endpoint": "http://minio:9000", "region": "us-east-1", "allow_http": true}).',
    )
    ann_min_rows: int = Field(
        ANN_MIN_ROWS,
        ge=0,
        description="A published version with at least this many rows gets an ANN index "
        "(below it, exact scoring is faster).",
    )

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("lancedb_uri")
    @classmethod
    def _db_location(cls, uri: str | None) -> str | None:
        return None if uri is None else parse_db_uri(uri, "lancedb_uri")

    @field_validator("lancedb_storage_options", mode="before")
    @classmethod
    def _storage_options(cls, value: Any) -> Any:
        if isinstance(value, str | dict):
            return parse_storage_options(value, "lancedb_storage_options")
        return value

    def open_store(self) -> Store:
        """The tables (local or object storage) and the home's blob store."""
        return Store.at_home(
            self.home, self.lancedb_uri, self.lancedb_storage_options, self.ann_min_rows
        )

    @property
    def clip_status_file(self) -> Path:
        """Where a failure to load CLIP weights is remembered (see pipelines.clip.weights)."""
        return self.home / CLIP_STATUS_FILE

    @property
    def inbox(self) -> Path:
        """The watched folder: files dropped or uploaded here become a new batch."""
        return inbox_folder(self.home)


def _accepts(cls: Any, parameter: str) -> bool:
    try:
        return parameter in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def _json_object(value: Any, variable: str) -> Any:
    return parse_options(value, variable) if isinstance(value, str) else value


class ModelSettings(_Section):
    """The models that read images and queries; the one place each is built."""

    keypoint_model: str = "mediapipe"
    keypoint_model_options: dict[str, Any] = Field(
        default_factory=dict, description="Keypoint backend options, a JSON object."
    )
    pose_model: str = "geometric-v1"
    pose_model_options: dict[str, Any] = Field(
        default_factory=dict, description="Pose embedding backend options, a JSON object."
    )
    framing_model: str = "keypoint-rules-v1"
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = Field(
        "laion2b_s34b_b79k",
        description='open_clip pretrained tag, a local checkpoint path, or "random" (tests only).',
    )
    clip_config: str | None = Field(
        None, description="Path of an extra open_clip model config JSON to register."
    )
    device: str = "auto"
    batch_size: int = Field(32, gt=0, description="Images per CLIP batch when indexing.")
    clip_retry_after: float = Field(
        3600.0,
        ge=0,
        description="Seconds a failure to load CLIP weights is remembered (in the home) before "
        "they are tried again; a change of the CLIP settings tries at once.",
    )

    @field_validator("keypoint_model_options", "pose_model_options", mode="before")
    @classmethod
    def _options(cls, value: Any, info: Any) -> Any:
        return _json_object(value, f"{ENV_PREFIX}{info.field_name.upper()}")

    @field_validator("keypoint_model", "pose_model", "framing_model")
    @classmethod
    def _known_model(cls, name: str, info: Any) -> str:
        registries: dict[str, Registry[Any]] = {
            "keypoint_model": keypoint_models,
            "pose_model": pose_models,
            "framing_model": framing_models,
        }
        registry = registries[info.field_name]
        try:
            registry.backend_class(name)
        except UnknownModelError as exc:
            raise ValueError(str(exc)) from None
        return name

    @field_validator("clip_config", mode="before")
    @classmethod
    def _config_path_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, Path) else value

    @field_validator("clip_config")
    @classmethod
    def _config_exists(cls, path: str | None) -> str | None:
        if path is not None and not Path(path).expanduser().is_file():
            raise ValueError(f"open_clip model config file not found: {path}")
        return None if path is None else str(Path(path).expanduser())

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        return check_device(device)

    def keypoints(self) -> KeypointDetector:
        """The keypoint backend; `device` goes to backends that take one (auto: theirs)."""
        options = dict(self.keypoint_model_options)
        backend = keypoint_models.backend_class(self.keypoint_model)
        if self.device != "auto" and _accepts(backend, "device"):
            options.setdefault("device", self.device)
        return keypoint_models.load(self.keypoint_model, **options)

    def pose(self) -> PoseEmbedder:
        return pose_models.load(self.pose_model, **self.pose_model_options)

    def framing(self) -> FramingClassifier:
        return framing_models.load(self.framing_model)

    def clip(self, status_file: Path | None = None) -> ClipEncoder:
        """The CLIP encoder (its weights load lazily); `status_file` remembers a failure."""
        return clip_models.load(
            "open-clip",
            model=self.clip_model,
            pretrained=self.clip_pretrained,
            config_path=self.clip_config,
            device=self.device,
            batch_size=self.batch_size,
            status_file=None if status_file is None else str(status_file),
            retry_after_s=self.clip_retry_after,
        )


class IndexingSettings(_Section):
    """What the Dagster layer indexes: the configured sources, the inbox."""

    sources: Path | None = Field(
        None, description="The sources file (YAML); unset: <home>/sources.yaml when it exists."
    )
    inbox_settle_seconds: float = Field(
        10.0, ge=0, description="Seconds an inbox file must stay unchanged before it is taken."
    )

    @field_validator("sources")
    @classmethod
    def _absolute_sources(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().resolve()


class ServiceSettings(_Section):
    """The search API."""

    table_version: str | None = Field(
        None,
        description="Serve this search table version (number or tag); unset follows the latest.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser, comma-separated "
        "(e.g. http://localhost:3000), or * for any.",
    )
    model_wait: float = Field(
        20.0,
        ge=0,
        description="Seconds a query waits for models still loading at startup before a 503 "
        "with Retry-After.",
    )
    max_upload_bytes: int = Field(20 * 1024 * 1024, gt=0, description="Largest accepted image.")
    api_key: SecretStr | None = Field(
        None,
        description="Key a client sends as X-API-Key to upload images (POST /uploads); "
        "unset: uploads are disabled.",
    )
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8000, ge=1, le=65535)

    @field_validator("table_version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin == "*":
                continue
            if not re.match(r"^https?://[^/\s]+$", origin):
                # Browsers send the Origin header as scheme://host[:port] with no path, so an
                # origin with a trailing slash or path would silently never match.
                raise ValueError(
                    f"CORS origin {origin!r} must look like http://host[:port] or "
                    "https://host[:port] (no path, no trailing slash), or be *"
                )
        return origins


_SECTIONS: dict[str, type[_Section]] = {
    "storage": StorageSettings,
    "models": ModelSettings,
    "indexing": IndexingSettings,
    "service": ServiceSettings,
}
_SECTION_OF = {name: section for section, cls in _SECTIONS.items() for name in cls.model_fields}


class Settings(BaseModel):
    """All of PoseFramer's settings, by concern."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    storage: StorageSettings = Field(default_factory=StorageSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    indexing: IndexingSettings = Field(default_factory=IndexingSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)

    @classmethod
    def of(cls, **values: Any) -> Settings:
        """Settings from flat keyword values (`home=…, port=…`) and defaults, ignoring the
        environment; a name no section has is an error."""
        unknown = sorted(set(values) - set(_SECTION_OF))
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        grouped: dict[str, dict[str, Any]] = {section: {} for section in _SECTIONS}
        for name, value in values.items():
            grouped[_SECTION_OF[name]][name] = value
        return cls.model_validate(grouped)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `POSEFRAMER_*` variables (other variables are not ours, and other
        `POSEFRAMER_*` names are left to the tools that read them), then `overrides`."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {
            name: environ[variable]
            for name, variable in zip(_SECTION_OF, cls.variables(), strict=True)
            if variable in environ
        }
        values.update(overrides)
        return cls.of(**values)

    @staticmethod
    def variables() -> list[str]:
        """The environment variables the settings read, one per field."""
        return [f"{ENV_PREFIX}{name.upper()}" for name in _SECTION_OF]

    @property
    def sources_path(self) -> Path | None:
        """The sources file: the configured one, or <home>/sources.yaml when it exists."""
        if self.indexing.sources is not None:
            return self.indexing.sources
        default = self.storage.home / "sources.yaml"
        return default if default.is_file() else None

    def clip(self) -> ClipEncoder:
        """The CLIP encoder, remembering a failure to load its weights in the home."""
        return self.models.clip(self.storage.clip_status_file)


def describe_settings_error(exc: Exception) -> str:
    """A settings error as lines naming the environment variables to fix."""
    if not isinstance(exc, ValidationError):
        return f"invalid PoseFramer settings: {exc}"
    lines = ["invalid PoseFramer settings:"]
    for error in exc.errors():
        field = str(error["loc"][-1]) if error["loc"] else "settings"
        given = error.get("input")
        hint = f" (got {given!r})" if isinstance(given, str | int) else ""
        lines.append(f"  {ENV_PREFIX}{field.upper()}: {error['msg']}{hint}")
    return "\n".join(lines)


__all__ = [
    "ENV_PREFIX",
    "IndexingSettings",
    "ModelSettings",
    "ServiceSettings",
    "Settings",
    "StorageSettings",
    "describe_settings_error",
]
