"""Joins the per-stage tables into rows of the served search table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipelines.records import Framing, ImageKeypoints
from storage.records import FramingRecord, ImageRecord

NO_PERSON_INDEX = -1


def assemble_search_rows(
    images: Sequence[ImageRecord],
    keypoints: Mapping[str, ImageKeypoints],
    framing: Mapping[str, FramingRecord],
    pose_vectors: Mapping[tuple[str, int], np.ndarray | None],
    clip_vectors: Mapping[str, np.ndarray],
    models: Mapping[str, str | None],
) -> list[dict[str, Any]]:
    """One row per detected person, plus one row per image with no person (for text search).

    An image whose keypoints are missing (not yet extracted) is left out rather than published
    as having nobody in it.
    """
    rows: list[dict[str, Any]] = []
    for im in images:
        kp = keypoints.get(im.image_id)
        if kp is None:
            continue
        clip = clip_vectors.get(im.image_id)
        frame = framing.get(im.image_id)
        base = {
            "image_id": im.image_id,
            "batch_id": im.batch_id,
            "source": im.source,
            "source_uri": im.source_uri,
            "width": im.width,
            "height": im.height,
            "clip_vector": None if clip is None else clip.tolist(),
            "keypoint_model": kp.model_id,
            "pose_model": models["pose_model"],
            "clip_model": None if clip is None else models.get("clip_model"),
            "page_url": im.page_url,
            "licence": im.licence,
            "attribution": im.attribution,
            "fetched_at": im.fetched_at,
            "phash": im.phash,
            # Search shows one result per group; an image indexed before groups existed is a
            # group of its own.
            "near_duplicate_group": im.near_duplicate_group or im.image_id,
            "medium": im.medium,
        }
        if not kp.people:
            rows.append(
                {
                    **base,
                    "id": f"{im.image_id}:-",
                    "person_index": NO_PERSON_INDEX,
                    "framing": Framing.NO_PERSON.value,
                    "keypoints": None,
                    "pose_vector": None,
                }
            )
            continue
        for index, pose in enumerate(kp.people):
            vector = pose_vectors.get((im.image_id, index))
            person_framing = (
                frame.person_framing[index]
                if frame is not None and index < len(frame.person_framing)
                else Framing.NO_PERSON.value
            )
            rows.append(
                {
                    **base,
                    "id": f"{im.image_id}:{index}",
                    "person_index": index,
                    "framing": person_framing,
                    "keypoints": pose.flat(),
                    "pose_vector": None if vector is None else vector.tolist(),
                }
            )
    return rows
