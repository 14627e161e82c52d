"""The per-batch tables each model stage writes: keypoints, framing, pose and CLIP vectors."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from pipelines.records import ImageKeypoints, Pose
from storage import schemas
from storage.records import (
    FramingRecord,
    PoseVector,
)
from storage.tables import (
    T_CLIP,
    T_FRAMING,
    T_IMAGES,
    T_KEYPOINTS,
    T_POSE,
    TableAccess,
)


class StageTables(TableAccess):
    """What each model stage found, per batch, replaced whole when a stage runs again."""

    def replace_keypoints(self, batch_ids: Sequence[str], results: Sequence[ImageKeypoints]) -> int:
        image_batch = self._image_batches(batch_ids)
        rows = pa.Table.from_pylist(
            [
                {
                    "image_id": r.image_id,
                    "batch_id": image_batch[r.image_id],
                    "keypoint_model": r.model_id,
                    "people": [
                        {
                            "keypoints": p.flat(),
                            "extras": json.dumps([list(e) for e in p.extras]),
                            "score": p.score,
                        }
                        for p in r.people
                    ],
                }
                for r in results
            ],
            schema=schemas.KEYPOINTS,
        )
        return self._replace_batches(T_KEYPOINTS, schemas.KEYPOINTS, "image_id", batch_ids, rows)

    def keypoints_for_batches(self, batch_ids: Sequence[str]) -> list[ImageKeypoints]:
        rows = self._rows_for_batches(T_KEYPOINTS, batch_ids)
        if rows is None:
            return []
        out = []
        for r in rows.to_pylist():
            people = tuple(
                Pose.from_array(
                    np.asarray(p["keypoints"], dtype=np.float64).reshape(-1, 3),
                    extras=tuple(tuple(e) for e in json.loads(p["extras"] or "[]")),
                    score=p["score"],
                )
                for p in r["people"] or []
            )
            out.append(ImageKeypoints(r["image_id"], r["keypoint_model"], people))
        return sorted(out, key=lambda k: k.image_id)

    def _image_batches(self, batch_ids: Sequence[str]) -> dict[str, str]:
        rows = self._rows_for_batches(T_IMAGES, batch_ids, ["image_id", "batch_id"])
        if rows is None:
            return {}
        return dict(
            zip(
                rows.column("image_id").to_pylist(),
                rows.column("batch_id").to_pylist(),
                strict=True,
            )
        )

    # ---------------------------------------------------------------- framing

    def replace_framing(
        self, batch_ids: Sequence[str], model_id: str, records: Sequence[FramingRecord]
    ) -> int:
        image_batch = self._image_batches(batch_ids)
        rows = pa.Table.from_pylist(
            [
                {
                    "image_id": r.image_id,
                    "batch_id": image_batch[r.image_id],
                    "framing_model": model_id,
                    "framing": r.framing,
                    "person_framing": list(r.person_framing),
                }
                for r in records
            ],
            schema=schemas.FRAMING,
        )
        return self._replace_batches(T_FRAMING, schemas.FRAMING, "image_id", batch_ids, rows)

    def framing_for_batches(self, batch_ids: Sequence[str]) -> dict[str, FramingRecord]:
        rows = self._rows_for_batches(T_FRAMING, batch_ids)
        if rows is None:
            return {}
        return {
            r["image_id"]: FramingRecord(r["image_id"], r["framing"], tuple(r["person_framing"]))
            for r in rows.to_pylist()
        }

    def framing_model_for_batches(self, batch_ids: Sequence[str]) -> str | None:
        rows = self._rows_for_batches(T_FRAMING, batch_ids, ["framing_model"])
        if rows is None or rows.num_rows == 0:
            return None
        return str(rows.column("framing_model")[0].as_py())

    # ---------------------------------------------------------------- embeddings

    def replace_pose_embeddings(
        self, batch_ids: Sequence[str], model_id: str, dim: int, vectors: Sequence[PoseVector]
    ) -> int:
        image_batch = self._image_batches(batch_ids)
        schema = schemas.pose_embeddings(dim)
        rows = pa.Table.from_pylist(
            [
                {
                    "id": f"{v.image_id}:{v.person_index}",
                    "image_id": v.image_id,
                    "batch_id": image_batch[v.image_id],
                    "person_index": v.person_index,
                    "pose_model": model_id,
                    "vector": None if v.vector is None else v.vector.astype(np.float32).tolist(),
                }
                for v in vectors
            ],
            schema=schema,
        )
        return self._replace_batches(T_POSE, schema, "id", batch_ids, rows)

    def pose_embeddings_for_batches(
        self, batch_ids: Sequence[str]
    ) -> tuple[str | None, dict[tuple[str, int], np.ndarray | None]]:
        rows = self._rows_for_batches(T_POSE, batch_ids)
        if rows is None or rows.num_rows == 0:
            return None, {}
        models = set(rows.column("pose_model").to_pylist())
        out = {
            (r["image_id"], r["person_index"]): (
                None if r["vector"] is None else np.asarray(r["vector"], dtype=np.float32)
            )
            for r in rows.to_pylist()
        }
        return ",".join(sorted(models)), out

    def replace_clip_embeddings(
        self,
        batch_ids: Sequence[str],
        model_id: str,
        dim: int,
        image_ids: Sequence[str],
        vectors: np.ndarray,
    ) -> int:
        image_batch = self._image_batches(batch_ids)
        schema = schemas.clip_embeddings(dim)
        rows = pa.Table.from_pylist(
            [
                {
                    "image_id": image_id,
                    "batch_id": image_batch[image_id],
                    "clip_model": model_id,
                    "vector": vector.astype(np.float32).tolist(),
                }
                for image_id, vector in zip(image_ids, vectors, strict=True)
            ],
            schema=schema,
        )
        return self._replace_batches(T_CLIP, schema, "image_id", batch_ids, rows)

    def clip_embeddings_for_batches(
        self, batch_ids: Sequence[str]
    ) -> tuple[str | None, dict[str, np.ndarray]]:
        rows = self._rows_for_batches(T_CLIP, batch_ids)
        if rows is None or rows.num_rows == 0:
            return None, {}
        models = set(rows.column("clip_model").to_pylist())
        vectors = {
            r["image_id"]: np.asarray(r["vector"], dtype=np.float32) for r in rows.to_pylist()
        }
        return ",".join(sorted(models)), vectors
