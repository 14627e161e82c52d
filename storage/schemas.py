"""Arrow schemas of the PoseFramer tables."""

from __future__ import annotations

import pyarrow as pa

from pipelines.records import NUM_JOINTS

KEYPOINT_VALUES = NUM_JOINTS * 3

BATCHES = pa.schema(
    [
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # source kind: folder, urls, ...
        pa.field("location", pa.string(), nullable=False),  # what the source reads
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

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
    ]
)

INGEST_FAILURES = pa.schema(
    [
        pa.field("failure_id", pa.string(), nullable=False),  # batch_id + source_uri
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
    ]
)
