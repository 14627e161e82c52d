"""Calibration of similarities, so that λ weighs comparable quantities.

Pose cosines and CLIP text-image cosines live on different scales (CLIP's cluster near
0.2–0.35, pose similarities spread over most of [-1, 1]); a raw weighted sum would let one
side dominate whatever λ says. Each similarity is mapped by an affine function

    calibrated = (raw − baseline) / (top − baseline)

where `baseline` is the mean similarity between a query and an arbitrary row of the corpus
and `top` its 99th percentile, both measured on the corpus itself when a version is
published. So 0 means "as similar as a random row" and 1 "as similar as the best 1 % of rows",
for pose and text alike; λ = 0.5 gives equal weight to a pose match and a text match that are
equally exceptional. An affine map keeps the one-index trick exact: the calibrated hybrid
score is a dot product of the stored vectors with a re-weighted query, plus a constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.records import FloatArray

TOP_PERCENTILE = 99.0


@dataclass(frozen=True)
class Affine:
    """`calibrated = scale · raw + offset`."""

    scale: float = 1.0
    offset: float = 0.0

    def __call__(self, raw: FloatArray) -> FloatArray:
        return (self.scale * raw + self.offset).astype(np.float32)

    @classmethod
    def identity(cls) -> Affine:
        return cls(1.0, 0.0)


def fit_affine(similarities: np.ndarray) -> Affine:
    """The map sending the mean of `similarities` to 0 and their 99th percentile to 1."""
    values = np.asarray(similarities, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size < 10:
        return Affine.identity()
    baseline = float(values.mean())
    top = float(np.percentile(values, TOP_PERCENTILE))
    if top - baseline < 1e-6:
        return Affine.identity()
    scale = 1.0 / (top - baseline)
    return Affine(scale=scale, offset=-baseline * scale)


def sample_similarities(
    queries: FloatArray, rows: FloatArray, max_pairs: int = 200_000, seed: int = 0
) -> FloatArray:
    """Similarities of random (query, row) pairs, for `fit_affine`."""
    if len(queries) == 0 or len(rows) == 0:
        return np.zeros(0, dtype=np.float32)
    rng = np.random.default_rng(seed)
    n_q = min(len(queries), 256)
    q = queries[rng.choice(len(queries), n_q, replace=False)]
    per_query = max(1, min(len(rows), max_pairs // n_q))
    r = rows[rng.choice(len(rows), per_query, replace=False)]
    return (q @ r.T).astype(np.float32).ravel()


@dataclass(frozen=True)
class Calibration:
    """The calibration of one published version: one affine map per similarity."""

    pose: Affine
    clip: Affine

    @classmethod
    def identity(cls) -> Calibration:
        return cls(Affine.identity(), Affine.identity())


def fit_calibration(
    pose: FloatArray, clip: FloatArray, text_queries: FloatArray | None
) -> Calibration:
    """A version's calibration from a sample of its rows' vectors: pose against pose, and CLIP
    images against `text_queries` (typical text queries' CLIP vectors) when given and of the
    same size; the identity for a side with nothing to measure."""
    pose_cal = fit_affine(sample_similarities(pose, pose)) if len(pose) else Affine.identity()
    clip_cal = Affine.identity()
    if text_queries is not None and len(clip) and text_queries.shape[1:] == clip.shape[1:]:
        clip_cal = fit_affine(sample_similarities(text_queries.astype(np.float32), clip))
    return Calibration(pose_cal, clip_cal)
