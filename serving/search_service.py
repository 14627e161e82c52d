"""The search itself, shared by `/search` and the seed-compatible endpoint.

Query vectors come from the same `pipelines` functions the indexing assets call, and the
service refuses to compare a query with an index built by a different model (the classic
silent bug of embedding search: plausible-looking but meaningless scores).
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow.compute as pc

from config.settings import Settings
from pipelines.images import DISPLAY_SIZE, ImageDecodeError, decode_image, rendition
from pipelines.keypoints import KeypointDetector, pose_from_keypoint_list
from pipelines.pose_embedding import PoseEmbedder
from pipelines.query import (
    ImageDataError,
    ImageTooLargeError,
    QueryError,
    figure_from_image,
    focus_joints,
    focus_pose,
    mirror_joints,
    mirror_pose,
    pose_vector,
    text_vector,
)
from pipelines.records import FloatArray, Pose
from pipelines.retrieval.paging import Cursor, Hit, PageRules, RowFilter, page
from pipelines.retrieval.ranking import RankQuery, Rescore, rank
from serving.clip_loader import BackgroundLoad, ClipLoader, LoadState
from storage.records import NothingPublishedError
from storage.snapshot import SearchSnapshot, SnapshotCache
from storage.store import Store

log = logging.getLogger(__name__)

_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(;[\w=.+-]+)*;base64,", re.IGNORECASE)
IMAGE_USES = ("pose", "look", "both")
LOADING_RETRY_AFTER_S = 5
NOTHING_PUBLISHED_RETRY_S = 60  # indexing a folder takes about this long
REINDEX_HINT = "re-index with `poseframer index DIR` using the service's POSEFRAMER_* settings"


class SearchUnavailableError(Exception):
    """The search cannot be answered now (nothing published yet, a model still loading, no
    CLIP for a text query); `retry_after` says in how many seconds to try again."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelMismatchError(Exception):
    """The served index was built with another model than the one this service queries with."""


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
class QueryWarning:
    """Part of a query that could not be honoured, while the rest was answered."""

    code: str  # machine-readable: text_ignored, look_ignored
    message: str  # one sentence for the person searching


@dataclass(frozen=True)
class SearchOutcome:
    snapshot: SearchSnapshot
    hits: list[Hit]
    query_pose: Pose | None  # the pose searched for: as sent, or as detected in the image
    next_cursor: str | None = None  # where the next page starts; None on the last page
    warnings: list[QueryWarning] = field(default_factory=list)


