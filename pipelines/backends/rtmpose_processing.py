"""RTMPose's pre- and post-processing, with mmpose's conventions, in pure numpy (and cv2).

Top-down pipeline, as mmpose's RTMPose inference runs it:

1. person boxes: from `detector_path` (an end-to-end ONNX person detector, YOLOX or RTMDet
   exported by mmdeploy with NMS inside), from the caller (`detect(image, boxes=...)`), or
   else the whole image as one box (fine for the single-figure pictures artists use);
2. each box → centre and scale (box × 1.25, widened or heightened to the model's aspect
   ratio) → affine crop to the model input (bilinear, `cv2.warpAffine` as mmpose does);
3. RGB, `(pixel − ImageNet mean·255) / (std·255)`, NCHW float32 (the exported ONNX does not
   contain mmpose's data preprocessor, so normalisation happens here);
4. SimCC decoding: argmax of the x and y logits divided by the split ratio (2.0), the score
   the smaller (mmpose) or the mean of the two maxima;
5. the inverse affine back to image pixels, then COCO-17 plus named extras, chosen by how many
   keypoints the model outputs (17 body, 26 Halpe, 133 COCO-WholeBody).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from pipelines.records import NUM_JOINTS, Pose

# mmpose's data preprocessor for RTMPose: ImageNet statistics × 255, applied to RGB pixels.
RTMPOSE_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
RTMPOSE_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
# GetBBoxCenterScale's default: the crop is the person box enlarged by a quarter.
BBOX_PADDING = 1.25
SIMCC_SPLIT_RATIO = 2.0
SCORE_MODES = ("min", "mean")

# mmdet's preprocessing of the two usual person detectors. Both were trained on BGR images
# (mmcv reads BGR, `bgr_to_rgb=False`); YOLOX takes raw 0–255 pixels, RTMDet normalised ones.
DETECTOR_PRESETS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "yolox": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "rtmdet": ((103.53, 116.28, 123.675), (57.375, 57.12, 58.395)),
}
LETTERBOX_FILL = 114  # YOLOX/RTMDet pad value

# Halpe-26 (body7/halpe RTMPose models): COCO-17, then these.
HALPE26_EXTRAS: dict[int, str] = {
    17: "head",
    18: "neck",
    19: "hip",
    20: "left_big_toe",
    21: "right_big_toe",
    22: "left_small_toe",
    23: "right_small_toe",
    24: "left_heel",
    25: "right_heel",
}


def _wholebody_extras() -> dict[int, str]:
    """COCO-WholeBody-133: body 0–16 (COCO-17), feet 17–22, face 23–90, hands 91–132."""
    extras = {
        17: "left_big_toe",
        18: "left_small_toe",
        19: "left_heel",
        20: "right_big_toe",
        21: "right_small_toe",
        22: "right_heel",
    }
    # Face points are left out: 68 landmarks say nothing about body pose.
    fingers = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")
    for side, root in (("left", 91), ("right", 112)):
        extras[root] = f"{side}_hand_root"
        for f, finger in enumerate(fingers):
            for joint in range(4):  # 1 at the palm … 4 at the tip, as mmpose names them
                extras[root + 1 + 4 * f + joint] = f"{side}_{finger}{joint + 1}"
    return extras


WHOLEBODY133_EXTRAS: dict[int, str] = _wholebody_extras()
# Every supported layout starts with COCO-17 in COCO order; only the extras differ.
LAYOUT_EXTRAS: dict[int, dict[int, str]] = {
    17: {},
    26: HALPE26_EXTRAS,
    133: WHOLEBODY133_EXTRAS,
}


def bbox_center_scale(
    bbox_xyxy: Sequence[float], padding: float = BBOX_PADDING
) -> tuple[np.ndarray, np.ndarray]:
    """mmpose's `bbox_xyxy2cs`: the box centre and its size × `padding`."""
    x0, y0, x1, y1 = (float(v) for v in bbox_xyxy)
    center = np.array([(x0 + x1) / 2, (y0 + y1) / 2], dtype=np.float64)
    scale = np.array([x1 - x0, y1 - y0], dtype=np.float64) * padding
    return center, scale


