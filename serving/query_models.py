"""The models behind a query: loading them, refusing an index built by another model, and
turning a query's pose and text into the vectors the ranking compares.

Query vectors come from the same `pipelines` functions the indexing assets call, and a query
is never compared with an index built by a different model (the classic silent bug of
embedding search: plausible-looking but meaningless scores).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from pipelines.errors import QueryError
from pipelines.images import decode_image
from pipelines.pose.embedding import PoseEmbedder
from pipelines.pose.keypoints import KeypointDetector, pose_from_keypoint_list
from pipelines.query import (
    figure_from_image,
    focus_joints,
    focus_pose,
    mirror_joints,
    mirror_pose,
    text_vector,
)
from pipelines.records import FloatArray, Pose
from pipelines.retrieval.ranking import Rescore
from serving.clip_loader import BackgroundLoad, ClipLoader, LoadState
from storage.snapshot import SearchSnapshot

if TYPE_CHECKING:
    from serving.search_service import SearchQuery

LOADING_RETRY_AFTER_S = 5
REINDEX_HINT = "re-index with `poseframer index DIR` using the service's POSEFRAMER_* settings"


class SearchUnavailableError(Exception):
    """The search cannot be answered now (nothing published yet, a model still loading, no
    CLIP for a text query); `retry_after` says in how many seconds to try again."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelMismatchError(Exception):
    """The served index was built with another model than the one this service queries with."""


@dataclass(frozen=True)
class QueryWarning:
    """Part of a query that could not be honoured while the rest was answered, or a doubt
    about what was read from it."""

    code: str  # machine-readable: text_ignored, look_ignored, unsure_figure
    message: str  # one sentence for the person searching


# An image's figure that reads otherwise from its mirror image: the index would not take it
# as a figure (a drawing's mirror check), but whoever sent it means one, so it is searched for
# and they are told to look at the reading, which the web page shows over the picture.
UNSURE_FIGURE = QueryWarning(
    "unsure_figure",
    "The figure read from your picture is unsure: read again from its mirror image, most of "
    "its joints land elsewhere. Check the skeleton shown over your picture and move any "
    "joints that are off before trusting these results.",
)


def _unit(v: np.ndarray) -> FloatArray:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


class QueryModels:
    """The keypoint detector, the pose embedder and CLIP, as the service queries with them."""

    def __init__(
        self,
        detector: KeypointDetector,
        embedder: PoseEmbedder,
        clip: ClipLoader,
        model_wait: float = 20.0,
    ) -> None:
        self.detector = detector  # the index's keypoint model (health reports it)
        # What reads query images: the same model, as willing as the backend is to see the
        # figure someone sent (`KeypointDetector.for_queries`).
        self.query_reader = detector.for_queries()
        self.embedder = embedder
        self.clip = clip
        # The keypoint model, loaded at startup beside CLIP (image queries wait for it).
        self.pose_loader = BackgroundLoad("the keypoint model", self.query_reader.load)
        self.model_wait = model_wait  # how long a query waits for a model still loading

    def start_loading(self) -> None:
        """Load the keypoint model and CLIP in the background (at startup)."""
        self.pose_loader.start()
        self.clip.start()

    @property
    def status(self) -> Literal["loading", "ready"]:
        """`loading` while a model is still loading, then `ready` (CLIP may have failed)."""
        return "loading" if self.pose_loader.pending or self.clip.pending else "ready"

    def wait_for(self, loader: BackgroundLoad) -> None:
        """Wait (bounded) for a model still loading; 503 with Retry-After when it takes longer."""
        if loader.pending and not loader.wait(self.model_wait):
            raise SearchUnavailableError(
                f"{loader.what} is still loading; try again in a few seconds",
                retry_after=LOADING_RETRY_AFTER_S,
            )

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
        return f"Text search is off: {self.why_text_is_off(snapshot)}."

    def why_text_is_off(self, snapshot: SearchSnapshot | None) -> str:
        """Why text search is off, as a clause for a person searching."""
        if snapshot is not None and snapshot.publication.clip_model is None:
            return "these pictures were indexed without CLIP vectors"
        if self.clip.pending:
            return "its model is still loading"
        if self.clip.state is LoadState.FAILED:
            return "this server has no CLIP model weights"
        return "the index and this server use different CLIP models"

    def pose_query(
        self, query: SearchQuery, snapshot: SearchSnapshot, like_row: int | None, image_pose: bool
    ) -> tuple[Pose | None, list[Pose], list[QueryWarning]]:
        """The pose searched for (as sent, as read in the image, or a result's), the poses
        to match: it, focused on the query's joints, and its mirror image where asked (a drawn
        query image asks by default), and a warning where the image's figure is unsure."""
        warnings: list[QueryWarning] = []
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
            self.wait_for(self.pose_loader)
            figure = figure_from_image(query.image, self.query_reader, mirror=mirror)
            query_pose, mirror_reading = figure.pose, figure.mirrored
            mirror = mirror_reading is not None  # decided by the picture when unset
            if figure.unsure:
                warnings.append(UNSURE_FIGURE)
        if query_pose is None:
            return None, [], warnings
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
        return query_pose, variants, warnings

    def clip_query(
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
            self.wait_for(self.clip)
            problem = self.text_search_problem(snapshot)
            if problem is not None:
                if not has_pose and clip_q is None:
                    raise SearchUnavailableError(problem, retry_after=self.text_retry_after())
                # The pose part can still be answered: answer it, and say what was left out.
                warnings = self.ignored_warnings(snapshot, text, image_look)
                text, image_look = None, False
        if image_look:
            # Its look: the CLIP image vector, as the indexer computes it for stored images.
            assert query.image is not None
            picture, _ = decode_image(query.image)
            look = self.clip.encoder.encode_images([picture])[0]
            text_part = text_vector(text, self.clip.encoder) if text else None
            weight = query.text_weight
            # At either end the query is that vector alone, exactly (a renormalised mix
            # differs from it in the last bits, and so would the scores).
            if text_part is None or weight == 0.0:
                clip_q = look
            elif weight == 1.0:
                clip_q = text_part
            else:
                clip_q = _unit(weight * text_part + (1.0 - weight) * look)
        elif text:
            text_q = text_vector(text, self.clip.encoder)
            clip_q = text_q if clip_q is None else _unit(clip_q + text_q)
        return clip_q, warnings

    def rescore(self, snapshot: SearchSnapshot, variants: list[Pose]) -> Rescore | None:
        """For a query that leaves joints unseen ("don't care"): its exact similarities over
        its own joints; None for a query that sees every joint."""
        if not variants or all(self.embedder.seen(v.array()).all() for v in variants):
            return None

        def rescore(rows: npt.NDArray[np.int64]) -> FloatArray:
            candidates = snapshot.keypoints[rows]
            return np.stack([self.embedder.similarity_to(v, candidates) for v in variants])

        return rescore

    def text_retry_after(self) -> int | None:
        if self.clip.pending:
            return LOADING_RETRY_AFTER_S
        retry_in = self.clip.retry_in()
        return None if retry_in is None else max(1, math.ceil(retry_in))

    def ignored_warnings(
        self, snapshot: SearchSnapshot, text: str | None, look: bool
    ) -> list[QueryWarning]:
        why = self.why_text_is_off(snapshot)
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
