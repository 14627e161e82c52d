"""The indexing chain: source_images → keypoints → framing / pose_embeddings, and
source_images → clip_embeddings; all of them → search_index (the published LanceDB version).

Every asset is partitioned by ingest batch and loops over `context.partition_keys`, so a
backfill over many batches runs once and loads each model once.
"""

import contextlib
from collections.abc import Iterable, Iterator, Sequence

import dagster as dg
import numpy as np

from assets.automation import REINDEX_CONDITION
from assets.model_ids import ModelIds
from assets.partitions import ingest_batches, single_run
from assets.resources import (
    ClipModelResource,
    FramingModelResource,
    KeypointModelResource,
    PoseModelResource,
    ProgressResource,
    StoreResource,
)
from pipelines.calibration import CALIBRATION_PROMPTS
from pipelines.clip import CONFIGURE_HINT, ClipEncoder, ClipUnavailableError
from pipelines.dedupe import NearDuplicateIndex
from pipelines.indexing import (
    ImageAnalysis,
    analyse_images,
    classify_framing,
    decode_items,
    embed_poses,
)
from pipelines.previews import thumbnail_data_uri
from pipelines.records import IngestFailure
from pipelines.sources import (
    ImageSource,
    SourceConfigError,
    SourceItem,
    SourceUnavailableError,
    open_source,
)
from storage.search_rows import assemble_search_rows
from storage.store import Batch, FramingRecord, ImageRecord, PoseVector, Store

GROUP = "indexing"
KEYPOINTS = "keypoints"
CLIP_EMBEDDINGS = "clip_embeddings"
INGEST_CHUNK = 64
MAX_LISTED_FAILURES = 25
PREVIEW_IMAGES = 6


def source_for(batch: Batch) -> ImageSource:
    try:
        return open_source(batch.source, batch.source_options())
    except SourceConfigError as exc:
        raise dg.Failure(f"batch {batch.batch_id}: {exc}") from None


def _preview_md(images: Sequence[ImageRecord]) -> dg.MetadataValue:
    """A few of the new images as markdown thumbnails (data: URIs of the stored thumbnails)."""
    if not images:
        return dg.MetadataValue.md("no new images")
    cells = []
    for im in images[:PREVIEW_IMAGES]:
        name = im.source_uri.rstrip("/").rsplit("/", 1)[-1].replace("]", "")[:40] or im.image_id
        cells.append(f"![{name}]({thumbnail_data_uri(im.thumbnail)})")
    more = len(images) - PREVIEW_IMAGES
    return dg.MetadataValue.md(" ".join(cells) + (f"\n\n… and {more} more" if more > 0 else ""))


def _failures_md(failures: Sequence[IngestFailure]) -> dg.MetadataValue:
    lines = ["| file | reason |", "|---|---|"]
    lines += [
        f"| `{f.source_uri}` | {f.reason.replace('|', '/')} |"
        for f in failures[:MAX_LISTED_FAILURES]
    ]
    if len(failures) > MAX_LISTED_FAILURES:
        lines.append(f"| … | {len(failures) - MAX_LISTED_FAILURES} more in `ingest_failures` |")
    return dg.MetadataValue.md("\n".join(lines) if failures else "no failures")


def _originals(
    store: Store, batch_ids: Sequence[str]
) -> tuple[list[ImageRecord], Iterator[tuple[str, str, bytes]]]:
    """The batches' image rows, and a lazy reader of their original bytes."""
    images = store.images_for_batches(batch_ids)

    def read() -> Iterator[tuple[str, str, bytes]]:
        for im in images:
            yield im.image_id, im.source_uri, store.blobs.get(im.image_id)

    return images, read()


def _record_failures(
    store: Store, stage: str, images: Sequence[ImageRecord], failures: Sequence[IngestFailure]
) -> None:
    batch_of = {im.source_uri: im.batch_id for im in images}
    by_batch: dict[str, list[IngestFailure]] = {}
    for f in failures:
        by_batch.setdefault(batch_of[f.source_uri], []).append(f)
    for batch_id, batch_failures in by_batch.items():
        store.record_failures(batch_id, stage, batch_failures)


def _chunks(
    entries: Iterable[SourceItem | IngestFailure], size: int
) -> Iterator[list[SourceItem | IngestFailure]]:
    chunk: list[SourceItem | IngestFailure] = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _ignore(_: int) -> None:
    return None


