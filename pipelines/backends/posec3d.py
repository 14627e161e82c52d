"""PoseC3D features as a pose embedding: the optional `posec3d` backend (mmaction2).

PoseC3D classifies actions from stacks of pose heatmaps with a 3D CNN. Used as an embedder,
one pose becomes a heatmap volume the way mmaction2's skeleton pipeline builds one, the volume
goes through the trained backbone, and the pooled features are the vector:

1. `PoseCompact` (padding 0.25, square): the box around the seen joints, enlarged by a
   quarter and made square, is mapped onto a `grid`×`grid` frame (64×64, mmaction2's test
   resolution for the NTU/Gym PoseC3D models);
2. `GeneratePoseTarget` (sigma 0.6, `use_score`): one Gaussian heatmap per joint, peak at
   the joint scaled by its score, and/or one per limb (a Gaussian tube along the segment);
   an unseen joint leaves its channel, and the limbs it ends, all zero;
3. the frame tiled `clip_len` times (a still image is a clip where nothing moves; 48 is the
   clip length the checkpoints were trained on);
4. the recognizer's backbone (SlowOnly-R50 gives 512 channels), features averaged over time
   and space, as its I3D head does before the classifier, then scaled to unit length.

Steps 1–2 differ from mmaction2 in two deliberate ways: the box is not rounded to whole
pixels of a video frame (there is none: poses are compared at any size, and rounding would
break scale invariance by a sub-pixel), and a pose whose seen joints span less than 10 px is
not left uncropped (mmaction2 then keeps the full frame, which an embedder does not have); it
is compacted like any other, and only a pose with no extent at all gets no vector.

Needs mmaction2 (and its mmengine/mmcv) plus a local config and checkpoint; nothing is
downloaded. The pure steps (1–3 and the pooling) are numpy and tested without the model.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from pipelines.backends import (
    BackendUnavailableError,
    file_digest,
    missing_file_problem,
    package_missing,
    raise_if_unavailable,
)
from pipelines.pose.embedding import BoolArray, PoseEmbedder, pose_models
from pipelines.records import NUM_JOINTS, FloatArray

# GeneratePoseTarget's default COCO-17 skeleton for limb heatmaps (its `skeletons`), in the
# channel order the limb checkpoints were trained with.
POSEC3D_LIMBS: tuple[tuple[int, int], ...] = (
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (0, 5),
    (5, 7),
    (7, 9),
    (0, 6),
    (6, 8),
    (8, 10),
    (5, 11),
    (11, 13),
    (13, 15),
    (6, 12),
    (12, 14),
    (14, 16),
    (11, 12),
)
EPS = 1e-4  # GeneratePoseTarget's: a joint (or limb) weaker than this draws nothing

HOW_TO_SELECT = (
    "Install the extra with `pip install 'poseframer[posec3d]'`, then select the backend with "
    "POSEFRAMER_POSE_MODEL=posec3d and its options as JSON, e.g. "
    'POSEFRAMER_POSE_MODEL_OPTIONS=\'{"config_path": '
    '"/models/slowonly_r50_ntu60_xsub_keypoint.py", '
    '"checkpoint_path": "/models/slowonly_r50_ntu60_xsub_keypoint.pth"}\'.'
)


def compact_to_grid(
    keypoints: np.ndarray, seen: np.ndarray, grid: int = 64, padding: float = 0.25
) -> np.ndarray | None:
    """Joint positions `(17, 2)` in `grid` pixels after mmaction2's PoseCompact + Resize.

    The box around the seen joints is centred, enlarged by `padding` and made square (its
    longer side wins, `hw_ratio=1`), then scaled onto the grid. None when the seen joints have
    no extent (nothing to scale).
    """
    xy = keypoints[:, :2].astype(np.float64)
    if not seen.any():
        return None
    pts = xy[seen]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    half = float(((hi - lo) / 2 * (1 + padding)).max())
    if half <= 1e-9:
        return None
    origin = (lo + hi) / 2 - half
    return (xy - origin) * (grid / (2 * half))


def joint_heatmap(arr: np.ndarray, center: np.ndarray, value: float, sigma: float) -> None:
    """Draw one Gaussian into `arr` (max with what is there): GeneratePoseTarget's
    `generate_a_heatmap`, including its 3-sigma window."""
    if value < EPS:
        return
    h, w = arr.shape
    mu_x, mu_y = float(center[0]), float(center[1])
    st_x, ed_x = max(int(mu_x - 3 * sigma), 0), min(int(mu_x + 3 * sigma) + 1, w)
    st_y, ed_y = max(int(mu_y - 3 * sigma), 0), min(int(mu_y + 3 * sigma) + 1, h)
    if st_x >= ed_x or st_y >= ed_y:
        return  # the joint's window lies outside the grid
    x = np.arange(st_x, ed_x, dtype=np.float32)
    y = np.arange(st_y, ed_y, dtype=np.float32)[:, None]
    patch = np.exp(-((x - mu_x) ** 2 + (y - mu_y) ** 2) / 2 / sigma**2) * value
    arr[st_y:ed_y, st_x:ed_x] = np.maximum(arr[st_y:ed_y, st_x:ed_x], patch)


def limb_heatmap(
    arr: np.ndarray, start: np.ndarray, end: np.ndarray, value: float, sigma: float
) -> None:
    """Draw one limb (a Gaussian of the distance to the segment) into `arr`:
    GeneratePoseTarget's `generate_a_limb_heatmap`. `value` is the weaker end's score."""
    if value < EPS:
        return
    h, w = arr.shape
    a, b = start.astype(np.float64), end.astype(np.float64)
    min_x = max(int(min(a[0], b[0]) - 3 * sigma), 0)
    max_x = min(int(max(a[0], b[0]) + 3 * sigma) + 1, w)
    min_y = max(int(min(a[1], b[1]) - 3 * sigma), 0)
    max_y = min(int(max(a[1], b[1]) + 3 * sigma) + 1, h)
    if min_x >= max_x or min_y >= max_y:
        return
    x = np.arange(min_x, max_x, dtype=np.float32)
    y = np.arange(min_y, max_y, dtype=np.float32)[:, None]
    d2_start = (x - a[0]) ** 2 + (y - a[1]) ** 2
    d2_end = (x - b[0]) ** 2 + (y - b[1]) ** 2
    d2_ab = float(((a - b) ** 2).sum())
    if d2_ab < 1:
        # Ends closer than a pixel: mmaction2 draws the start joint instead of a tube.
        joint_heatmap(arr, a, value, sigma)
        return
    coeff = (d2_start - d2_end + d2_ab) / 2.0 / d2_ab  # projection onto AB, 0 at A, 1 at B
    px = a[0] + coeff * (b[0] - a[0])
    py = a[1] + coeff * (b[1] - a[1])
    d2_line = (x - px) ** 2 + (y - py) ** 2
    d2_seg = np.where(coeff <= 0, d2_start, np.where(coeff >= 1, d2_end, d2_line))
    patch = np.exp(-d2_seg / 2.0 / sigma**2) * value
    arr[min_y:max_y, min_x:max_x] = np.maximum(arr[min_y:max_y, min_x:max_x], patch)


def pose_heatmaps(
    keypoints: npt.ArrayLike,
    *,
    grid: int = 64,
    sigma: float = 0.6,
    padding: float = 0.25,
    with_kp: bool = True,
    with_limb: bool = False,
    use_score: bool = True,
    min_score: float = 0.0,
) -> tuple[FloatArray, BoolArray]:
    """`(n, 17, 3)` poses → one heatmap frame each, `(n, C, grid, grid)`, and which have one.

    C is 17 joint channels (`with_kp`), then 17 limb channels (`with_limb`). A joint counts
    as seen when its score is above `min_score`; its peak is its score (`use_score`) or 1.
    A pose with no seen joint, or whose seen joints are all at one point, is all zeros and
    marked False.
    """
    kps = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)
    channels = NUM_JOINTS * int(with_kp) + len(POSEC3D_LIMBS) * int(with_limb)
    if channels == 0:
        raise ValueError("at least one of with_kp and with_limb must be set")
    out = np.zeros((len(kps), channels, grid, grid), dtype=np.float32)
    ok = np.zeros(len(kps), dtype=bool)
    for i, pose in enumerate(kps):
        seen = pose[:, 2] > min_score
        xy = compact_to_grid(pose, seen, grid, padding)
        if xy is None:
            continue
        ok[i] = True
        value = np.where(seen, pose[:, 2] if use_score else 1.0, 0.0)
        c = 0
        if with_kp:
            for j in range(NUM_JOINTS):
                joint_heatmap(out[i, c + j], xy[j], float(value[j]), sigma)
            c += NUM_JOINTS
        if with_limb:
            for m, (ja, jb) in enumerate(POSEC3D_LIMBS):
                limb_heatmap(out[i, c + m], xy[ja], xy[jb], float(min(value[ja], value[jb])), sigma)
    return out, ok


def heatmap_volume(frames: Any, clip_len: int) -> Any:
    """`(n, C, H, W)` frames → the `(n, C, T, H, W)` clip of a still pose (NCTHW_Heatmap).

    A view of T identical frames, for a numpy array or a torch tensor alike, so the copies
    are made only where the model needs them (on its device).
    """
    n, c, h, w = frames.shape
    shape = (n, c, clip_len, h, w)
    if isinstance(frames, np.ndarray):
        return np.broadcast_to(frames[:, :, None], shape)
    return frames[:, :, None].expand(*shape)


def pool_features(features: np.ndarray) -> tuple[FloatArray, BoolArray]:
    """Backbone features `(n, C, T, H, W)` → unit rows `(n, C)` and which rows are non-zero.

    Averaged over time and space, the input of PoseC3D's I3D head, then scaled to unit
    length so dot products are cosine similarities.
    """
    f = np.asarray(features, dtype=np.float64)
    pooled = f.reshape(f.shape[0], f.shape[1], -1).mean(axis=2)
    norm = np.linalg.norm(pooled, axis=1)
    ok = norm > 1e-12
    unit = np.where(ok[:, None], pooled / np.maximum(norm, 1e-12)[:, None], 0.0)
    return unit.astype(np.float32), ok


@pose_models.register("posec3d")
class PoseC3DEmbedder(PoseEmbedder):
    """PoseC3D backbone features of a still pose (mmaction2 config + checkpoint, local).

    `dim` must equal the backbone's output channels (512 for SlowOnly-R50); the channels the
    heatmaps have (`with_kp` 17, `with_limb` 17) must match the checkpoint's input. A pose
    with fewer than `min_joints` seen joints gets no vector.
    """

    name = "posec3d"

    def __init__(
        self,
        config_path: str | None = None,
        checkpoint_path: str | None = None,
        device: str = "cuda",
        dim: int = 512,
        grid: int = 64,
        sigma: float = 0.6,
        padding: float = 0.25,
        clip_len: int = 48,
        with_kp: bool = True,
        with_limb: bool = False,
        use_score: bool = True,
        min_score: float = 0.0,
        min_joints: int = 4,
        batch_size: int = 16,
    ) -> None:
        if not (with_kp or with_limb):
            raise ValueError("at least one of with_kp and with_limb must be set")
        problems = [
            p
            for p in (
                missing_file_problem(
                    "config_path", config_path, "the local mmaction2 PoseC3D config (.py)"
                ),
                missing_file_problem(
                    "checkpoint_path",
                    checkpoint_path,
                    "the local PoseC3D checkpoint (.pth); weights are never downloaded",
                ),
            )
            if p is not None
        ]
        if package_missing("mmaction"):
            problems.append(
                "mmaction2 is not installed: pip install 'poseframer[posec3d]' "
                "(mmaction2 with mmengine and mmcv)"
            )
        raise_if_unavailable(self.name, "pose embedding", problems, HOW_TO_SELECT)
        assert config_path is not None and checkpoint_path is not None
        self.config_path = config_path
        self.checkpoint_path = checkpoint_path
        self.device = device
        self.dim = dim
        self.grid = grid
        self.sigma = sigma
        self.padding = padding
        self.clip_len = clip_len
        self.with_kp = with_kp
        self.with_limb = with_limb
        self.use_score = use_score
        self.min_score = min_score
        self.min_joints = min_joints
        self.batch_size = batch_size
        self._backbone: Any = None
        self._lock = threading.Lock()
        self._model_id: str | None = None

    @property
    def channels(self) -> int:
        return NUM_JOINTS * int(self.with_kp) + len(POSEC3D_LIMBS) * int(self.with_limb)

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            self._model_id = (
                f"posec3d-{file_digest(self.checkpoint_path)}"
                f"(config={file_digest(self.config_path)},dim={self.dim},grid={self.grid},"
                f"sigma={self.sigma:g},padding={self.padding:g},clip_len={self.clip_len},"
                f"kp={int(self.with_kp)},limb={int(self.with_limb)},"
                f"use_score={int(self.use_score)},min_score={self.min_score:g},"
                f"min_joints={self.min_joints})"
            )
        return self._model_id

    def seen(self, keypoints: np.ndarray) -> BoolArray:
        return np.asarray(keypoints[..., 2] > self.min_score)

    def _load(self) -> Any:
        with self._lock:
            if self._backbone is None:
                from mmaction.apis import init_recognizer

                recognizer = init_recognizer(self.config_path, self.checkpoint_path, self.device)
                backbone = recognizer.backbone
                expected = getattr(backbone, "in_channels", self.channels)
                if expected != self.channels:
                    raise BackendUnavailableError(
                        f"the PoseC3D checkpoint takes {expected} heatmap channels but "
                        f"with_kp={self.with_kp}, with_limb={self.with_limb} make "
                        f"{self.channels}: set them to match the config"
                    )
                self._backbone = backbone.eval()
            return self._backbone

    def _features(self, frames: np.ndarray) -> np.ndarray:
        """Backbone features `(n, C', T', H', W')` of `(n, C, H, W)` heatmap frames."""
        import torch

        backbone = self._load()
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(frames), self.batch_size):
                chunk = torch.from_numpy(frames[start : start + self.batch_size]).to(self.device)
                out = backbone(heatmap_volume(chunk, self.clip_len).contiguous())
                if isinstance(out, tuple | list):
                    out = out[-1]
                chunks.append(out.float().cpu().numpy())
        return np.concatenate(chunks, axis=0)

    def embed_array(self, keypoints: npt.ArrayLike) -> tuple[FloatArray, BoolArray]:
        kps = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)
        vectors = np.zeros((len(kps), self.dim), dtype=np.float32)
        frames, ok = pose_heatmaps(
            kps,
            grid=self.grid,
            sigma=self.sigma,
            padding=self.padding,
            with_kp=self.with_kp,
            with_limb=self.with_limb,
            use_score=self.use_score,
            min_score=self.min_score,
        )
        valid = ok & (self.seen(kps).sum(axis=1) >= self.min_joints)
        if not valid.any():
            return vectors, valid
        features = self._features(frames[valid])
        if features.shape[1] != self.dim:
            raise BackendUnavailableError(
                f"the PoseC3D backbone gives {features.shape[1]}-channel features but "
                f"dim={self.dim}: set dim={features.shape[1]}"
            )
        unit, nonzero = pool_features(features)
        vectors[valid] = unit
        valid[valid] = nonzero
        return vectors, valid