def fix_aspect_ratio(scale: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Grow the shorter side of `scale` (w, h) so that w / h equals `aspect_ratio`.

    Never shrinks, so the person stays wholly inside the crop (mmpose's `_fix_aspect_ratio`).
    """
    w, h = float(scale[0]), float(scale[1])
    if w > h * aspect_ratio:
        return np.array([w, w / aspect_ratio], dtype=np.float64)
    return np.array([h * aspect_ratio, h], dtype=np.float64)


def warp_matrix(center: np.ndarray, scale: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """The 2×3 affine taking image pixels to the `output_size` (w, h) crop, no rotation.

    mmpose's `get_warp_matrix(center, scale, rot=0, output_size)` (not UDP): the box centre
    goes to (w/2, h/2) and both axes scale by `w / scale_w` (the aspect is fixed beforehand,
    so that is also `h / scale_h`).
    """
    out_w, out_h = output_size
    s = out_w / float(scale[0])
    return np.array(
        [[s, 0.0, out_w / 2 - s * center[0]], [0.0, s, out_h / 2 - s * center[1]]],
        dtype=np.float64,
    )


def crop_person(
    rgb: np.ndarray,
    bbox_xyxy: Sequence[float],
    input_size: tuple[int, int],
    padding: float = BBOX_PADDING,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model-input crop of one person box: `(crop (h, w, 3) uint8, center, scale)`.

    `scale` is the aspect-fixed crop size in image pixels, what `crop_to_image` needs to map
    keypoints back. Outside the image the crop is black, as with mmpose's warpAffine.
    """
    import cv2  # opencv comes with mediapipe, a core dependency

    center, scale = bbox_center_scale(bbox_xyxy, padding)
    scale = fix_aspect_ratio(scale, input_size[0] / input_size[1])
    matrix = warp_matrix(center, scale, input_size)
    crop = cv2.warpAffine(np.ascontiguousarray(rgb), matrix, input_size, flags=cv2.INTER_LINEAR)
    return crop, center, scale


def normalize_crop(crop: np.ndarray) -> np.ndarray:
    """An RGB `(h, w, 3)` crop → the `(1, 3, h, w)` float32 network input."""
    x = (crop.astype(np.float32) - RTMPOSE_MEAN) / RTMPOSE_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def simcc_maximum(
    simcc_x: np.ndarray, simcc_y: np.ndarray, score_mode: str = "min"
) -> tuple[np.ndarray, np.ndarray]:
    """mmpose's `get_simcc_maximum`: bin locations `(N, K, 2)` and scores `(N, K)`.

    The score is the smaller of the x and y maxima (`min`, what mmpose's codec and its RTMPose
    ONNX examples use) or their mean (`mean`, some later forks). A keypoint whose score is not
    positive gets location −1, as in mmpose.
    """
    if simcc_x.ndim != 3 or simcc_y.ndim != 3 or simcc_x.shape[:2] != simcc_y.shape[:2]:
        raise ValueError(
            f"SimCC outputs must be (N, K, Wx) and (N, K, Wy), got {simcc_x.shape}, {simcc_y.shape}"
        )
    if score_mode not in SCORE_MODES:
        raise ValueError(f"score_mode must be one of {SCORE_MODES}, got {score_mode!r}")
    n, k = simcc_x.shape[:2]
    sx = simcc_x.reshape(n * k, -1)
    sy = simcc_y.reshape(n * k, -1)
    locs = np.stack([np.argmax(sx, axis=1), np.argmax(sy, axis=1)], axis=-1).astype(np.float32)
    max_x, max_y = np.amax(sx, axis=1), np.amax(sy, axis=1)
    vals = np.minimum(max_x, max_y) if score_mode == "min" else 0.5 * (max_x + max_y)
    locs[vals <= 0.0] = -1
    return locs.reshape(n, k, 2), vals.reshape(n, k).astype(np.float32)


def decode_simcc(
    simcc_x: np.ndarray,
    simcc_y: np.ndarray,
    split_ratio: float = SIMCC_SPLIT_RATIO,
    score_mode: str = "min",
) -> tuple[np.ndarray, np.ndarray]:
    """SimCC logits → keypoints `(N, K, 2)` in model-input pixels and scores `(N, K)`.

    SimCC classifies each coordinate into `split_ratio` bins per input pixel, so the bin
    index divided by the ratio is the pixel coordinate.
    """
    locs, vals = simcc_maximum(simcc_x, simcc_y, score_mode)
    return locs / np.float32(split_ratio), vals


def crop_to_image(
    keypoints: np.ndarray, center: np.ndarray, scale: np.ndarray, input_size: tuple[int, int]
) -> np.ndarray:
    """Model-input pixels → image pixels: the inverse of `warp_matrix` (mmpose's rescale)."""
    size = np.asarray(input_size, dtype=np.float64)
    return keypoints.astype(np.float64) / size * scale + center - scale / 2


def rtmpose_to_pose(
    keypoints: np.ndarray, scores: np.ndarray, min_keypoint_score: float = 0.0
) -> Pose:
    """RTMPose keypoints `(K, 2)` in image pixels and scores `(K,)` → a canonical Pose.

    Every supported layout (17, 26, 133 keypoints) begins with COCO-17 in COCO order; the rest
    become named extras (feet, hands; the wholebody face is dropped). Scores are clipped to
    [0, 1] (SimCC maxima are logits, not probabilities, and can leave that range); a score at
    or below `min_keypoint_score` becomes 0, "not seen".
    """
    k = keypoints.shape[0]
    if k not in LAYOUT_EXTRAS or keypoints.shape != (k, 2) or scores.shape != (k,):
        raise ValueError(
            f"expected (K, 2) keypoints and (K,) scores with K in {sorted(LAYOUT_EXTRAS)}, "
            f"got {keypoints.shape} and {scores.shape}"
        )
    score = np.clip(scores.astype(np.float64), 0.0, 1.0)
    score = np.where(score > min_keypoint_score, score, 0.0)
    xy = keypoints.astype(np.float64)
    coco = np.concatenate([xy[:NUM_JOINTS], score[:NUM_JOINTS, None]], axis=1)
    extras = tuple(
        (name, float(xy[i, 0]), float(xy[i, 1]), float(score[i]))
        for i, name in LAYOUT_EXTRAS[k].items()
    )
    return Pose.from_array(coco, extras=extras)  # score: the mean of the seen joints


SimccModel = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def estimate_poses(
    rgb: np.ndarray,
    boxes: Sequence[Sequence[float]],
    run_model: SimccModel,
    input_size: tuple[int, int],
    *,
    padding: float = BBOX_PADDING,
    split_ratio: float = SIMCC_SPLIT_RATIO,
    score_mode: str = "min",
    min_keypoint_score: float = 0.0,
) -> list[Pose]:
    """One Pose per person box: crop, normalise, run, decode, map back (steps 2–5 above).

    `run_model` takes the `(1, 3, h, w)` input and returns the `(1, K, w·r)` and `(1, K, h·r)`
    SimCC logits; the backend passes its ONNX session, tests a stand-in.
    """
    poses = []
    for box in boxes:
        crop, center, scale = crop_person(rgb, box, input_size, padding)
        simcc_x, simcc_y = run_model(normalize_crop(crop))
        keypoints, scores = decode_simcc(
            np.asarray(simcc_x), np.asarray(simcc_y), split_ratio, score_mode
        )
        in_image = crop_to_image(keypoints[0], center, scale, input_size)
        poses.append(rtmpose_to_pose(in_image, scores[0], min_keypoint_score))
    return poses


def detector_input(rgb: np.ndarray, size: int, kind: str) -> tuple[np.ndarray, float]:
    """Letterbox an RGB image for a YOLOX/RTMDet person detector: `(1, 3, size, size)`, ratio.

    Resized to fit `size` keeping its aspect, placed top-left on a grey (114) square, turned
    to BGR and normalised by the detector's own statistics, as mmdet prepares it.
    """
    import cv2

    mean, std = DETECTOR_PRESETS[kind]
    h, w = rgb.shape[:2]
    ratio = min(size / h, size / w)
    new_w, new_h = max(1, int(w * ratio)), max(1, int(h * ratio))
    resized = cv2.resize(np.ascontiguousarray(rgb), (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    padded = np.full((size, size, 3), LETTERBOX_FILL, dtype=np.uint8)
    padded[:new_h, :new_w] = resized
    bgr = padded[..., ::-1].astype(np.float32)
    x = (bgr - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), ratio


def person_boxes(
    dets: np.ndarray,
    labels: np.ndarray | None,
    ratio: float,
    score_threshold: float,
    width: int,
    height: int,
    person_label: int = 0,
) -> list[tuple[float, float, float, float]]:
    """Person boxes (x0, y0, x1, y1) in image pixels from an end-to-end detector's output.

    `dets` is mmdeploy's `(1, N, 5)` [x0, y0, x1, y1, score] in letterboxed pixels (NMS
    already applied); `labels` its `(1, N)` classes, absent for single-class person
    detectors. Best first; boxes clipped to the image, empty ones dropped.
    """
    d = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
    keep = d[:, 4] > score_threshold
    if labels is not None:
        keep &= np.asarray(labels).reshape(-1) == person_label
    d = d[keep]
    d = d[np.argsort(-d[:, 4], kind="stable")]
    boxes = d[:, :4] / ratio
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    return [
        (float(x0), float(y0), float(x1), float(y1))
        for x0, y0, x1, y1 in boxes
        if x1 - x0 > 1 and y1 - y0 > 1
    ]
