"""Asset checks, shown on each asset's Checks tab and run with every indexing run.

The vector checks are blocking: a batch with NaN or non-unit vectors is not published.
"""

# No `from __future__ import annotations`: Dagster reads the context annotations.
import warnings
from collections.abc import Iterable
from typing import Any

import dagster as dg
import numpy as np

from assets.partitions import ingest_batches
from assets.resources import ClipModelResource, PoseModelResource, StoreResource
from pipelines.clip.encoder import CONFIGURE_HINT, ClipUnavailableError

# Above this share of a batch's source items failing, the batch is flagged (a warning: a
# site that changed its markup, an API that started refusing us).
MAX_FAILURE_RATE = 0.2
UNIT_NORM_TOLERANCE = 1e-3


def vector_check(vectors: Iterable[np.ndarray], dim: int) -> dg.AssetCheckResult:
    """Right length, finite, unit norm: what cosine scoring assumes of every stored vector."""
    rows = list(vectors)
    wrong_dim = sum(1 for v in rows if v.shape != (dim,))
    good = [v for v in rows if v.shape == (dim,)]
    matrix = np.stack(good).astype(np.float64) if good else np.zeros((0, dim))
    finite = np.all(np.isfinite(matrix), axis=1)
    norms = np.linalg.norm(np.where(np.isfinite(matrix), matrix, 0.0), axis=1)
    not_unit = int(np.sum(finite & (np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE)))
    error = float(np.max(np.abs(norms[finite] - 1.0))) if finite.any() else 0.0
    non_finite = int(np.sum(~finite))
    return dg.AssetCheckResult(
        passed=wrong_dim == 0 and non_finite == 0 and not_unit == 0,
        metadata={
            "vectors": len(rows),
            "dim": dim,
            "wrong_dim": wrong_dim,
            "with_nan_or_inf": non_finite,
            "not_unit_norm": not_unit,
            "max_norm_error": error,
        },
    )


def _per_batch_table(rows: list[dict[str, object]]) -> dg.MetadataValue:
    if not rows:
        return dg.MetadataValue.md("no batches")
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return dg.MetadataValue.md("\n".join(lines))


