"""The record of what was ingested: batches, images (their originals in the blob store) and
failures."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from pipelines.records import DecodedImage, IngestFailure
from storage import schemas
from storage.blobs import is_image_id
from storage.records import (
    Batch,
    ImageRecord,
    failure_id,
    validate_batch_id,
)
from storage.tables import (
    T_BATCHES,
    T_FAILURES,
    T_IMAGES,
    TableAccess,
    sql_list,
    utc_now,
)


class IngestTables(TableAccess):
    """Batches, images and ingest failures."""

    def register_batch(
        self,
        batch_id: str,
        source: str,
        location: str,
        options: dict[str, Any] | None = None,
        source_name: str | None = None,
    ) -> Batch:
        """Record a new ingest batch (a batch id already registered keeps its first record)."""
        validate_batch_id(batch_id)
        table = self._table(T_BATCHES, schemas.BATCHES)
        rows = pa.Table.from_pylist(
            [
                {
                    "batch_id": batch_id,
                    "source": source,
                    "location": location,
                    "created_at": utc_now(),
                    "options": None if options is None else json.dumps(options, sort_keys=True),
                    "source_name": source_name,
                }
            ],
            schema=schemas.BATCHES,
        )
        table.merge_insert("batch_id").when_not_matched_insert_all().execute(rows)
        found = self.get_batch(batch_id)
        assert found is not None
        return found

    def record_batch_ingest(
        self, batch_id: str, source_items: int, new_images: int, duplicates: int, failures: int
    ) -> None:
        """What the latest ingest of a batch found, for the UI and the asset checks."""
        validate_batch_id(batch_id)
        table = self._table(T_BATCHES, schemas.BATCHES)
        table.update(
            where=f"batch_id = '{batch_id}'",
            values={
                "source_items": source_items,
                "new_images": new_images,
                "duplicates": duplicates,
                "failures": failures,
                "ingested_at": utc_now(),
            },
        )

    def get_batch(self, batch_id: str) -> Batch | None:
        rows = self._rows_for_batches(T_BATCHES, [batch_id])
        if rows is None or rows.num_rows == 0:
            return None
        return Batch.from_row(rows.to_pylist()[0])

    def list_batches(self) -> list[Batch]:
        table = self._open(T_BATCHES)
        if table is None:
            return []
        rows = table.to_arrow().to_pylist()
        return sorted((Batch.from_row(r) for r in rows), key=lambda b: b.created_at)

    # ---------------------------------------------------------------- images

    def known_image_ids(self, image_ids: Iterable[str]) -> set[str]:
        ids = [i for i in set(image_ids) if is_image_id(i)]
        table = self._open(T_IMAGES)
        if table is None or not ids:
            return set()
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = (
                table.search()
                .where(f"image_id IN ({sql_list(chunk)})", prefilter=True)
                .select(["image_id"])
                .limit(None)
                .to_arrow()
            )
            found.update(rows.column("image_id").to_pylist())
        return found

    def add_images(
        self,
        batch_id: str,
        source: str,
        images: Sequence[DecodedImage],
        groups: Mapping[str, str] | None = None,
    ) -> list[ImageRecord]:
        """Store originals and image rows; bytes already indexed (by sha256) are left alone.

        `groups` maps an image id to its near-duplicate group (default: a group of its own).
        Returns the records of the images this call added (not those already indexed, which
        keep their row and batch).
        """
        validate_batch_id(batch_id)
        records: list[ImageRecord] = []
        seen: set[str] = self.known_image_ids(im.image_id for im in images)
        for im in images:
            if im.image_id in seen:
                continue
            seen.add(im.image_id)
            self.blobs.put(im.image_id, im.data)
            records.append(
                ImageRecord(
                    image_id=im.image_id,
                    batch_id=batch_id,
                    source=source,
                    source_uri=im.source_uri,
                    width=im.width,
                    height=im.height,
                    format=im.format,
                    media_type=im.media_type,
                    thumbnail=im.thumbnail,
                    page_url=im.page_url,
                    licence=im.licence,
                    attribution=im.attribution,
                    fetched_at=im.fetched_at,
                    phash=im.phash,
                    near_duplicate_group=(groups or {}).get(im.image_id, im.image_id),
                    medium=im.medium,
                )
            )
        if records:
            now = utc_now()
            table = self._table(T_IMAGES, schemas.IMAGES)
            rows = pa.Table.from_pylist(
                [{**r.__dict__, "ingested_at": now} for r in records], schema=schemas.IMAGES
            )
            table.merge_insert("image_id").when_not_matched_insert_all().execute(rows)
        return records

    def images_for_batches(self, batch_ids: Sequence[str]) -> list[ImageRecord]:
        rows = self._rows_for_batches(T_IMAGES, batch_ids)
        if rows is None:
            return []
        fields = ImageRecord.__dataclass_fields__
        return [
            ImageRecord(**{k: v for k, v in r.items() if k in fields})
            for r in sorted(rows.to_pylist(), key=lambda r: r["source_uri"])
        ]

    def perceptual_hashes(self) -> list[tuple[str, str, str]]:
        """`(image_id, phash, near_duplicate_group)` of every image that has a hash, in the
        order they were ingested (so the first of a group comes first)."""
        table = self._open(T_IMAGES)
        if table is None or "phash" not in table.schema.names:
            return []
        rows = (
            table.search()
            .where("phash IS NOT NULL", prefilter=True)
            .select(["image_id", "phash", "near_duplicate_group", "ingested_at"])
            .limit(None)
            .to_arrow()
            .to_pylist()
        )
        rows.sort(key=lambda r: (r["ingested_at"], r["image_id"]))
        return [
            (r["image_id"], r["phash"], r["near_duplicate_group"] or r["image_id"]) for r in rows
        ]

    def get_image(self, image_id: str) -> ImageRecord | None:
        if not is_image_id(image_id):
            return None
        table = self._open(T_IMAGES)
        if table is None:
            return None
        rows = table.search().where(f"image_id = '{image_id}'", prefilter=True).limit(1).to_arrow()
        if rows.num_rows == 0:
            return None
        fields = ImageRecord.__dataclass_fields__
        return ImageRecord(**{k: v for k, v in rows.to_pylist()[0].items() if k in fields})

    def record_failures(self, batch_id: str, stage: str, failures: Sequence[IngestFailure]) -> None:
        if not failures:
            return
        validate_batch_id(batch_id)
        now = utc_now()
        rows = pa.Table.from_pylist(
            [
                {
                    # One row per file, whichever batch saw it fail last: re-indexing a folder
                    # does not pile up copies of the same failure.
                    "failure_id": failure_id(stage, f.source_uri),
                    "batch_id": batch_id,
                    "stage": stage,
                    "source_uri": f.source_uri,
                    "reason": f.reason,
                    "recorded_at": now,
                }
                for f in {f.source_uri: f for f in failures}.values()
            ],
            schema=schemas.INGEST_FAILURES,
        )
        table = self._table(T_FAILURES, schemas.INGEST_FAILURES)
        table.merge_insert(
            "failure_id"
        ).when_matched_update_all().when_not_matched_insert_all().execute(rows)

    def latest_failures(self, source_uris: Iterable[str]) -> dict[str, tuple[datetime, str]]:
        """When each of these files last failed to be indexed, and why (files that never
        failed are left out)."""
        uris = sorted(set(source_uris))
        table = self._open(T_FAILURES)
        found: dict[str, tuple[datetime, str]] = {}
        if table is None or not uris:
            return found
        for start in range(0, len(uris), 500):
            rows = (
                table.search()
                .where(f"source_uri IN ({sql_list(uris[start : start + 500])})", prefilter=True)
                .select(["source_uri", "recorded_at", "reason"])
                .limit(None)
                .to_arrow()
                .to_pylist()
            )
            for row in rows:
                uri, at = row["source_uri"], row["recorded_at"]
                if uri not in found or at > found[uri][0]:
                    found[uri] = (at, row["reason"])
        return found

    def failures_for_batches(self, batch_ids: Sequence[str]) -> list[dict[str, Any]]:
        rows = self._rows_for_batches(T_FAILURES, batch_ids)
        return [] if rows is None else sorted(rows.to_pylist(), key=lambda r: r["source_uri"])
