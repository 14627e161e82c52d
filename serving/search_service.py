"""The search itself, shared by `/search` and the seed-compatible endpoint.

A query is read (`SearchQuery`), turned into vectors by the models behind it
(`serving.query_models`, which refuse an index built by another model), ranked and paged by
`pipelines.retrieval` over the served snapshot (`storage.snapshot`); errors are the domain's
(`QueryError`, `SearchUnavailableError`, ...), mapped to HTTP by `serving.errors`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import pyarrow.compute as pc

from config.settings import Settings
from pipelines.errors import QueryError
from pipelines.images import DISPLAY_SIZE, ImageDecodeError, decode_image, rendition
from pipelines.query import ImageDataError, ImageTooLargeError, pose_vector
from pipelines.records import Pose
from pipelines.retrieval.paging import Cursor, Hit, PageRules, RowFilter, page
from pipelines.retrieval.ranking import RankQuery, rank
from serving.clip_loader import ClipLoader
from serving.query_models import QueryModels, QueryWarning, SearchUnavailableError
from storage.records import NothingPublishedError
from storage.snapshot import SearchSnapshot, SnapshotCache
from storage.store import Store

log = logging.getLogger(__name__)

_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(;[\w=.+-]+)*;base64,", re.IGNORECASE)
IMAGE_USES = ("pose", "look", "both")
LOADING_RETRY_AFTER_S = 5
NOTHING_PUBLISHED_RETRY_S = 60  # indexing a folder takes about this long
REINDEX_HINT = "re-index with `poseframer index DIR` using the service's POSEFRAMER_* settings"


class ResultNotFoundError(LookupError):
    """A result the query names (`more_like`) is not in the served version."""


@dataclass(frozen=True)
class SearchQuery:
    """A validated search: a pose (keypoints or image bytes), a text, or a pose and a text."""

    keypoints: list[list[float]] | None = None
    image: bytes | None = None
    text: str | None = None
    lam: float = 0.5
    k: int = 10
    framings: frozenset[str] | None = None  # None: any framing
    version: str | None = None  # None: the pinned or latest publication
    one_per_image: bool = False  # keep only the best person of each image
    # Also match the left-right mirrored pose; None: for a drawn query image yes (a drawing's
    # left and right are ambiguous, front or back view), otherwise no.
    mirror: bool | None = None
    joints: tuple[str, ...] | None = None  # body-part focus: only these joints/groups count
    min_visible_joints: int | None = None  # leave out people with fewer joints in view
    more_like: str | None = None  # a result id: its pose and its picture are the query
    cursor: str | None = None  # continue after the last result of a previous page
    min_score: float | None = None  # relevance floor on the hybrid score
    filters: tuple[tuple[str, frozenset[str]], ...] = ()  # (column, allowed values)
    min_people: int | None = None  # images with at least this many people
    max_people: int | None = None
    collapse_duplicates: bool = True  # one result per near-duplicate group
    image_use: str = "pose"  # what the image counts for: "pose", "look" (CLIP) or "both"
    text_weight: float = 0.5  # text's share of the CLIP query when an image's look is in it

    @property
    def row_filter(self) -> RowFilter:
        columns = self.filters
        if self.framings is not None:
            columns = (*columns, ("framing", self.framings))
        return RowFilter(columns, self.min_visible_joints, self.min_people, self.max_people)

    @property
    def page_rules(self) -> PageRules:
        return PageRules(self.k, self.one_per_image, self.collapse_duplicates, self.min_score)


@dataclass(frozen=True)
class SearchOutcome:
    snapshot: SearchSnapshot
    hits: list[Hit]
    query_pose: Pose | None  # the pose searched for: as sent, or as detected in the image
    next_cursor: str | None = None  # where the next page starts; None on the last page
    warnings: list[QueryWarning] = field(default_factory=list)


def decode_base64_image(value: str, max_bytes: int) -> bytes:
    """The bytes of a base64 image (optionally a `data:image/...;base64,` URL), size-checked."""
    text = value.strip()
    if text.startswith("data:"):
        match = _DATA_URL.match(text)
        if match is None:
            raise ImageDataError("image: a data URL must look like data:image/png;base64,<data>")
        text = text[match.end() :]
    # Reject before decoding, so an oversized upload costs no memory for its decoded copy.
    if len(text) * 3 // 4 > max_bytes + 3:
        raise ImageTooLargeError(f"image: larger than the {max_bytes}-byte upload limit")
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ImageDataError("image: not valid base64 (standard alphabet, with padding)") from None
    if not data:
        raise ImageDataError("image: empty (no bytes after base64 decoding)")
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"image: {len(data)} bytes exceeds the {max_bytes}-byte upload limit"
        )
    return data


class SearchService:
    """Models, the served snapshot and the blob store, behind the operations the API offers."""

    def __init__(
        self, store: Store, snapshots: SnapshotCache, models: QueryModels, max_upload_bytes: int
    ) -> None:
        self.store = store
        self.snapshots = snapshots
        self.models = models
        self.max_upload_bytes = max_upload_bytes
        self._batch_folders: dict[str, str | None] = {}
        # Image ids are content hashes, so a cached rendition can never go stale.
        self.display_rendition: Callable[[str], bytes | None] = lru_cache(maxsize=128)(
            self._display_rendition
        )

    @classmethod
    def from_settings(cls, settings: Settings, store: Store | None = None) -> SearchService:
        """Build the models through the settings (cheap: weights load lazily)."""
        store = store or settings.storage.open_store()
        models, service = settings.models, settings.service
        query_models = QueryModels(
            detector=models.keypoints(),
            embedder=models.pose(),
            clip=ClipLoader(settings.clip(), retry_after_s=models.clip_retry_after),
            model_wait=service.model_wait,
        )
        return cls(
            store=store,
            snapshots=SnapshotCache(store, pinned=service.table_version),
            models=query_models,
            max_upload_bytes=service.max_upload_bytes,
        )

    # ------------------------------------------------------------------ snapshots

    def snapshot(self, version: str | None = None) -> SearchSnapshot:
        """The requested, pinned or latest published snapshot (reloaded when a newer exists)."""
        try:
            return self.snapshots.get(version)
        except NothingPublishedError:
            raise SearchUnavailableError(
                "nothing has been published yet, so there is nothing to search: "
                "index a folder first with `poseframer index DIR`",
                retry_after=NOTHING_PUBLISHED_RETRY_S,
            ) from None

    # ------------------------------------------------------------------ search

    def search(self, query: SearchQuery) -> SearchOutcome:
        image_pose, image_look = self._check_inputs(query)
        cursor = None if query.cursor is None else Cursor.decode(query.cursor)
        snapshot = self.snapshot(query.version if cursor is None else str(cursor.version))
        if (
            cursor is not None
            and query.version is not None
            and self.snapshot(query.version).version != cursor.version
        ):
            raise QueryError("cursor: it belongs to another version than the one asked for")
        like_row = None if query.more_like is None else self._row_by_id(snapshot, query.more_like)
        query_pose, variants, pose_warnings = self.models.pose_query(
            query, snapshot, like_row, image_pose
        )
        pose_q = (
            np.stack([pose_vector(v, self.models.embedder) for v in variants]) if variants else None
        )
        clip_q, warnings = self.models.clip_query(
            query, snapshot, like_row, image_look, has_pose=query_pose is not None
        )
        if query_pose is None and clip_q is None:
            raise QueryError(f"result {query.more_like!r} has neither a pose nor a picture vector")

        mask = query.row_filter.mask(snapshot)
        if like_row is not None:
            if mask is None:
                mask = np.ones(len(snapshot), dtype=bool)
            mask[like_row] = False  # "more like this" does not return the picture itself
        ranked = RankQuery(pose_q, clip_q, query.lam, mask, self.models.rescore(snapshot, variants))
        # Later pages rank the first page's pool (its size and what it was certified for).
        pool, want = (cursor.pool, cursor.want) if cursor is not None else (0, query.k)
        ranking = rank(snapshot, ranked, want or query.k, pool)
        hits, next_cursor = page(snapshot, ranking, query.page_rules, cursor, pose_q is not None)
        hits = [replace(h, row={**h.row, "source_uri": self.public_source(h.row)}) for h in hits]
        return SearchOutcome(snapshot, hits, query_pose, next_cursor, pose_warnings + warnings)

    @staticmethod
    def _check_inputs(query: SearchQuery) -> tuple[bool, bool]:
        """Whether the image counts for its pose and for its look; QueryError for a query that
        asks for nothing, or for two poses."""
        if (
            query.keypoints is None
            and query.image is None
            and not query.text
            and query.more_like is None
        ):
            raise QueryError("give at least one of keypoints, image, text or more_like")
        if query.image_use not in IMAGE_USES:
            raise QueryError(f"image_use: one of {', '.join(IMAGE_USES)}")
        image_pose = query.image is not None and query.image_use in ("pose", "both")
        image_look = query.image is not None and query.image_use in ("look", "both")
        if sum([query.keypoints is not None, image_pose, bool(query.more_like)]) > 1:
            raise QueryError(
                "give one pose: keypoints, image or more_like (an image may count for its "
                'look beside keypoints with image_use "look")',
            )
        return image_pose, image_look

    def public_source(self, row: dict[str, object]) -> str:
        """Where a result came from, as a client may see it: the URL of a web image, the path
        inside the indexed folder of a local file, never a path on this server."""
        uri = str(row["source_uri"])
        if row.get("source") != "folder":
            return uri
        batch_id = str(row.get("batch_id"))
        if batch_id not in self._batch_folders:
            self._batch_folders.update(
                {b.batch_id: b.location for b in self.store.list_batches() if b.source == "folder"}
            )
            self._batch_folders.setdefault(batch_id, None)
        folder = self._batch_folders[batch_id]
        if folder and os.path.isabs(uri):
            relative = os.path.relpath(uri, folder)
            if not relative.startswith(os.pardir):
                return relative.replace(os.sep, "/")
        return os.path.basename(uri)

    @staticmethod
    def _row_by_id(snapshot: SearchSnapshot, row_id: str) -> int:
        position = pc.index(snapshot.table.column("id"), row_id).as_py()
        if position < 0:
            raise ResultNotFoundError(
                f"more_like: no result {row_id!r} in version {snapshot.version}"
            )
        return int(position)

    # ------------------------------------------------------------------ images

    def _display_rendition(self, image_id: str) -> bytes | None:
        """A ≤ DISPLAY_SIZE px JPEG of the original, the stored thumbnail if the original is
        unreadable, or None for an unknown image."""
        try:
            image, _ = decode_image(self.store.blobs.get(image_id))
            return rendition(image, DISPLAY_SIZE)
        except (KeyError, ImageDecodeError) as exc:
            log.warning("original of image %s unusable (%r); using its thumbnail", image_id, exc)
        record = self.store.get_image(image_id)
        return None if record is None else record.thumbnail
