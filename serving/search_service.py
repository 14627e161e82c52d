"""The search itself, shared by `/search` and the seed-compatible endpoint.

Query vectors come from the same `pipelines` functions the indexing assets call, and the
service refuses to compare a query with an index built by a different model (the classic
silent bug of embedding search: plausible-looking but meaningless scores).
"""

from __future__ import annotations

import base64
import binascii
import json
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
import pyarrow as pa
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
from pipelines.scoring import hybrid_search
from serving.clip_loader import BackgroundLoad, ClipLoader, LoadState
from serving.ranking import Ranking, ann_ranking
from storage.snapshot import SearchSnapshot, SnapshotCache
from storage.store import NothingPublishedError, Store

log = logging.getLogger(__name__)

_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(;[\w=.+-]+)*;base64,", re.IGNORECASE)
IMAGE_USES = ("pose", "look", "both")
MAX_SEGMENTS = 16  # more than a ranking has (see serving.ranking)
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


@dataclass(frozen=True)
class Hit:
    row: dict[str, object]  # the search table row (see storage.schemas.search), no vectors
    score: float
    pose_score: float | None  # None when the query had no pose part
    clip_score: float | None  # None when the query had no text part
    mirrored: bool = False  # the mirrored query pose matched best
    pose_raw: float | None = None  # the uncalibrated cosines behind the scores
    clip_raw: float | None = None


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


@dataclass(frozen=True)
class Cursor:
    """A page boundary: the version searched and the last result's place in the ranking.

    Pinning the version keeps later pages on the same table even when a new version is
    published meanwhile, so paging never repeats or skips a row. With an ANN index the
    ranking has two segments (the candidate pool, then every other row), and the cursor
    also pins the pool's size, so every page ranks the same pool.
    """

    version: int
    score: float
    row: int
    segment: int = 0
    pool: int = 0  # the ANN pool per side; 0 with exact scoring
    want: int = 0  # how many best rows the first page's pool was certified for

    def encode(self) -> str:
        fields = [self.version, self.score, self.row, self.segment, self.pool, self.want]
        return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            values = json.loads(raw)
            if not isinstance(values, list) or len(values) not in (3, 6):
                raise ValueError(values)
            version, score, row, *rest = values
            segment, pool, want = (int(v) for v in rest) if rest else (0, 0, 0)
            if not 0 <= segment <= MAX_SEGMENTS or pool < 0 or want < 0:
                raise ValueError(values)
            return cls(int(version), float(score), int(row), segment, pool, want)
        except (ValueError, TypeError, binascii.Error):
            raise QueryError("cursor: not a cursor this service issued") from None

    def before(self, segment: int, score: float, row: int) -> bool:
        """Whether a result at (segment, score, row) was on this page or an earlier one."""
        if segment != self.segment:
            return segment < self.segment
        return (score, -row) >= (self.score, -self.row)