# Partitioned checks (one result per batch, on the asset's partitions) are a Dagster preview
# feature; we rely on it deliberately.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)

    @dg.asset_check(
        asset="pose_embeddings",
        partitions_def=ingest_batches,
        blocking=True,
        description="Every pose vector has the model's dimension, no NaN/inf, and unit norm.",
    )
    def pose_vectors_valid(
        context: dg.AssetCheckExecutionContext, store: StoreResource, pose_model: PoseModelResource
    ) -> dg.AssetCheckResult:
        _, vectors = store.get().pose_embeddings_for_batches(list(context.partition_keys))
        return vector_check((v for v in vectors.values() if v is not None), pose_model.get().dim)

    @dg.asset_check(
        asset="clip_embeddings",
        partitions_def=ingest_batches,
        blocking=True,
        description="Every CLIP vector has the model's dimension, no NaN/inf, and unit norm.",
    )
    def clip_vectors_valid(
        context: dg.AssetCheckExecutionContext, store: StoreResource, clip_model: ClipModelResource
    ) -> dg.AssetCheckResult:
        _, vectors = store.get().clip_embeddings_for_batches(list(context.partition_keys))
        return vector_check(vectors.values(), clip_model.get().dim)

    @dg.asset_check(
        asset="clip_embeddings",
        partitions_def=ingest_batches,
        description="Every image of the batch has a CLIP vector, so text search can find it "
        "(warns, with the reason, when the batch was indexed without CLIP weights).",
    )
    def clip_vectors_present(
        context: dg.AssetCheckExecutionContext, store: StoreResource, clip_model: ClipModelResource
    ) -> dg.AssetCheckResult:
        db = store.get()
        batches = list(context.partition_keys)
        images = db.images_per_batch("images", batches)
        with_vectors = db.images_per_batch("clip_embeddings", batches)
        rows = [
            {"batch": b, "images": images.get(b, 0), "clip_vectors": with_vectors.get(b, 0)}
            for b in batches
        ]
        missing = sum(max(0, images.get(b, 0) - with_vectors.get(b, 0)) for b in batches)
        metadata: dict[str, Any] = {
            "images_without_clip": missing,
            "batches": _per_batch_table(rows),
        }
        if missing:
            try:
                clip_model.get().load()
            except ClipUnavailableError as exc:
                metadata["reason"] = exc.reason
                metadata["how_to_fix"] = CONFIGURE_HINT
        return dg.AssetCheckResult(
            passed=missing == 0,
            severity=dg.AssetCheckSeverity.WARN,
            description=None
            if missing == 0
            else f"{missing} image(s) have no CLIP vector: text search cannot find them"
            + (f" ({metadata['reason']})" if "reason" in metadata else ""),
            metadata=metadata,
        )

    @dg.asset_check(
        asset="source_images",
        partitions_def=ingest_batches,
        description=(
            "Every item the source yielded is accounted for (new, duplicate or failed), and "
            "the images table holds at least the batch's new images."
        ),
    )
    def source_rows_accounted(
        context: dg.AssetCheckExecutionContext, store: StoreResource
    ) -> dg.AssetCheckResult:
        db = store.get()
        batches = list(context.partition_keys)
        stored = db.images_per_batch("images", batches)
        rows: list[dict[str, object]] = []
        passed = True
        for batch_id in batches:
            batch = db.get_batch(batch_id)
            if batch is None or batch.source_items is None:
                passed = False
                rows.append({"batch": batch_id, "problem": "never ingested"})
                continue
            accounted = (batch.new_images or 0) + (batch.duplicates or 0) + (batch.failures or 0)
            ok = accounted == batch.source_items and stored.get(batch_id, 0) >= (
                batch.new_images or 0
            )
            passed &= ok
            rows.append(
                {
                    "batch": batch_id,
                    "source_items": batch.source_items,
                    "new": batch.new_images,
                    "duplicates": batch.duplicates,
                    "failures": batch.failures,
                    "image_rows": stored.get(batch_id, 0),
                    "ok": ok,
                }
            )
        return dg.AssetCheckResult(passed=passed, metadata={"batches": _per_batch_table(rows)})

    @dg.asset_check(
        asset="source_images",
        partitions_def=ingest_batches,
        description=f"At most {MAX_FAILURE_RATE:.0%} of a batch's source items failed.",
    )
    def ingest_failure_rate(
        context: dg.AssetCheckExecutionContext, store: StoreResource
    ) -> dg.AssetCheckResult:
        db = store.get()
        worst = 0.0
        rows: list[dict[str, object]] = []
        for batch_id in context.partition_keys:
            batch = db.get_batch(batch_id)
            items = (batch.source_items if batch else None) or 0
            failed = (batch.failures if batch else None) or 0
            rate = failed / items if items else 0.0
            worst = max(worst, rate)
            rows.append(
                {"batch": batch_id, "items": items, "failures": failed, "rate": f"{rate:.1%}"}
            )
        return dg.AssetCheckResult(
            passed=worst <= MAX_FAILURE_RATE,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"failure_rate": worst, "batches": _per_batch_table(rows)},
        )

    @dg.asset_check(
        asset="search_index",
        partitions_def=ingest_batches,
        description=(
            "Every image of the batch whose keypoints were extracted has rows in the served "
            "table (a person row each, or one no-person row)."
        ),
    )
    def search_rows_cover_images(
        context: dg.AssetCheckExecutionContext, store: StoreResource
    ) -> dg.AssetCheckResult:
        db = store.get()
        batches = list(context.partition_keys)
        images = db.images_per_batch("images", batches)
        with_keypoints = db.images_per_batch("keypoints", batches)
        in_search = db.images_per_batch("search", batches)
        rows = [
            {
                "batch": b,
                "images": images.get(b, 0),
                "with_keypoints": with_keypoints.get(b, 0),
                "in_search": in_search.get(b, 0),
            }
            for b in batches
        ]
        missing = sum(max(0, with_keypoints.get(b, 0) - in_search.get(b, 0)) for b in batches)
        return dg.AssetCheckResult(
            passed=missing == 0,
            metadata={"images_missing_from_search": missing, "batches": _per_batch_table(rows)},
        )


INDEX_CHECKS = [
    pose_vectors_valid,
    clip_vectors_valid,
    clip_vectors_present,
    source_rows_accounted,
    ingest_failure_rate,
    search_rows_cover_images,
]
