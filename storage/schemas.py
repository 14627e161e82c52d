"""Arrow schemas of the PoseFramer tables."""

from __future__ import annotations

import pyarrow as pa

from pipelines.records import NUM_JOINTS

KEYPOINT_VALUES = NUM_JOINTS * 3

# Columns added after a table was first released are nullable and come last: an existing
# table gains them (null in its old rows) instead of being rebuilt (see Store._table).

BATCHES = pa.schema(
    [
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # source kind: folder, urls, ...
        pa.field("location", pa.string(), nullable=False),  # what the source reads
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("options", pa.string()),  # JSON: the source's options (null: {"folder": location})
        pa.field("source_name", pa.string()),  # the configured source that made the batch
        # What the last ingest of the batch found (null until it ran).
        pa.field("source_items", pa.int64()),  # files / URLs the source yielded
        pa.field("new_images", pa.int64()),
        pa.field("duplicates", pa.int64()),
        pa.field("failures", pa.int64()),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)

# Provenance and near-duplicate columns shared by `images` and `search`.
PROVENANCE = [
    pa.field("page_url", pa.string()),
    pa.field("licence", pa.string()),
    pa.field("attribution", pa.string()),
    pa.field("fetched_at", pa.timestamp("us", tz="UTC")),
    pa.field("phash", pa.string()),  # 64-bit perceptual hash, hex; null: featureless image
    pa.field("near_duplicate_group", pa.string()),  # image_id of the group's first image
    pa.field("medium", pa.string()),  # photo or drawing, estimated (pipelines.pose.human_evidence)
]

IMAGES = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("format", pa.string(), nullable=False),
        pa.field("media_type", pa.string(), nullable=False),
        pa.field("thumbnail", pa.binary(), nullable=False),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
        *PROVENANCE,
    ]
)

INGEST_FAILURES = pa.schema(
    [
        pa.field("failure_id", pa.string(), nullable=False),  # stage + source_uri
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

PERSON = pa.struct(
    [
        pa.field("keypoints", pa.list_(pa.float32(), KEYPOINT_VALUES)),
        pa.field("extras", pa.string()),  # JSON [[name, x, y, score], ...]
        pa.field("score", pa.float32()),
    ]
)

KEYPOINTS = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("keypoint_model", pa.string(), nullable=False),
        pa.field("people", pa.list_(PERSON)),
    ]
)

FRAMING = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("framing_model", pa.string(), nullable=False),
        pa.field("framing", pa.string(), nullable=False),  # of the image's main person
        pa.field("person_framing", pa.list_(pa.string())),
    ]
)


def pose_embeddings(dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),  # image_id:person_index
            pa.field("image_id", pa.string(), nullable=False),
            pa.field("batch_id", pa.string(), nullable=False),
            pa.field("person_index", pa.int32(), nullable=False),
            pa.field("pose_model", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim)),  # null: too little of the pose seen
        ]
    )


def clip_embeddings(dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("image_id", pa.string(), nullable=False),
            pa.field("batch_id", pa.string(), nullable=False),
            pa.field("clip_model", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
        ]
    )


def search(pose_dim: int, clip_dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),  # image_id:person_index, or image_id:-
            pa.field("image_id", pa.string(), nullable=False),
            pa.field("batch_id", pa.string(), nullable=False),
            pa.field("person_index", pa.int32(), nullable=False),  # -1: image with no person
            pa.field("source", pa.string(), nullable=False),
            pa.field("source_uri", pa.string(), nullable=False),
            pa.field("width", pa.int32(), nullable=False),
            pa.field("height", pa.int32(), nullable=False),
            pa.field("framing", pa.string(), nullable=False),
            pa.field("keypoints", pa.list_(pa.float32(), KEYPOINT_VALUES)),
            pa.field("pose_vector", pa.list_(pa.float32(), pose_dim)),
            pa.field("clip_vector", pa.list_(pa.float32(), clip_dim)),
            pa.field("keypoint_model", pa.string(), nullable=False),
            pa.field("pose_model", pa.string(), nullable=False),
            pa.field("clip_model", pa.string()),  # null when CLIP weights were unavailable
            *PROVENANCE,
        ]
    )


PUBLICATIONS = pa.schema(
    [
        pa.field("version", pa.int64(), nullable=False),  # version of the search table
        pa.field("tag", pa.string(), nullable=False),
        pa.field("published_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("batches", pa.list_(pa.string())),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("keypoint_model", pa.string(), nullable=False),
        pa.field("pose_model", pa.string(), nullable=False),
        pa.field("clip_model", pa.string()),
        pa.field("framing_model", pa.string(), nullable=False),
        # The version's similarity calibration (pipelines.retrieval.calibration):
        # calibrated = s·raw + o.
        pa.field("pose_scale", pa.float64()),
        pa.field("pose_offset", pa.float64()),
        pa.field("clip_scale", pa.float64()),
        pa.field("clip_offset", pa.float64()),
    ]
)