def _finite(value: float) -> float | None:
    # Scoring marks "not queried" with NaN; JSON has no NaN, and null says it better.
    return None if math.isnan(value) else float(value)


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
        pose_inputs = [query.keypoints is not None, image_pose, bool(query.more_like)]
        if sum(pose_inputs) > 1:
            raise QueryError(
                "give one pose: keypoints, image or more_like (an image may count for its "
                'look beside keypoints with image_use "look")',
            )
        cursor = None if query.cursor is None else Cursor.decode(query.cursor)
        snapshot = self.snapshot(query.version if cursor is None else str(cursor.version))
        if (
            cursor is not None
            and query.version is not None
            and self.snapshot(query.version).version != cursor.version
        ):
            raise QueryError("cursor: it belongs to another version than the one asked for")
        like_row = None if query.more_like is None else self._row_by_id(snapshot, query.more_like)

        query_pose: Pose | None = None
        mirror = query.mirror
        mirror_reading: Pose | None = None  # an image's mirror image, as the detector reads it
        variants: list[Pose] = []
        pose_q: FloatArray | None = None
        if like_row is not None and snapshot.pose_mask[like_row]:
            self.check_pose_model(snapshot)
            query_pose = Pose.from_array(snapshot.keypoints[like_row])
        elif query.keypoints is not None or image_pose:
            self.check_pose_model(snapshot)
            if query.keypoints is not None:
                try:
                    query_pose = pose_from_keypoint_list(query.keypoints)
                except ValueError as exc:
                    raise QueryError(f"keypoints: {exc}") from None
            else:
                assert query.image is not None
                self._await(self.pose_loader)
                figure = figure_from_image(query.image, self.detector, mirror=mirror)
                query_pose, mirror_reading = figure.pose, figure.mirrored
                mirror = mirror_reading is not None  # decided by the picture when unset
        if query_pose is not None:
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
            pose_q = np.stack([pose_vector(v, self.embedder) for v in variants])

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
                if query_pose is None and clip_q is None:
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
        if query_pose is None and clip_q is None:
            raise QueryError(f"result {query.more_like!r} has neither a pose nor a picture vector")

        rescore: Callable[[npt.NDArray[np.int64]], FloatArray] | None = None
        if variants and not all(self.embedder.seen(v.array()).all() for v in variants):
            # The query leaves joints unseen ("don't care"): compare over its joints only.

            def rescore(rows: npt.NDArray[np.int64]) -> FloatArray:
                candidates = snapshot.keypoints[rows]
                return np.stack([self.embedder.similarity_to(v, candidates) for v in variants])

        mask = self._filter_mask(snapshot, query)
        if like_row is not None:
            if mask is None:
                mask = np.ones(len(snapshot), dtype=bool)
            mask[like_row] = False  # "more like this" does not return the picture itself
        if snapshot.ann is None:
            scored = hybrid_search(
                snapshot.columns,
                pose_q,
                clip_q,
                query.lam,
                len(snapshot),
                allowed=mask,
                pose_rescore=rescore,
                pose_calibration=snapshot.calibration.pose,
                clip_calibration=snapshot.calibration.clip,
            )
            ranking = Ranking([scored])
        else:
            # Later pages rank the first page's pool (its size and what it was certified for).
            pool, want = (cursor.pool, cursor.want) if cursor is not None else (0, query.k)
            ranking = ann_ranking(
                snapshot, pose_q, clip_q, query.lam, mask, rescore, want or query.k, pool
            )
        hits, next_cursor = self._page(snapshot, ranking, query, cursor, pose_q is not None)
        hits = [replace(h, row={**h.row, "source_uri": self.public_source(h.row)}) for h in hits]
        return SearchOutcome(snapshot, hits, query_pose, next_cursor, warnings)

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

    @staticmethod
    def _filter_mask(snapshot: SearchSnapshot, query: SearchQuery) -> npt.NDArray[np.bool_] | None:
        """The rows the query's filters let through; None when it has none."""
        table = snapshot.table
        wanted = list(query.filters)
        if query.framings is not None:
            wanted.append(("framing", query.framings))
        if not (
            wanted
            or query.min_visible_joints
            or query.min_people is not None
            or query.max_people is not None
        ):
            return None
        mask = np.ones(len(snapshot), dtype=bool)
        for column, values in wanted:
            if column not in table.column_names:
                raise QueryError(f"this index has no {column!r} to filter on")
            chosen = pc.is_in(table.column(column), value_set=pa.array(sorted(values)))
            mask &= np.asarray(chosen.to_numpy(zero_copy_only=False), dtype=bool)
        if query.min_visible_joints:
            mask &= snapshot.visible_joints >= query.min_visible_joints
        if query.min_people is not None or query.max_people is not None:
            people = snapshot.people_per_row
            if query.min_people is not None:
                mask &= people >= query.min_people
            if query.max_people is not None:
                mask &= people <= query.max_people
        return mask

    @staticmethod
    def _page(
        snapshot: SearchSnapshot,
        ranking: Ranking,
        query: SearchQuery,
        cursor: Cursor | None,
        has_pose: bool,
    ) -> tuple[list[Hit], str | None]:
        """One page of the ranking: grouped, floored, after the cursor, `k` long."""
        image_ids = snapshot.table.column("image_id")
        groups = (
            snapshot.table.column("near_duplicate_group")
            if query.collapse_duplicates and "near_duplicate_group" in snapshot.table.column_names
            else None
        )
        seen_images: set[object] = set()
        group_owner: dict[object, object] = {}  # near-duplicate group → the image shown for it
        page: list[tuple[int, int]] = []  # (segment, position in it)
        more = False
        segment = 0
        while not more:
            scored = ranking.segment(segment)
            if scored is None:
                break
            for i in range(scored.rows.size):
                score = float(scored.score[i])
                if query.min_score is not None and score < query.min_score:
                    break  # best first: nothing after this in the segment clears the floor
                row = int(scored.rows[i])
                image_id = image_ids[row].as_py()
                # Grouping looks at every row ranked so far (pages included), so a later page
                # never shows an image or near-duplicate an earlier page already showed.
                if query.one_per_image:
                    if image_id in seen_images:
                        continue
                    seen_images.add(image_id)
                if groups is not None and groups[row].is_valid:
                    owner = group_owner.setdefault(groups[row].as_py(), image_id)
                    if owner != image_id:
                        continue  # a near-duplicate of an image already shown
                if cursor is not None and cursor.before(segment, score, row):
                    continue  # on an earlier page
                if len(page) == query.k:
                    more = True
                    break
                page.append((segment, i))
            if query.min_score is not None and ranking.bound < query.min_score:
                break  # no row outside the pool clears the floor
            segment += 1
            if len(page) == query.k and not more:
                # Full at a segment's end: say whether rows remain without scoring them.
                more = ranking.has(segment)
                break
        chosen = [(ranking.segments[seg], i) for seg, i in page]
        rows = snapshot.rows(np.array([int(sc.rows[i]) for sc, i in chosen], dtype=np.int64))
        hits = (
            [
                Hit(
                    row=row,
                    score=float(sc.score[i]),
                    pose_score=_finite(float(sc.pose_score[i])),
                    clip_score=_finite(float(sc.clip_score[i])),
                    mirrored=bool(has_pose and sc.pose_variant[i] == 1),
                    pose_raw=_finite(float(sc.pose_raw[i])),
                    clip_raw=_finite(float(sc.clip_raw[i])),
                )
                for (sc, i), row in zip(chosen, rows, strict=True)
            ]
            if chosen
            else []
        )
        next_cursor = None
        if more and page:
            seg, last = page[-1]
            sc = ranking.segments[seg]
            next_cursor = Cursor(
                snapshot.version,
                float(sc.score[last]),
                int(sc.rows[last]),
                seg,
                ranking.pool,
                ranking.want,
            ).encode()
        return hits, next_cursor

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
