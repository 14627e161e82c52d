"""The configured sources: named, each with its kind, options and an optional schedule.

They are read from a YAML file (`POSEFRAMER_SOURCES`, default `$POSEFRAMER_HOME/sources.yaml`)
when the definitions load, so each scheduled source appears in the Dagster UI as a schedule:

```yaml
sources:
  - name: ballet-openverse
    kind: openverse            # folder, urls, crawl, openverse, pinterest
    schedule: "0 3 * * *"      # cron, or @hourly / @daily / @weekly; omit for none
    options:                   # the kind's options (see pipelines/<kind>.py)
      query: ballet dancer
      licences: [cc0, pdm, by, by-sa]
      max_images: 200
  - name: studio-site
    kind: crawl
    schedule: "@weekly"
    options:
      seeds: [https://example.org/gallery/]
      depth: 2
      fetch: {min_interval_s: 2.0}
```

A bad file stops the definitions from loading with a message naming the source and option.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from dagster._utils.schedules import is_valid_cron_string
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.sources.base import ImageSource, SourceConfigError, open_source
from storage.records import Batch
from storage.store import Store

SOURCE_TAG = "poseframer/source"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
_CRON_ALIASES = {"@hourly", "@daily", "@weekly", "@monthly"}


class SourceSpec(BaseModel):
    """One configured source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="lower-case letters, digits, - and _; names its batches")
    kind: str
    options: dict[str, Any] = Field(default_factory=dict)
    schedule: str | None = Field(None, description="cron string or @hourly/@daily/@weekly")
    schedule_running: bool = Field(
        True, description="whether the schedule starts running (toggle it in the UI later)"
    )
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(
                f"source name {name!r} must be lower-case letters, digits, - and _ (≤ 48)"
            )
        return name

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, schedule: str | None) -> str | None:
        if schedule is None:
            return None
        schedule = schedule.strip()
        if schedule not in _CRON_ALIASES and not is_valid_cron_string(schedule):
            raise ValueError(f"schedule {schedule!r} is not a cron string or @daily-like alias")
        return schedule

    def source(self) -> ImageSource:
        return open_source(self.kind, self.options)

    @property
    def job_safe_name(self) -> str:
        """The name as Dagster names its definitions (letters, digits, underscores)."""
        return self.name.replace("-", "_")

    def batch_id(self, when: datetime) -> str:
        """One batch per run: the source name and the run's (scheduled) time."""
        return f"{self.name}-{when.astimezone(UTC):%Y%m%d-%H%M%S}"

    def register_batch(self, store: Store, batch_id: str) -> Batch:
        return store.register_batch(
            batch_id,
            self.kind,
            self.source().describe(),
            options=self.options,
            source_name=self.name,
        )


class SourcesConfigError(ValueError):
    pass


def load_sources(path: Path | None) -> list[SourceSpec]:
    """The sources configured in `path` (none when it is None), validated: each kind's
    options are checked by building its source (no network)."""
    if path is None:
        return []
    if not path.is_file():
        raise SourcesConfigError(f"sources file not found: {path} (POSEFRAMER_SOURCES)")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SourcesConfigError(f"{path}: not valid YAML: {exc}") from None
    entries = document.get("sources") if isinstance(document, dict) else None
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise SourcesConfigError(f"{path}: `sources` must be a list of sources")
    specs: list[SourceSpec] = []
    for number, entry in enumerate(entries, 1):
        label = entry.get("name", f"#{number}") if isinstance(entry, dict) else f"#{number}"
        try:
            spec = SourceSpec.model_validate(entry)
            spec.source()
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'source'}: {e['msg']}"
                for e in exc.errors()
            )
            raise SourcesConfigError(f"{path}: source {label}: {problems}") from None
        except SourceConfigError as exc:
            raise SourcesConfigError(f"{path}: source {label}: {exc}") from None
        specs.append(spec)
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SourcesConfigError(f"{path}: source names must be unique: {duplicates}")
    return specs