def _unit(v: np.ndarray) -> FloatArray:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


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
        self,
        store: Store,
        snapshots: SnapshotCache,
        detector: KeypointDetector,
        embedder: PoseEmbedder,
        clip: ClipLoader,
        max_upload_bytes: int,
        model_wait: float = 20.0,
    ) -> None:
        self.store = store
        self.snapshots = snapshots
        self.detector = detector
        self.embedder = embedder
        self.clip = clip
        # The keypoint model, loaded at startup beside CLIP (image queries wait for it).
        self.pose_loader = BackgroundLoad("the keypoint model", detector.load)
        self.max_upload_bytes = max_upload_bytes
        self.model_wait = model_wait  # how long a query waits for a model still loading
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
        return cls(
            store=store,
            snapshots=SnapshotCache(store, pinned=service.table_version),
            detector=models.keypoints(),
            embedder=models.pose(),
            clip=ClipLoader(settings.clip(), retry_after_s=models.clip_retry_after),
            max_upload_bytes=service.max_upload_bytes,
            model_wait=service.model_wait,
        )

    # ------------------------------------------------------------------ models

    def start_loading(self) -> None:
        """Load the keypoint model and CLIP in the background (at startup)."""
        self.pose_loader.start()
        self.clip.start()

    @property
    def status(self) -> Literal["loading", "ready"]:
        """`loading` while a model is still loading, then `ready` (CLIP may have failed)."""
        return "loading" if self.pose_loader.pending or self.clip.pending else "ready"

    def _await(self, loader: BackgroundLoad) -> None:
        """Wait (bounded) for a model still loading; 503 with Retry-After when it takes longer."""
        if loader.pending and not loader.wait(self.model_wait):
            raise SearchUnavailableError(
                f"{loader.what} is still loading; try again in a few seconds",
                retry_after=LOADING_RETRY_AFTER_S,
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

    # ------------------------------------------------------------------ model guards

    def check_pose_model(self, snapshot: SearchSnapshot) -> None:
        index_model = snapshot.publication.pose_model
        if self.embedder.model_id != index_model:
            raise ModelMismatchError(
                f"the served index (version {snapshot.version}) holds pose vectors of "
                f"{index_model!r}, but this service embeds queries with "
                f"{self.embedder.model_id!r}; scores between them would be meaningless. Set "
                f"POSEFRAMER_POSE_MODEL to the index's model, or {REINDEX_HINT}.",
            )

    def pose_search_problem(self, snapshot: SearchSnapshot | None) -> str | None:
        """Why a pose query cannot be answered now, or None when it can."""
        if snapshot is None:
            return "nothing has been published yet: index a folder with `poseframer index DIR`"
        try:
            self.check_pose_model(snapshot)
        except ModelMismatchError as exc:
            return str(exc)
        return None

    def text_search_problem(self, snapshot: SearchSnapshot | None) -> str | None:
        """Why a text query cannot be answered now, or None when it can."""
        if snapshot is None:
            return "nothing has been published yet: index a folder with `poseframer index DIR`"
        self.clip.start()
        index_model = snapshot.publication.clip_model
        if index_model is None:
            problem = (
                f"the served index (version {snapshot.version}) has no CLIP vectors: it was "
                "built without CLIP weights, so only pose search works. Configure CLIP weights "
                "(POSEFRAMER_CLIP_MODEL and POSEFRAMER_CLIP_PRETRAINED, a pretrained tag or a "
                f"local checkpoint file) and {REINDEX_HINT}."
            )
            if self.clip.error:
                problem += f" This service cannot load CLIP either: {self.clip.error}"
            return problem
        if self.clip.state is LoadState.LOADING:
            return (
                "CLIP model is still loading; try the text query again shortly (pose search works)"
            )
        if self.clip.state is LoadState.FAILED:
            return f"text search is unavailable: {self.clip.error}"
        service_model = self.clip.encoder.model_id
        if service_model != index_model:
            return (
                f"the served index (version {snapshot.version}) holds CLIP vectors of "
                f"{index_model!r}, but this service encodes text with {service_model!r}; "
                "set POSEFRAMER_CLIP_MODEL / POSEFRAMER_CLIP_PRETRAINED to the index's model, "
                f"or {REINDEX_HINT}."
            )
        return None

    def text_search_summary(self, snapshot: SearchSnapshot | None) -> str | None:
        """One sentence for a person searching, when text search is off (None when it works)."""
        if self.text_search_problem(snapshot) is None:
            return None
        return f"Text search is off: {self._why_text_is_off(snapshot)}."

    def _why_text_is_off(self, snapshot: SearchSnapshot | None) -> str:
        """Why text search is off, as a clause for a person searching."""
        if snapshot is not None and snapshot.publication.clip_model is None:
            return "these pictures were indexed without CLIP vectors"
        if self.clip.pending:
            return "its model is still loading"
        if self.clip.state is LoadState.FAILED:
            return "this server has no CLIP model weights"
        return "the index and this server use different CLIP models"

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
        query_pose, variants = self._pose_query(query, snapshot, like_row, image_pose)
        pose_q = np.stack([pose_vector(v, self.embedder) for v in variants]) if variants else None
        clip_q, warnings = self._clip_query(
            query, snapshot, like_row, image_look, has_pose=query_pose is not None
        )
        if query_pose is None and clip_q is None:
            raise QueryError(f"result {query.more_like!r} has neither a pose nor a picture vector")

        mask = query.row_filter.mask(snapshot)
        if like_row is not None:
            if mask is None:
                mask = np.ones(len(snapshot), dtype=bool)
            mask[like_row] = False  # "more like this" does not return the picture itself
        ranked = RankQuery(pose_q, clip_q, query.lam, mask, self._rescore(snapshot, variants))
        # Later pages rank the first page's pool (its size and what it was certified for).
        pool, want = (cursor.pool, cursor.want) if cursor is not None else (0, query.k)
        ranking = rank(snapshot, ranked, want or query.k, pool)
        hits, next_cursor = page(snapshot, ranking, query.page_rules, cursor, pose_q is not None)
        hits = [replace(h, row={**h.row, "source_uri": self.public_source(h.row)}) for h in hits]
        return SearchOutcome(snapshot, hits, query_pose, next_cursor, warnings)

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

    def _pose_query(
        self, query: SearchQuery, snapshot: SearchSnapshot, like_row: int | None, image_pose: bool
    ) -> tuple[Pose | None, list[Pose]]:
        """The pose searched for (as sent, as read in the image, or a result's), and the poses
        to match: it, focused on the query's joints, and its mirror image where asked (a drawn
        query image asks by default)."""
        query_pose: Pose | None = None
        mirror = query.mirror
        mirror_reading: Pose | None = None  # an image's mirror image, as the detector reads it
        if like_row is not None and snapshot.pose_mask[like_row]:
            self.check_pose_model(snapshot)
            query_pose = Pose.from_array(snapshot.keypoints[like_row])
        elif query.keypoints is not None:
            self.check_pose_model(snapshot)
            try:
                query_pose = pose_from_keypoint_list(query.keypoints)
            except ValueError as exc:
                raise QueryError(f"keypoints: {exc}") from None
        elif image_pose:
            self.check_pose_model(snapshot)
            assert query.image is not None
            self._await(self.pose_loader)
            figure = figure_from_image(query.image, self.detector, mirror=mirror)
            query_pose, mirror_reading = figure.pose, figure.mirrored
            mirror = mirror_reading is not None  # decided by the picture when unset
        if query_pose is None:
            return None, []
        focus = focus_joints(list(query.joints)) if query.joints else None
        if focus is not None:
            query_pose = focus_pose(query_pose, focus)
        variants = [query_pose]
        if mirror:
            mirrored = mirror_pose(query_pose)
            if mirror_reading is not None:
                if focus is not None:
                    mirror_reading = focus_pose(mirror_reading, mirror_joints(focus))
                if self.embedder.embed(mirror_reading) is not None:
                    mirrored = mirror_reading
            variants.append(mirrored)
        return query_pose, variants

    def _clip_query(
        self,
        query: SearchQuery,
        snapshot: SearchSnapshot,
        like_row: int | None,
        image_look: bool,
        has_pose: bool,
    ) -> tuple[FloatArray | None, list[QueryWarning]]:
        """The CLIP query vector (a result's picture, the text, the image's look, or a blend),
        and warnings for the parts left out when text search is off but a pose answers."""
        clip_q: FloatArray | None = None
        if like_row is not None and snapshot.clip_mask[like_row]:
            # "More like this" looks for the same picture too: its CLIP image vector.
            clip_q = snapshot.clip_vectors(np.array([like_row]))[0]
        warnings: list[QueryWarning] = []
        text = query.text
        if text or image_look:
            self._await(self.clip)
            problem = self.text_search_problem(snapshot)
            if problem is not None:
                if not has_pose and clip_q is None:
                    raise SearchUnavailableError(problem, retry_after=self._text_retry_after())
                # The pose part can still be answered: answer it, and say what was left out.
                warnings = self._ignored_warnings(snapshot, text, image_look)
                text, image_look = None, False
        if image_look:
            # Its look: the CLIP image vector, as the indexer computes it for stored images.
            assert query.image is not None
            picture, _ = decode_image(query.image)
            look = self.clip.encoder.encode_images([picture])[0]
            text_part = text_vector(text, self.clip.encoder) if text else None
            clip_q = (
                look
                if text_part is None
                else _unit(query.text_weight * text_part + (1.0 - query.text_weight) * look)
            )
        elif text:
            text_q = text_vector(text, self.clip.encoder)
            clip_q = text_q if clip_q is None else _unit(clip_q + text_q)
        return clip_q, warnings

    def _rescore(self, snapshot: SearchSnapshot, variants: list[Pose]) -> Rescore | None:
        """For a query that leaves joints unseen ("don't care"): its exact similarities over
        its own joints; None for a query that sees every joint."""
        if not variants or all(self.embedder.seen(v.array()).all() for v in variants):
            return None

        def rescore(rows: npt.NDArray[np.int64]) -> FloatArray:
            candidates = snapshot.keypoints[rows]
            return np.stack([self.embedder.similarity_to(v, candidates) for v in variants])

        return rescore

    def _text_retry_after(self) -> int | None:
        if self.clip.pending:
            return LOADING_RETRY_AFTER_S
        retry_in = self.clip.retry_in()
        return None if retry_in is None else max(1, math.ceil(retry_in))

    def _ignored_warnings(
        self, snapshot: SearchSnapshot, text: str | None, look: bool
    ) -> list[QueryWarning]:
        why = self._why_text_is_off(snapshot)
        warnings = []
        if text:
            warnings.append(
                QueryWarning(
                    "text_ignored",
                    f"Text search is unavailable ({why}), so your text was ignored and the "
                    "results are ranked by pose alone.",
                )
            )
        if look:
            warnings.append(
                QueryWarning(
                    "look_ignored",
                    f"Matching the look of your picture needs CLIP, which is unavailable "
                    f"({why}), so the results are ranked by pose alone.",
                )
            )
        return warnings

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
