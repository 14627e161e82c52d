"""Typical text queries, whose CLIP vectors place an index's text-to-image similarities on a
scale (`pipelines.retrieval.calibration` fits the map when a version is published)."""

from __future__ import annotations

from pipelines.clip.encoder import ClipEncoder, ClipUnavailableError
from pipelines.records import FloatArray

# Typical queries of an artist looking for reference, to place CLIP's text-to-image
# similarities on a scale (their spread, not their meaning, is what is measured).
CALIBRATION_PROMPTS: tuple[str, ...] = (
    "a photo of a person",
    "a person standing",
    "a person sitting on a chair",
    "a dancer mid-leap",
    "a person running",
    "a woman reading a book",
    "a man lifting weights",
    "two people hugging",
    "a figure drawing of a pose",
    "a portrait of a face",
    "a crowd of people",
    "a person lying on the floor",
    "someone reaching up with both arms",
    "a martial artist kicking",
    "a child playing",
    "a person walking a dog",
)


def calibration_queries(encoder: ClipEncoder, index_clip_model: str | None) -> FloatArray | None:
    """The text vectors of `CALIBRATION_PROMPTS`, to calibrate the CLIP side of an index
    whose image vectors are `index_clip_model`'s; None when `encoder` is another model or
    cannot load (the index is then calibrated without them)."""
    if index_clip_model != encoder.model_id:
        return None
    try:
        return encoder.encode_texts(list(CALIBRATION_PROMPTS))
    except ClipUnavailableError:
        return None
