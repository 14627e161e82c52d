"""What the indexing assets write and report: storage writes of the image models' results,
and the materialization metadata shown in the Dagster UI (counts, failures, previews)."""

from collections.abc import Iterator, Sequence

import dagster as dg
import numpy as np

from pipelines.clip.encoder import CONFIGURE_HINT, ClipEncoder, ClipUnavailableError
from pipelines.indexing import ImageAnalysis
from pipelines.previews import thumbnail_data_uri
from pipelines.records import IngestFailure
from storage.records import ImageRecord
from storage.store import Store

KEYPOINTS = "keypoints"
CLIP_EMBEDDINGS = "clip_embeddings"
MAX_LISTED_FAILURES = 25
PREVIEW_IMAGES = 6


def preview_md(images: Sequence[ImageRecord]) -> dg.MetadataValue:
    """A few of the new images as markdown thumbnails (data: URIs of the stored thumbnails)."""
    if not images:
        return dg.MetadataValue.md("no new images")
    cells = []
    for im in images[:PREVIEW_IMAGES]:
        name = im.source_uri.rstrip("/").rsplit("/", 1)[-1].replace("]", "")[:40] or im.image_id
        cells.append(f"![{name}]({thumbnail_data_uri(im.thumbnail)})")
    more = len(images) - PREVIEW_IMAGES
    return dg.MetadataValue.md(" ".join(cells) + (f"\n\n… and {more} more" if more > 0 else ""))


def failures_md(failures: Sequence[IngestFailure]) -> dg.MetadataValue:
    lines = ["| file | reason |", "|---|---|"]
    lines += [
        f"| `{f.source_uri}` | {f.reason.replace('|', '/')} |"
        for f in failures[:MAX_LISTED_FAILURES]
    ]
    if len(failures) > MAX_LISTED_FAILURES:
        lines.append(f"| … | {len(failures) - MAX_LISTED_FAILURES} more in `ingest_failures` |")
    return dg.MetadataValue.md("\n".join(lines) if failures else "no failures")


def read_originals(
    store: Store, batch_ids: Sequence[str]
) -> tuple[list[ImageRecord], Iterator[tuple[str, str, bytes]]]:
    """The batches' image rows, and a lazy reader of their original bytes."""
    images = store.images_for_batches(batch_ids)

    def read() -> Iterator[tuple[str, str, bytes]]:
        for im in images:
            yield im.image_id, im.source_uri, store.blobs.get(im.image_id)

    return images, read()


def record_failures(
    store: Store, stage: str, images: Sequence[ImageRecord], failures: Sequence[IngestFailure]
) -> None:
    batch_of = {im.source_uri: im.batch_id for im in images}
    by_batch: dict[str, list[IngestFailure]] = {}
    for f in failures:
        by_batch.setdefault(batch_of[f.source_uri], []).append(f)
    for batch_id, batch_failures in by_batch.items():
        store.record_failures(batch_id, stage, batch_failures)


def ignore(_: int) -> None:
    return None


def keypoints_result(
    db: Store,
    batches: list[str],
    images: Sequence[ImageRecord],
    model_id: str,
    found: ImageAnalysis,
) -> dg.MaterializeResult:
    results, failures = found.keypoints, found.keypoint_failures
    version = db.replace_keypoints(batches, results)
    record_failures(db, "keypoints", images, failures)
    return dg.MaterializeResult(
        asset_key=KEYPOINTS,
        metadata={
            "model": model_id,
            "images": len(results),
            "people": sum(len(r.people) for r in results),
            "images_with_people": sum(1 for r in results if r.people),
            "failures": len(failures),
            "failure_reasons": failures_md(failures),
            "table_version": version,
        },
    )


def no_clip_result(
    context: dg.AssetExecutionContext,
    db: Store,
    batches: list[str],
    encoder: ClipEncoder,
    problem: ClipUnavailableError,
) -> dg.MaterializeResult:
    # Info, not a warning: the batch's WARN check (clip_vectors_present) and the command's
    # summary say it where it is seen, once each.
    context.log.info(
        f"no CLIP vectors for {len(batches)} batch(es), text search off: {problem.reason}"
    )
    version = db.replace_clip_embeddings(
        batches, encoder.model_id, encoder.dim, [], np.zeros((0, encoder.dim), np.float32)
    )
    return dg.MaterializeResult(
        asset_key=CLIP_EMBEDDINGS,
        metadata={
            "model": encoder.model_id,
            "clip_available": False,
            "reason": problem.reason,
            "how_to_fix": CONFIGURE_HINT,
            "images": 0,
            "table_version": version,
        },
    )


def clip_result(
    context: dg.AssetExecutionContext,
    db: Store,
    batches: list[str],
    images: Sequence[ImageRecord],
    encoder: ClipEncoder,
    found: ImageAnalysis,
) -> dg.MaterializeResult:
    if encoder.random_weights:
        context.log.warning(
            f"CLIP model {encoder.model_id} has RANDOM weights: text search results are "
            "meaningless (for tests only)"
        )
    version = db.replace_clip_embeddings(
        batches, encoder.model_id, encoder.dim, found.clip_ids, found.clip_vectors
    )
    record_failures(db, "clip_embeddings", images, found.clip_failures)
    return dg.MaterializeResult(
        asset_key=CLIP_EMBEDDINGS,
        metadata={
            "model": encoder.model_id,
            "clip_available": True,
            "random_weights": encoder.random_weights,
            "dim": encoder.dim,
            "images": len(found.clip_ids),
            "failures": len(found.clip_failures),
            "table_version": version,
        },
    )