def _keypoints_result(
    db: Store,
    batches: list[str],
    images: Sequence[ImageRecord],
    model_id: str,
    found: ImageAnalysis,
) -> dg.MaterializeResult:
    results, failures = found.keypoints, found.keypoint_failures
    version = db.replace_keypoints(batches, results)
    _record_failures(db, "keypoints", images, failures)
    return dg.MaterializeResult(
        asset_key=KEYPOINTS,
        metadata={
            "model": model_id,
            "images": len(results),
            "people": sum(len(r.people) for r in results),
            "images_with_people": sum(1 for r in results if r.people),
            "failures": len(failures),
            "failure_reasons": _failures_md(failures),
            "table_version": version,
        },
    )


def _no_clip_result(
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


def _clip_result(
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
    _record_failures(db, "clip_embeddings", images, found.clip_failures)
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


def build_index_assets(ids: ModelIds) -> list[dg.AssetsDefinition]:
    """The indexing assets, each model asset versioned by its model id."""

    @dg.asset(
        partitions_def=ingest_batches,
        backfill_policy=single_run,
        group_name=GROUP,
        kinds={"lancedb"},
        code_version="ingest-v1",
    )
    def source_images(
        context: dg.AssetExecutionContext, store: StoreResource, progress: ProgressResource
    ) -> dg.MaterializeResult:
        """Images of each batch's source, decoded upright, stored by sha256 with thumbnails,
        provenance (source, page, licence, attribution, fetch time) and a perceptual hash.

        Bytes already indexed (in any batch, from any source) are skipped as duplicates; an
        image within a few bits of an indexed one joins its near-duplicate group. What cannot
        be fetched or decoded is recorded in `ingest_failures` with the reason.
        """
        db = store.get()
        new = duplicates = near_duplicates = 0
        failures: list[IngestFailure] = []
        added: list[ImageRecord] = []
        groups = NearDuplicateIndex(db.perceptual_hashes())
        for batch_id in context.partition_keys:
            batch = db.get_batch(batch_id)
            if batch is None:
                raise dg.Failure(
                    f"batch {batch_id!r} is not registered in the store; create batches with "
                    "`poseframer index DIR`, a source schedule or the inbox sensor (which "
                    "register the source) before materializing"
                )
            source = source_for(batch)
            batch_failures: list[IngestFailure] = []
            seen: set[str] = set()
            batch_new = batch_duplicates = source_items = 0

            # Items stream in: only one chunk of image bytes is held at a time, whatever the
            # size of the batch (the total is unknown up front for web sources).
            with progress.track(context, "source_images", 0) as advance:
                try:
                    for chunk in _chunks(source.items(), INGEST_CHUNK):
                        source_items += len(chunk)
                        decoded = []
                        for result in decode_items(chunk):
                            if isinstance(result, IngestFailure):
                                batch_failures.append(result)
                            else:
                                decoded.append(result)
                        known = db.known_image_ids(d.image_id for d in decoded)
                        fresh = []
                        chunk_groups: dict[str, str] = {}
                        for d in decoded:
                            if d.image_id in known or d.image_id in seen:
                                batch_duplicates += 1
                            else:
                                seen.add(d.image_id)
                                fresh.append(d)
                                chunk_groups[d.image_id] = groups.assign(d.image_id, d.phash)
                                near_duplicates += chunk_groups[d.image_id] != d.image_id
                        stored = db.add_images(batch_id, batch.source, fresh, chunk_groups)
                        added += stored
                        batch_new += len(stored)
                        advance(len(chunk))
                except (SourceUnavailableError, FileNotFoundError) as exc:
                    raise dg.Failure(f"batch {batch_id}: {source.describe()}: {exc}") from None
            new += batch_new
            duplicates += batch_duplicates
            db.record_failures(batch_id, "source_images", batch_failures)
            db.record_batch_ingest(
                batch_id,
                source_items=source_items,
                new_images=batch_new,
                duplicates=batch_duplicates,
                failures=len(batch_failures),
            )
            failures += batch_failures
            context.log.info(
                f"batch {batch_id}: {batch_new} new images, {batch_duplicates} duplicates, "
                f"{len(batch_failures)} failures from {source.describe()}"
            )
        for f in failures:
            context.log.warning(f"not indexed: {f.source_uri}: {f.reason}")
        return dg.MaterializeResult(
            metadata={
                "new_images": new,
                "duplicates": duplicates,
                "near_duplicates": near_duplicates,
                "failures": len(failures),
                "failure_reasons": _failures_md(failures),
                "preview": _preview_md(added),
                "images_total": db.count_rows("images"),
                "images_table_version": db.version_of("images") or 0,
            }
        )

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                KEYPOINTS,
                deps=[source_images],
                description="COCO-17 keypoints (+ extras) of every person found in each image.",
                kinds={"lancedb", "pytorch"},
                code_version=ids.keypoints,
                automation_condition=REINDEX_CONDITION,
            ),
            dg.AssetSpec(
                CLIP_EMBEDDINGS,
                deps=[source_images],
                description="CLIP image vectors. Without loadable weights the batch is indexed "
                "without them (pose search still works) and the reason is logged and recorded "
                "here.",
                kinds={"lancedb", "pytorch"},
                code_version=ids.clip,
                automation_condition=REINDEX_CONDITION,
            ),
        ],
        partitions_def=ingest_batches,
        backfill_policy=single_run,
        group_name=GROUP,
        pool="gpu",
        can_subset=True,
    )
    def image_models(
        context: dg.AssetExecutionContext,
        store: StoreResource,
        keypoint_model: KeypointModelResource,
        clip_model: ClipModelResource,
        progress: ProgressResource,
    ) -> Iterator[dg.MaterializeResult]:
        """Keypoints and CLIP vectors in one step: each original is read and decoded once and
        the two models run side by side (`pipelines.indexing.analyse_images`). Either asset
        can run alone: a new CLIP model re-runs only CLIP, a new keypoint model only keypoints.
        """
        db = store.get()
        selected = {k.to_user_string() for k in context.selected_asset_keys}
        batches = list(context.partition_keys)
        images, originals = _originals(db, batches)
        detector = keypoint_model.get() if KEYPOINTS in selected else None
        encoder = clip_model.get() if CLIP_EMBEDDINGS in selected else None
        clip_problem: ClipUnavailableError | None = None
        if encoder is not None:
            try:
                encoder.load()
            except ClipUnavailableError as exc:
                clip_problem, encoder = exc, None
        found = ImageAnalysis([], [], [], np.zeros((0, 0), np.float32), [])
        if detector is not None or encoder is not None:
            with contextlib.ExitStack() as bars:
                track = {
                    name: bars.enter_context(progress.track(context, name, len(images)))
                    for name, model in ((KEYPOINTS, detector), (CLIP_EMBEDDINGS, encoder))
                    if model is not None
                }
                found = analyse_images(
                    originals,
                    detector,
                    encoder,
                    clip_model.batch_size,
                    keypoint_progress=track.get(KEYPOINTS, _ignore),
                    clip_progress=track.get(CLIP_EMBEDDINGS, _ignore),
                )
        if detector is not None:
            yield _keypoints_result(db, batches, images, detector.model_id, found)
        if CLIP_EMBEDDINGS in selected:
            encoder = clip_model.get()
            if clip_problem is not None:
                yield _no_clip_result(context, db, batches, encoder, clip_problem)
            else:
                yield _clip_result(context, db, batches, images, encoder, found)

    @dg.asset(
        partitions_def=ingest_batches,
        backfill_policy=single_run,
        group_name=GROUP,
        kinds={"lancedb"},
        deps=[KEYPOINTS],
        code_version=ids.framing,
        automation_condition=REINDEX_CONDITION,
    )
    def framing(
        context: dg.AssetExecutionContext, store: StoreResource, framing_model: FramingModelResource
    ) -> dg.MaterializeResult:
        """Portrait classification: full_body / upper_body / portrait / no_person per image."""
        db = store.get()
        classifier = framing_model.get()
        batches = list(context.partition_keys)
        framings = classify_framing(classifier, db.keypoints_for_batches(batches))
        version = db.replace_framing(
            batches,
            classifier.model_id,
            [FramingRecord(f.image_id, f.framing, f.person_framing) for f in framings],
        )
        counts: dict[str, int] = {}
        for f in framings:
            counts[f.framing] = counts.get(f.framing, 0) + 1
        return dg.MaterializeResult(
            metadata={
                "model": classifier.model_id,
                "images": len(framings),
                **{f"images_{k}": v for k, v in sorted(counts.items())},
                "table_version": version,
            }
        )

    @dg.asset(
        partitions_def=ingest_batches,
        backfill_policy=single_run,
        group_name=GROUP,
        kinds={"lancedb"},
        deps=[KEYPOINTS],
        pool="gpu",
        code_version=ids.pose,
        automation_condition=REINDEX_CONDITION,
    )
    def pose_embeddings(
        context: dg.AssetExecutionContext, store: StoreResource, pose_model: PoseModelResource
    ) -> dg.MaterializeResult:
        """One pose vector per person, from the stored keypoints (no image is re-read)."""
        db = store.get()
        embedder = pose_model.get()
        batches = list(context.partition_keys)
        vectors = embed_poses(embedder, db.keypoints_for_batches(batches))
        # A NaN/inf vector cannot be scored: it is stored as "no vector", and said loudly.
        non_finite = sum(1 for *_, v in vectors if v is not None and not np.isfinite(v).all())
        if non_finite:
            context.log.error(
                f"pose model {embedder.model_id} gave {non_finite} vectors with NaN/inf values; "
                "they are stored without a vector"
            )
            vectors = [
                (i, p, v if v is None or np.isfinite(v).all() else None) for i, p, v in vectors
            ]
        version = db.replace_pose_embeddings(
            batches,
            embedder.model_id,
            embedder.dim,
            [PoseVector(image_id, index, vector) for image_id, index, vector in vectors],
        )
        return dg.MaterializeResult(
            metadata={
                "model": embedder.model_id,
                "dim": embedder.dim,
                "people": len(vectors),
                "people_without_vector": sum(1 for *_, v in vectors if v is None),
                "non_finite_vectors": non_finite,
                "table_version": version,
            }
        )

    @dg.asset(
        partitions_def=ingest_batches,
        backfill_policy=single_run,
        group_name=GROUP,
        kinds={"lancedb"},
        deps=[source_images, framing, pose_embeddings, CLIP_EMBEDDINGS],
        # v2: rows carry provenance and near-duplicate groups.
        code_version="search-index-v2",
        automation_condition=REINDEX_CONDITION,
    )
    def search_index(
        context: dg.AssetExecutionContext,
        store: StoreResource,
        pose_model: PoseModelResource,
        clip_model: ClipModelResource,
        framing_model: FramingModelResource,
    ) -> dg.MaterializeResult:
        """The served search table: one row per person plus one per image with nobody in it,
        published as a new tagged LanceDB version."""
        db = store.get()
        batches = list(context.partition_keys)
        images = db.images_for_batches(batches)
        pose_model_id, pose_vectors = db.pose_embeddings_for_batches(batches)
        clip_model_id, clip_vectors = db.clip_embeddings_for_batches(batches)
        rows = assemble_search_rows(
            images,
            {k.image_id: k for k in db.keypoints_for_batches(batches)},
            db.framing_for_batches(batches),
            pose_vectors,
            clip_vectors,
            {"pose_model": pose_model_id or pose_model.get().model_id, "clip_model": clip_model_id},
        )
        encoder = clip_model.get()
        text_queries = None
        if clip_model_id == encoder.model_id:
            # The CLIP side's calibration needs typical text queries in the same model.
            try:
                text_queries = encoder.encode_texts(list(CALIBRATION_PROMPTS))
            except ClipUnavailableError:
                text_queries = None
        publication = db.publish_search_rows(
            batches,
            rows,
            pose_model.get().dim,
            encoder.dim,
            framing_model.get().model_id,
            text_queries=text_queries,
        )
        people_rows = sum(1 for r in rows if r["person_index"] >= 0)
        context.log.info(
            f"published search table version {publication.version} ({publication.tag}): "
            f"{publication.rows} rows in all"
        )
        return dg.MaterializeResult(
            metadata={
                "table_version": publication.version,
                "tag": publication.tag,
                "calibration": dg.MetadataValue.json(
                    {
                        "pose": [publication.pose_scale, publication.pose_offset],
                        "clip": [publication.clip_scale, publication.clip_offset],
                    }
                ),
                "batch_rows": len(rows),
                "people_rows": people_rows,
                "no_person_rows": len(rows) - people_rows,
                "rows_with_clip": sum(1 for r in rows if r["clip_vector"] is not None),
                "table_rows": publication.rows,
                "models": dg.MetadataValue.json(publication.models),
            }
        )

    return [source_images, image_models, framing, pose_embeddings, search_index]
