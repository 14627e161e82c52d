"""The service's configuration: the one place serving reads the environment.

Every field is read from `POSEFRAMER_<FIELD>` (e.g. `POSEFRAMER_HOME`). The indexing side
(assets/) reads the same variables, so one environment builds the index and answers queries
with the same models. Bad values stop the service at startup with a message naming the
variable, rather than surfacing later as a confusing search error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipelines.keypoints import keypoint_models
from pipelines.pose_embedding import pose_models
from pipelines.registry import UnknownModelError, check_device
from storage.location import parse_db_uri, parse_storage_options
from storage.store import Store

ENV_PREFIX = "POSEFRAMER_"


class ServingSettings(BaseSettings):
    """Settings of the search service (`POSEFRAMER_*` environment variables)."""

    # Other POSEFRAMER_* variables belong to the indexing side (batch size, framing model):
    # the environment may hold them, so only unknown *keyword* arguments are errors.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", validate_default=True, frozen=True
    )

    home: Path = Field(
        Path(".poseframer"),
        description="One directory holding lancedb/ (tables), blobs/ (originals) and dagster/.",
    )
    table_version: str | None = Field(
        None,
        description="Serve this search table version (number or tag); unset follows the latest.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser, comma-separated "
        "(e.g. http://localhost:3000), or * for any.",
    )
    keypoint_model: str = "mediapipe"
    pose_model: str = "geometric-v1"
    keypoint_model_options: dict[str, Any] = Field(
        default_factory=dict, description="Keypoint backend options, a JSON object."
    )
    pose_model_options: dict[str, Any] = Field(
        default_factory=dict, description="Pose embedding backend options, a JSON object."
    )
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = Field(
        "laion2b_s34b_b79k",
        description='open_clip pretrained tag, a local checkpoint path, or "random" (tests only).',
    )
    clip_config: str | None = Field(
        None, description="Path of an extra open_clip model config JSON to register."
    )
    device: str = "auto"
    clip_retry_after: float = Field(
        3600.0,
        ge=0,
        description="Seconds a failure to load CLIP weights is remembered (in the home) before "
        "they are tried again; a change of the CLIP settings tries at once.",
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
    lancedb_uri: str | None = Field(
        None,
        description="Where the LanceDB tables are: a local directory or object storage "
        "(s3://bucket/prefix); unset: <home>/lancedb. Originals stay in <home>/blobs.",
    )
    lancedb_storage_options: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Object-store options of the LanceDB location, a JSON object "
        '(e.g. {"endpoint": "http://minio:9000", "region": "us-east-1", "allow_http": true}).',
    )
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8000, ge=1, le=65535)

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("table_version", "clip_config", "api_key", "lancedb_uri", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, Path | int):  # a config path given as a Path, a version number
            value = str(value)
        # An exported-but-empty variable (POSEFRAMER_TABLE_VERSION=) means "not set".
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

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
        return Store.at_home(self.home, self.lancedb_uri, self.lancedb_storage_options)

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

    @field_validator("keypoint_model", "pose_model")
    @classmethod
    def _known_model(cls, name: str, info: ValidationInfo) -> str:
        registry = keypoint_models if info.field_name == "keypoint_model" else pose_models
        try:
            registry.backend_class(name)
        except UnknownModelError as exc:
            raise ValueError(str(exc)) from None
        return name

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


def describe_settings_error(exc: Exception) -> str:
    """A settings validation error as lines naming the environment variables to fix."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    lines = ["invalid PoseFramer settings:"]
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        given = error.get("input")
        hint = f" (got {given!r})" if isinstance(given, str | int) else ""
        lines.append(f"  {ENV_PREFIX}{field.upper()}: {error['msg']}{hint}")
    return "\n".join(lines)
