"""The indexing chain: source_images → keypoints → framing / pose_embeddings, and
source_images → clip_embeddings; all of them → search_index (the published LanceDB version).

Every asset is partitioned by ingest batch and loops over `context.partition_keys`, so a
backfill over many batches runs once and loads each model once.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

import dagster as dg
import numpy as np

from assets.automation import REINDEX_CONDITION
from assets.ingest import BatchIngest, ingest_batch
from assets.materializations import (
    CLIP_EMBEDDINGS,
    KEYPOINTS,
    clip_result,
    failures_md,
    ignore,
    keypoints_result,
    no_clip_result,
    preview_md,
    read_originals,
)
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
from pipelines.clip.encoder import ClipUnavailableError
from pipelines.clip.prompts import calibration_queries
from pipelines.indexing import (
    ImageAnalysis,
    analyse_images,
    classify_framing,
    embed_poses,
)
from pipelines.sources.dedupe import NearDuplicateIndex
from storage.publishing import publish_search_rows
from storage.records import FramingRecord, PoseVector
from storage.search_rows import assemble_search_rows

GROUP = "indexing"
# Every asset: one partition per ingest batch, a backfill over many batches in one run.
BATCHED: dict[str, Any] = {
    "partitions_def": ingest_batches,
    "backfill_policy": single_run,
    "group_name": GROUP,
}


@dg.asset(
    **BATCHED,
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
    near = NearDuplicateIndex(db.perceptual_hashes())
    done: list[BatchIngest] = []
    for batch_id in context.partition_keys:
        batch = db.get_batch(batch_id)
        if batch is None:
            raise dg.Failure(
                f"batch {batch_id!r} is not registered in the store; create batches with "
                "`poseframer index DIR`, a source schedule or the inbox sensor (which "
                "register the source) before materializing"
            )
        with progress.track(context, "source_images", 0) as advance:
            ingest = ingest_batch(db, batch, near, advance)
        done.append(ingest)
        context.log.info(
            f"batch {batch_id}: {len(ingest.added)} new images, {ingest.duplicates} "
            f"duplicates, {len(ingest.failures)} failures from {ingest.source}"
        )
    failures = [f for ingest in done for f in ingest.failures]
    for f in failures:
        context.log.warning(f"not indexed: {f.source_uri}: {f.reason}")
    return dg.MaterializeResult(
        metadata={
            "new_images": sum(len(ingest.added) for ingest in done),
            "duplicates": sum(ingest.duplicates for ingest in done),
            "near_duplicates": sum(ingest.near_duplicates for ingest in done),
            "failures": len(failures),
            "failure_reasons": failures_md(failures),
            "preview": preview_md([im for ingest in done for im in ingest.added]),
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
            automation_condition=REINDEX_CONDITION,
        ),
        dg.AssetSpec(
            CLIP_EMBEDDINGS,
            deps=[source_images],
            description="CLIP image vectors. Without loadable weights the batch is indexed "
            "without them (pose search still works) and the reason is logged and recorded "
            "here.",
            kinds={"lancedb", "pytorch"},
            automation_condition=REINDEX_CONDITION,
        ),
    ],
    **BATCHED,
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
    images, originals = read_originals(db, batches)
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
                keypoint_progress=track.get(KEYPOINTS, ignore),
                clip_progress=track.get(CLIP_EMBEDDINGS, ignore),
            )
    if detector is not None:
        yield keypoints_result(db, batches, images, detector.model_id, found)
    if CLIP_EMBEDDINGS in selected:
        encoder = clip_model.get()
        if clip_problem is not None:
            yield no_clip_result(context, db, batches, encoder, clip_problem)
        else:
            yield clip_result(context, db, batches, images, encoder, found)


@dg.asset(
    **BATCHED,
    kinds={"lancedb"},
    deps=[KEYPOINTS],
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
    **BATCHED,
    kinds={"lancedb"},
    deps=[KEYPOINTS],
    pool="gpu",
    automation_condition=REINDEX_CONDITION,
)
def pose_embeddings(
    context: dg.AssetExecutionContext, store: StoreResource, pose_model: PoseModelResource
) -> dg.MaterializeResult:
    """One pose vector per person, from the stored keypoints (no image is re-read)."""
    db = store.get()
    embedder = pose_model.get()
    batches = list(context.partition_keys)
    embedded = embed_poses(embedder, db.keypoints_for_batches(batches))
    vectors, non_finite = embedded.vectors, embedded.non_finite
    if non_finite:  # stored as "no vector", and said loudly
        context.log.error(
            f"pose model {embedder.model_id} gave {non_finite} vectors with NaN/inf values; "
            "they are stored without a vector"
        )
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
    **BATCHED,
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
    publication = publish_search_rows(
        db,
        batches,
        rows,
        pose_model.get().dim,
        encoder.dim,
        framing_model.get().model_id,
        text_queries=calibration_queries(encoder, clip_model_id),
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


INDEX_ASSETS = (source_images, image_models, framing, pose_embeddings, search_index)
# Each model asset's code version is its model's id (`ModelIds`): a new model marks exactly
# the assets it computes stale, and the re-index automation recomputes them.
MODEL_OF_ASSET = {
    KEYPOINTS: "keypoints",
    CLIP_EMBEDDINGS: "clip",
    "framing": "framing",
    "pose_embeddings": "pose",
}


def build_index_assets(ids: ModelIds) -> list[dg.AssetsDefinition]:
    """The indexing assets, each model asset versioned by its model's id."""

    def versioned(spec: dg.AssetSpec) -> dg.AssetSpec:
        model = MODEL_OF_ASSET.get(spec.key.to_user_string())
        return spec if model is None else spec.replace_attributes(code_version=getattr(ids, model))

    return [definition.map_asset_specs(versioned) for definition in INDEX_ASSETS]
