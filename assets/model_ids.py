"""Each model asset's `code_version`, from the settings' models."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings


@dataclass(frozen=True)
class ModelIds:
    """Each model asset's `code_version`: changing a model marks exactly its assets stale."""

    keypoints: str
    pose: str
    framing: str
    clip: str

    @classmethod
    def of(cls, settings: Settings) -> ModelIds:
        # Constructors are cheap (weights load lazily), so this is safe at definitions load.
        models = settings.models
        return cls(
            keypoints=models.keypoints().model_id,
            pose=models.pose().model_id,
            framing=models.framing().model_id,
            clip=models.clip().model_id,
        )
