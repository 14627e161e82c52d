"""Resources: the store, the models and progress reporting, configured in `definitions.py`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from config.settings import ModelSettings
from pipelines.clip.encoder import ClipEncoder
from pipelines.pose.embedding import PoseEmbedder
from pipelines.pose.framing import FramingClassifier
from pipelines.pose.keypoints import KeypointDetector
from pipelines.registry import parse_options
from pipelines.retrieval.ann import ANN_MIN_ROWS
from pipelines.sources.inbox import claimed_batches_folder, inbox_folder
from storage.store import Store


class StoreResource(dg.ConfigurableResource):
    """The LanceDB tables and blob store of one PoseFramer home directory.

    The tables sit in `<home>/lancedb` unless `lancedb_uri` names another place, such as
    object storage (`s3://bucket/prefix`) with `lancedb_storage_options`. Those options are
    resource config, shown in the Dagster UI: keep keys in the AWS_* environment instead.
    """

    home: str
    lancedb_uri: str | None = None
    lancedb_storage_options: dict[str, str] | None = None
    ann_min_rows: int = ANN_MIN_ROWS

    def get(self) -> Store:
        return Store.at_home(
            Path(self.home), self.lancedb_uri, self.lancedb_storage_options, self.ann_min_rows
        )

    @property
    def inbox(self) -> Path:
        """The watched folder: files dropped or uploaded here become a new batch."""
        return inbox_folder(Path(self.home))

    @property
    def inbox_batches(self) -> Path:
        """Where the inbox sensor moves each claimed batch of files (one folder per batch)."""
        return claimed_batches_folder(Path(self.home))


class KeypointModelResource(dg.ConfigurableResource):
    """A keypoint backend by name; `device` goes to backends that take one (auto: theirs)."""

    name: str = "mediapipe"
    device: str = "auto"
    options_json: str = "{}"  # the backend's options, a JSON object

    def get(self) -> KeypointDetector:
        return ModelSettings(
            keypoint_model=self.name,
            keypoint_model_options=parse_options(self.options_json, "keypoint_model.options_json"),
            device=self.device,
        ).keypoints()


class PoseModelResource(dg.ConfigurableResource):
    name: str = "geometric-v1"
    options_json: str = "{}"  # the backend's options, a JSON object

    def get(self) -> PoseEmbedder:
        return ModelSettings(
            pose_model=self.name,
            pose_model_options=parse_options(self.options_json, "pose_model.options_json"),
        ).pose()


class FramingModelResource(dg.ConfigurableResource):
    name: str = "keypoint-rules-v1"

    def get(self) -> FramingClassifier:
        return ModelSettings(framing_model=self.name).framing()


class ClipModelResource(dg.ConfigurableResource):
    """open_clip architecture + weights (pretrained tag, checkpoint path, or "random" in tests)."""

    model: str = "ViT-B-32"
    pretrained: str = "laion2b_s34b_b79k"
    config_path: str | None = None
    device: str = "auto"
    batch_size: int = 32
    # Where a failure to get the weights is remembered, and for how long (seconds).
    status_file: str | None = None
    retry_after_s: float = 3600.0

    def get(self) -> ClipEncoder:
        return ModelSettings(
            clip_model=self.model,
            clip_pretrained=self.pretrained,
            clip_config=self.config_path,
            device=self.device,
            batch_size=self.batch_size,
            clip_retry_after=self.retry_after_s,
        ).clip(None if self.status_file is None else Path(self.status_file))


class ProgressResource(dg.ConfigurableResource):
    """Progress of long loops: Dagster log lines always, a terminal bar when `bar` is set."""

    bar: bool = False
    _log_every: int = PrivateAttr(default=10)

    @contextmanager
    def track(self, context: dg.AssetExecutionContext, stage: str, total: int) -> Iterator[Any]:
        """`advance(n)` reports n more items; `total` 0 means unknown (a streaming source)."""
        bar: Any = None
        if self.bar:
            from tqdm import tqdm

            bar = tqdm(
                total=total or None, desc=f"{stage:>16}", unit="img", file=sys.stderr, leave=True
            )
        step = max(1, total // self._log_every) if total else 50
        done = 0

        def advance(n: int = 1) -> None:
            nonlocal done
            before = done
            done += n
            if bar is not None:
                bar.update(n)
            if done == total or done // step != before // step:
                context.log.info(f"{stage}: {done}/{total or '?'}")

        try:
            yield advance
        finally:
            if bar is not None:
                bar.close()
