"""Optional model backends (rtmpose, sam-3d-body, posec3d) at their seams, without weights.

Their packages and weights are absent here, so these tests check what can be checked without
them, with synthetic inputs and exact expected numbers: the pre- and post-processing each
backend wraps around its network, the keypoint layout mappings, registration, and the error a
user gets when selecting a backend that cannot run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.backends import BackendUnavailableError, file_digest
from pipelines.backends import posec3d as pc3d
from pipelines.backends import rtmpose as rtm
from pipelines.backends import rtmpose_processing as rtp
from pipelines.backends import sam3d_body as s3d
from pipelines.catalog import keypoint_models, pose_models
from pipelines.records import COCO17_INDEX, COCO17_NAMES


def touch(path: Path, content: bytes = b"weights") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return str(path)


def hide_package(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Make `module` unimportable for this test, installed or not."""
    monkeypatch.setitem(sys.modules, module, None)


def problems(message: str) -> list[str]:
    """The listed problems of a BackendUnavailableError message."""
    return [line[4:] for line in message.splitlines() if line.startswith("  - ")]


def unavailable_message(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    # The error is ours, raised at selection, not an ImportError from inside a package.
    assert isinstance(excinfo.value, BackendUnavailableError)
    assert isinstance(excinfo.value, RuntimeError)
    assert not isinstance(excinfo.value, ImportError)
    return str(excinfo.value)


# ---------------------------------------------------------------- common


def test_file_digest_is_a_content_checksum(tmp_path: Path) -> None:
    a = touch(tmp_path / "a.onnx", b"abc")
    b = touch(tmp_path / "copy" / "b.onnx", b"abc")
    c = touch(tmp_path / "c.onnx", b"abd")
    # sha256("abc") begins ba7816bf8f01.
    assert file_digest(a) == file_digest(b) == "ba7816bf8f01"
    assert file_digest(c) != file_digest(a)


# ---------------------------------------------------------------- rtmpose: pure steps


def test_bbox_center_scale_enlarges_the_box_by_a_quarter() -> None:
    center, scale = rtp.bbox_center_scale((10, 20, 110, 220))
    np.testing.assert_array_equal(center, [60.0, 120.0])
    np.testing.assert_array_equal(scale, [125.0, 250.0])


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        ((125.0, 250.0), (187.5, 250.0)),
        ((400.0, 100.0), (400.0, 400.0 / 0.75)),
        ((150, 200), (150, 200)),
    ],
)
def test_fix_aspect_ratio_grows_the_short_side_to_the_model_aspect(
    scale: tuple[float, float], expected: tuple[float, float]
) -> None:
    np.testing.assert_allclose(rtp.fix_aspect_ratio(np.array(scale), 192 / 256), expected)


def mmpose_warp_matrix(center: np.ndarray, scale: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """mmpose's three-point construction of `get_warp_matrix` (rot=0, no shift), as reference."""
    import cv2

    def third(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = a - b
        return b + np.array([-d[1], d[0]])

    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = center
    src[1] = center + np.array([0.0, scale[0] * -0.5])
    src[2] = third(src[0], src[1])
    dst[0] = [size[0] * 0.5, size[1] * 0.5]
    dst[1] = dst[0] + np.array([0.0, size[0] * -0.5])
    dst[2] = third(dst[0], dst[1])
    return np.asarray(cv2.getAffineTransform(src, dst))


def test_warp_matrix_equals_mmpose_construction() -> None:
    center, scale = np.array([60.0, 120.0]), np.array([187.5, 250.0])
    m = rtp.warp_matrix(center, scale, (192, 256))
    # 192 / 187.5 = 1.024; the centre goes to (96, 128).
    np.testing.assert_allclose(m, [[1.024, 0, 96 - 61.44], [0, 1.024, 128 - 122.88]], atol=1e-9)
    np.testing.assert_allclose(m, mmpose_warp_matrix(center, scale, (192, 256)), atol=1e-4)


def test_crop_person_moves_a_pixel_where_the_affine_says_and_keeps_rgb() -> None:
    rgb = np.zeros((300, 400, 3), np.uint8)
    rgb[160, 210] = (255, 0, 0)  # red at x=210, y=160
    # A 192×256 box centred at (200, 150), no padding: scale 1, shift (−104, −22).
    crop, center, scale = rtp.crop_person(rgb, (104, 22, 296, 278), (192, 256), padding=1.0)
    assert crop.shape == (256, 192, 3)
    np.testing.assert_array_equal(center, [200, 150])
    np.testing.assert_array_equal(scale, [192, 256])
    assert tuple(crop[138, 106]) == (255, 0, 0)
    assert int(crop.sum()) == 255


def test_normalize_crop_uses_imagenet_statistics_on_rgb_nchw() -> None:
    crop = np.zeros((2, 3, 3), np.uint8)
    crop[...] = (255, 0, 0)
    crop[1, 2] = (124, 116, 104)  # close to the mean
    x = rtp.normalize_crop(crop)
    assert x.shape == (1, 3, 2, 3) and x.dtype == np.float32
    np.testing.assert_allclose(
        x[0, :, 0, 0], [(255 - 123.675) / 58.395, -116.28 / 57.12, -103.53 / 57.375], rtol=1e-6
    )
    np.testing.assert_allclose(
        x[0, :, 1, 2],
        [(124 - 123.675) / 58.395, (116 - 116.28) / 57.12, (104 - 103.53) / 57.375],
        rtol=1e-5,
    )


def simcc(
    k: int, wx: int, wy: int, peaks: list[tuple[int, float, int, float]]
) -> tuple[np.ndarray, np.ndarray]:
    """SimCC logits with, for joint j, a peak of value vx at x bin bx and vy at y bin by."""
    sx = np.full((1, k, wx), -1.0, np.float32)
    sy = np.full((1, k, wy), -1.0, np.float32)
    for j, (bx, vx, by, vy) in enumerate(peaks):
        sx[0, j, bx] = vx
        sy[0, j, by] = vy
    return sx, sy


def test_decode_simcc_divides_bins_by_the_split_ratio_and_scores_by_min_or_mean() -> None:
    sx, sy = simcc(3, 384, 512, [(101, 0.9, 61, 0.6), (10, -0.2, 20, -0.5), (383, 0.4, 0, 0.8)])
    kps, scores = rtp.decode_simcc(sx, sy, 2.0, "min")
    np.testing.assert_allclose(kps[0, 0], [50.5, 30.5])
    np.testing.assert_allclose(kps[0, 2], [191.5, 0.0])
    np.testing.assert_allclose(scores[0], [0.6, -0.5, 0.4], rtol=1e-6)
    # A keypoint with no positive response is placed at bin −1, as mmpose does.
    np.testing.assert_allclose(kps[0, 1], [-0.5, -0.5])
    _, mean_scores = rtp.decode_simcc(sx, sy, 2.0, "mean")
    np.testing.assert_allclose(mean_scores[0], [0.75, -0.35, 0.6], rtol=1e-6)
    with pytest.raises(ValueError, match="score_mode"):
        rtp.decode_simcc(sx, sy, 2.0, "max")


def test_crop_to_image_inverts_the_warp() -> None:
    center, scale, size = np.array([60.0, 120.0]), np.array([187.5, 250.0]), (192, 256)
    np.testing.assert_allclose(
        rtp.crop_to_image(np.array([[96.0, 128.0]]), center, scale, size), [[60, 120]]
    )
    np.testing.assert_allclose(
        rtp.crop_to_image(np.array([[0.0, 0.0]]), center, scale, size), [[-33.75, -5.0]]
    )
    points = np.array([[0.0, 0.0], [37.5, 211.0], [400.0, -20.0]])
    m = rtp.warp_matrix(center, scale, size)
    in_crop = points @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(rtp.crop_to_image(in_crop, center, scale, size), points, atol=1e-9)


def indexed_keypoints(k: int) -> np.ndarray:
    """Keypoint i at (i, 1000 + i): a mapped point shows which source index it came from."""
    return np.stack([np.arange(k, dtype=np.float64), 1000 + np.arange(k, dtype=np.float64)], axis=1)


def extras_x(pose_extras: tuple[tuple[str, float, float, float], ...]) -> dict[str, float]:
    return {name: x for name, x, _, _ in pose_extras}


def test_rtmpose_body17_is_coco_order_already() -> None:
    pose = rtp.rtmpose_to_pose(indexed_keypoints(17), np.full(17, 0.8))
    np.testing.assert_array_equal(pose.array()[:, 0], np.arange(17))
    np.testing.assert_array_equal(pose.array()[:, 1], 1000 + np.arange(17))
    assert pose.extras == ()
    assert pose.score == pytest.approx(0.8)


def test_rtmpose_wholebody133_keeps_body_feet_and_hands_and_drops_the_face() -> None:
    pose = rtp.rtmpose_to_pose(indexed_keypoints(133), np.full(133, 0.9))
    np.testing.assert_array_equal(pose.array()[:, 0], np.arange(17))
    extras = extras_x(pose.extras)
    assert len(extras) == 6 + 2 * 21
    expected = {
        "left_big_toe": 17,
        "left_small_toe": 18,
        "left_heel": 19,
        "right_big_toe": 20,
        "right_small_toe": 21,
        "right_heel": 22,
        "left_hand_root": 91,
        "left_thumb1": 92,
        "left_thumb4": 95,
        "left_forefinger1": 96,
        "left_pinky_finger4": 111,
        "right_hand_root": 112,
        "right_middle_finger2": 122,
        "right_pinky_finger4": 132,
    }
    assert {name: extras[name] for name in expected} == expected
    assert not any(23 <= x <= 90 for x in extras.values())  # no face landmark


def test_rtmpose_halpe26_extras() -> None:
    extras = extras_x(rtp.rtmpose_to_pose(indexed_keypoints(26), np.ones(26)).extras)
    assert extras == {
        "head": 17,
        "neck": 18,
        "hip": 19,
        "left_big_toe": 20,
        "right_big_toe": 21,
        "left_small_toe": 22,
        "right_small_toe": 23,
        "left_heel": 24,
        "right_heel": 25,
    }


def test_rtmpose_scores_are_clipped_and_thresholded() -> None:
    scores = np.full(17, 0.5)
    scores[0], scores[1], scores[2] = 1.3, -0.2, 0.25
    pose = rtp.rtmpose_to_pose(indexed_keypoints(17), scores, min_keypoint_score=0.3)
    np.testing.assert_allclose(pose.array()[:3, 2], [1.0, 0.0, 0.0])
    assert pose.score == pytest.approx((1.0 + 14 * 0.5) / 15)
    with pytest.raises(ValueError, match="K in"):
        rtp.rtmpose_to_pose(indexed_keypoints(21), np.ones(21))


def test_estimate_poses_maps_model_output_back_to_image_pixels() -> None:
    rgb = np.zeros((300, 400, 3), np.uint8)
    rgb[150, 200] = (255, 255, 255)  # the box centre: lands on the crop centre (96, 128)
    box = (104, 22, 296, 278)  # ×1.25 → 240×320, already 3:4; input scale 192/240 = 0.8
    targets = [(20 + 5 * j, 30 + 7 * j) for j in range(17)]  # model-input pixels
    seen_inputs: list[np.ndarray] = []

    def fake_model(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seen_inputs.append(x)
        return simcc(17, 384, 512, [(2 * tx, 0.9, 2 * ty, 0.7) for tx, ty in targets])

    (pose,) = rtp.estimate_poses(rgb, [box], fake_model, (192, 256))
    (x,) = seen_inputs
    assert x.shape == (1, 3, 256, 192)
    white = [(255 - 123.675) / 58.395, (255 - 116.28) / 57.12, (255 - 103.53) / 57.375]
    np.testing.assert_allclose(x[0, :, 128, 96], white, rtol=1e-5)
    expected = [((tx - 96) * 1.25 + 200, (ty - 128) * 1.25 + 150, 0.7) for tx, ty in targets]
    np.testing.assert_allclose(pose.array(), expected, atol=1e-4)


def test_detector_input_letterboxes_into_bgr() -> None:
    rgb = np.zeros((100, 200, 3), np.uint8)
    rgb[...] = (255, 0, 0)
    x, ratio = rtp.detector_input(rgb, 64, "yolox")
    assert ratio == pytest.approx(0.32)
    assert x.shape == (1, 3, 64, 64)
    np.testing.assert_array_equal(x[0, :, 10, 10], [0, 0, 255])  # red, in BGR order
    np.testing.assert_array_equal(x[0, :, 40, 10], [114, 114, 114])  # padding below
    x, _ = rtp.detector_input(rgb, 64, "rtmdet")
    np.testing.assert_allclose(
        x[0, :, 40, 10],
        [(114 - 103.53) / 57.375, (114 - 116.28) / 57.12, (114 - 123.675) / 58.395],
        rtol=1e-5,
    )


def test_person_boxes_filters_by_score_and_label_and_undoes_the_letterbox() -> None:
    dets = np.array([[[10, 10, 50, 90, 0.9], [0, 0, 20, 20, 0.2], [5, 5, 30, 30, 0.8]]])
    labels = np.array([[0, 0, 1]])
    assert rtp.person_boxes(dets, labels, 0.5, 0.3, width=90, height=400) == [(20, 20, 90, 180)]
    assert rtp.person_boxes(dets, None, 0.5, 0.3, width=90, height=400) == [
        (20, 20, 90, 180),
        (10, 10, 60, 60),
    ]


# ---------------------------------------------------------------- rtmpose: selection


def test_rtmpose_is_registered() -> None:
    assert "rtmpose" in keypoint_models.names()
    assert keypoint_models.backend_class("rtmpose") is rtm.RTMPoseDetector


def test_rtmpose_without_model_path_says_what_to_configure() -> None:
    with pytest.raises(BackendUnavailableError) as excinfo:
        keypoint_models.load("rtmpose")
    message = unavailable_message(excinfo)
    assert "model_path is not set" in message
    assert "POSEFRAMER_KEYPOINT_MODEL=rtmpose" in message
    assert "poseframer[rtmpose]" in message


def test_rtmpose_with_a_missing_file_names_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.onnx")
    with pytest.raises(BackendUnavailableError) as excinfo:
        keypoint_models.load("rtmpose", model_path=missing, detector_path=missing)
    message = unavailable_message(excinfo)
    assert f"model_path={missing!r} is not a file" in message
    assert f"detector_path={missing!r} is not a file" in message


def test_rtmpose_without_onnxruntime_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_package(monkeypatch, "onnxruntime")
    model = touch(tmp_path / "rtmpose.onnx")
    with pytest.raises(BackendUnavailableError) as excinfo:
        keypoint_models.load("rtmpose", model_path=model)
    message = unavailable_message(excinfo)
    (problem,) = problems(message)  # the model file itself is fine
    assert problem.startswith("onnxruntime is not installed: pip install 'poseframer[rtmpose]'")


def test_rtmpose_rejects_bad_option_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="score_mode"):
        rtm.RTMPoseDetector(model_path=touch(tmp_path / "m.onnx"), score_mode="max")
    with pytest.raises(ValueError, match="detector_kind"):
        rtm.RTMPoseDetector(model_path=touch(tmp_path / "m.onnx"), detector_kind="ssd")


def toy_simcc_onnx(path: Path) -> str:
    """A tiny ONNX "pose model": SimCC logits peaking at the brightest input column and row."""
    import torch

    class BrightestPoint(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            col = x.amax(dim=(1, 2))  # (1, W): brightest value in each column
            row = x.amax(dim=(1, 3))  # (1, H)
            sx = torch.stack([col, col], dim=2).flatten(1)[:, None, :].repeat(1, 17, 1)
            sy = torch.stack([row, row], dim=2).flatten(1)[:, None, :].repeat(1, 17, 1)
            return sx, sy

    torch.onnx.export(
        BrightestPoint(),
        (torch.zeros(1, 3, 256, 192),),
        str(path),
        dynamo=False,
        input_names=["input"],
        output_names=["simcc_x", "simcc_y"],
    )
    return str(path)


# torch's TorchScript ONNX exporter, the one that needs no onnxscript, warns it is legacy.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_rtmpose_runs_an_onnx_model_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the rtmpose extra (onnxruntime) is not installed")
    pytest.importorskip("onnx", reason="onnx is needed to export the toy model")
    model = toy_simcc_onnx(tmp_path / "toy.onnx")
    image = Image.new("RGB", (400, 300))
    image.paste((255, 255, 255), (100, 80, 105, 85))  # white on x 100–104, y 80–84

    def inside_square(pose_xy: np.ndarray, slack: float) -> bool:
        # The toy model points at the first brightest input column/row: somewhere on the
        # square, within one input pixel (`slack` image pixels) of resampling.
        xs, ys = pose_xy[:, 0], pose_xy[:, 1]
        return bool(
            np.all((xs >= 100 - slack) & (xs <= 105 + slack))
            and np.all((ys >= 80 - slack) & (ys <= 85 + slack))
        )

    detector = keypoint_models.load("rtmpose", model_path=model, min_pose_score=0.0)
    assert detector.model_id.startswith(f"rtmpose-{file_digest(model)}(detector=none,")
    (pose,) = detector.detect(image)
    # The whole image is the box: 500×666.7 px onto 192×256, one input pixel is 2.6 px.
    assert inside_square(pose.array(), 2.7)
    assert not inside_square(pose.array() + np.array([20.0, 0.0, 0.0]), 2.7)
    np.testing.assert_allclose(pose.array()[:, 2], 1.0)  # SimCC maxima above 1 are clipped
    assert isinstance(detector, rtm.RTMPoseDetector)
    # A box from another stage: 125×166.7 px onto 192×256, one input pixel is 0.65 px.
    (in_box,) = detector.detect(image, boxes=[(60, 40, 140, 120)])
    assert inside_square(in_box.array(), 0.7)


# ---------------------------------------------------------------- sam-3d-body


def test_mhr70_names_are_seventy_distinct_points() -> None:
    assert len(s3d.MHR70_NAMES) == 70 == len(set(s3d.MHR70_NAMES))


def test_mhr70_to_pose_takes_each_coco_joint_from_its_mhr_index() -> None:
    pose = s3d.mhr70_to_pose(indexed_keypoints(70))
    # COCO-17 order: nose, eyes, ears, shoulders, elbows (0–8 in both), then the wrists,
    # which close MHR70's hand blocks (left 62, right 41), then hips, knees, ankles (9–14).
    expected = [0, 1, 2, 3, 4, 5, 6, 7, 8, 62, 41, 9, 10, 11, 12, 13, 14]
    np.testing.assert_array_equal(pose.array()[:, 0], expected)
    np.testing.assert_array_equal(pose.array()[:, 1], 1000 + np.array(expected))
    np.testing.assert_array_equal(pose.array()[:, 2], 1.0)
    assert pose.array()[COCO17_INDEX["left_wrist"], 0] == 62


def test_mhr70_extras_are_the_named_feet_hands_and_landmarks() -> None:
    extras = extras_x(s3d.mhr70_to_pose(indexed_keypoints(70)).extras)
    assert len(extras) == 70 - 17
    assert not set(extras) & set(COCO17_NAMES)
    expected = {
        "left_big_toe": 15,
        "left_small_toe": 16,
        "left_heel": 17,
        "right_big_toe": 18,
        "right_heel": 20,
        "right_thumb_tip": 21,
        "right_thumb_third_joint": 24,
        "right_index_tip": 25,
        "right_pinky_third_joint": 40,
        "left_thumb_tip": 42,
        "left_middle_first_joint": 51,
        "left_pinky_third_joint": 61,
        "left_olecranon": 63,
        "right_cubital_fossa": 66,
        "left_acromion": 67,
        "neck": 69,
    }
    assert {name: extras[name] for name in expected} == expected


def test_mhr70_points_outside_the_frame_are_unseen_and_scores_are_clipped() -> None:
    kp = np.full((70, 2), 50.0)
    kp[13] = (500.0, 50.0)  # left ankle far right of a 100×100 image
    kp[17] = (50.0, -40.0)  # left heel above it
    pose = s3d.mhr70_to_pose(kp, None, 100, 100)
    assert pose.array()[COCO17_INDEX["left_ankle"], 2] == 0.0
    assert pose.array()[:, 2].sum() == 16
    assert dict((n, s) for n, _, _, s in pose.extras)["left_heel"] == 0.0
    scores = np.full(70, 0.5)
    scores[0] = 1.7
    given = s3d.mhr70_to_pose(kp, scores)
    assert given.array()[0, 2] == 1.0 and given.array()[1, 2] == 0.5
    with pytest.raises(ValueError, match="70"):
        s3d.mhr70_to_pose(np.zeros((17, 2)))


def test_sam3d_body_is_registered() -> None:
    assert "sam-3d-body" in keypoint_models.names()
    assert keypoint_models.backend_class("sam-3d-body") is s3d.SAM3DBodyDetector


def test_sam3d_body_without_checkpoint_says_what_to_configure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hide_package(monkeypatch, "sam_3d_body")
    with pytest.raises(BackendUnavailableError) as excinfo:
        keypoint_models.load("sam-3d-body")
    message = unavailable_message(excinfo)
    assert "checkpoint_path is not set" in message
    assert "sam_3d_body package is not installed" in message
    assert "facebookresearch/sam-3d-body" in message
    assert "POSEFRAMER_KEYPOINT_MODEL=sam-3d-body" in message


def test_sam3d_body_needs_the_mhr_asset_beside_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_package(monkeypatch, "sam_3d_body")
    ckpt = touch(tmp_path / "sam-3d-body" / "model.ckpt")
    with pytest.raises(BackendUnavailableError) as excinfo:
        keypoint_models.load("sam-3d-body", checkpoint_path=ckpt)
    assert "assets/mhr_model.pt" in unavailable_message(excinfo)
    touch(tmp_path / "sam-3d-body" / "assets" / "mhr_model.pt")
    with pytest.raises(BackendUnavailableError) as excinfo:
        keypoint_models.load("sam-3d-body", checkpoint_path=ckpt)
    (problem,) = problems(unavailable_message(excinfo))
    assert problem.startswith("the sam_3d_body package is not installed")


# ---------------------------------------------------------------- posec3d: pure steps


# Seen joints spanning x 0..80, y 0..160: the square box is 200 px (160 × 1.25) centred at
# (40, 80), so grid = (x + 60, y + 20) × 64 / 200 = × 0.32. A pose with joints on whole
# grid pixels where the tests look at exact values.
def grid_pose() -> np.ndarray:
    kps = np.zeros((17, 3))
    kps[:, :2] = (40.0, 80.0)
    kps[:, 2] = 0.9
    kps[COCO17_INDEX["nose"]] = (0.0, 0.0, 0.8)  # grid (19.2, 6.4)
    kps[COCO17_INDEX["left_ankle"]] = (80.0, 160.0, 0.9)  # grid (44.8, 57.6)
    kps[COCO17_INDEX["left_hip"]] = (65.0, 105.0, 0.6)  # grid (40, 40)
    kps[COCO17_INDEX["right_hip"]] = (15.0, 105.0, 0.7)  # grid (24, 40)
    kps[COCO17_INDEX["right_ear"]] = (500.0, 500.0, 0.0)  # unseen: ignored by the box too
    return kps


def test_compact_to_grid_centres_pads_and_squares_the_seen_joints() -> None:
    kps = grid_pose()
    xy = pc3d.compact_to_grid(kps, kps[:, 2] > 0, grid=64)
    assert xy is not None
    np.testing.assert_allclose(xy[COCO17_INDEX["nose"]], [19.2, 6.4], atol=1e-9)
    np.testing.assert_allclose(xy[COCO17_INDEX["left_ankle"]], [44.8, 57.6], atol=1e-9)
    np.testing.assert_allclose(xy[COCO17_INDEX["left_hip"]], [40, 40], atol=1e-9)
    np.testing.assert_allclose(xy[COCO17_INDEX["left_shoulder"]], [32, 32], atol=1e-9)
    assert pc3d.compact_to_grid(kps, np.zeros(17, bool)) is None
    one_point = np.zeros((17, 3))
    assert pc3d.compact_to_grid(one_point, np.ones(17, bool)) is None


def test_joint_heatmaps_peak_at_the_joints_with_their_scores() -> None:
    frames, ok = pc3d.pose_heatmaps(grid_pose()[None])
    assert frames.shape == (1, 17, 64, 64) and frames.dtype == np.float32 and ok.tolist() == [True]
    left_hip = frames[0, COCO17_INDEX["left_hip"]]
    assert np.unravel_index(left_hip.argmax(), left_hip.shape) == (40, 40)  # (row y, col x)
    assert left_hip[40, 40] == pytest.approx(0.6, abs=1e-6)
    # One pixel off: score · exp(−1 / (2 · 0.6²)).
    assert left_hip[40, 41] == pytest.approx(0.6 * np.exp(-1 / 0.72), abs=1e-6)
    # The window is mmaction2's [int(40 - 1.8), int(40 + 1.8) + 1) = [38, 42): nothing beyond.
    assert left_hip[40, 38] == pytest.approx(0.6 * np.exp(-4 / 0.72), abs=1e-6)
    assert left_hip[40, 37] == 0.0 and left_hip[40, 42] == 0.0
    nose = frames[0, COCO17_INDEX["nose"]]
    assert np.unravel_index(nose.argmax(), nose.shape) == (6, 19)
    assert nose.max() == pytest.approx(0.8 * np.exp(-(0.2**2 + 0.4**2) / 0.72), abs=1e-6)
    assert not frames[0, COCO17_INDEX["right_ear"]].any()  # unseen joint: zero channel


def test_limb_heatmaps_follow_the_segment_with_the_weaker_score() -> None:
    frames, _ = pc3d.pose_heatmaps(grid_pose()[None], with_kp=True, with_limb=True)
    assert frames.shape == (1, 34, 64, 64)
    hips = frames[0, 17 + pc3d.POSEC3D_LIMBS.index((11, 12))]
    # Along the segment from (24, 40) to (40, 40) the value is min(0.6, 0.7).
    np.testing.assert_allclose(hips[40, 24:41], 0.6, atol=1e-6)
    assert hips[41, 32] == pytest.approx(0.6 * np.exp(-1 / 0.72), abs=1e-6)
    # Limbs ending at the unseen right ear (2 → 4) are empty.
    assert not frames[0, 17 + pc3d.POSEC3D_LIMBS.index((2, 4))].any()
    limbs_only, _ = pc3d.pose_heatmaps(grid_pose()[None], with_kp=False, with_limb=True)
    np.testing.assert_array_equal(limbs_only[0], frames[0, 17:])


def test_heatmaps_without_scores_peak_at_one() -> None:
    frames, _ = pc3d.pose_heatmaps(grid_pose()[None], use_score=False)
    assert frames[0, COCO17_INDEX["left_hip"], 40, 40] == pytest.approx(1.0, abs=1e-6)
    assert not frames[0, COCO17_INDEX["right_ear"]].any()


def test_heatmaps_do_not_depend_on_the_pose_size_or_place() -> None:
    base = grid_pose()
    moved = base.copy()
    moved[:, :2] = moved[:, :2] * 3.7 + (250.0, -40.0)
    a, _ = pc3d.pose_heatmaps(base[None])
    b, _ = pc3d.pose_heatmaps(moved[None])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_pose_without_extent_gets_no_heatmap() -> None:
    unseen = np.zeros((17, 3))
    same_point = np.ones((17, 3))
    frames, ok = pc3d.pose_heatmaps(np.stack([unseen, same_point, grid_pose()]))
    assert ok.tolist() == [False, False, True]
    assert not frames[:2].any()


def test_heatmap_volume_tiles_the_frame_in_time_for_numpy_and_torch() -> None:
    import torch

    frames, _ = pc3d.pose_heatmaps(np.stack([grid_pose(), grid_pose()]))
    volume = pc3d.heatmap_volume(frames, 5)
    assert volume.shape == (2, 17, 5, 64, 64)
    for t in range(5):
        np.testing.assert_array_equal(volume[:, :, t], frames)
    tensor = pc3d.heatmap_volume(torch.from_numpy(frames), 5)
    assert tuple(tensor.shape) == (2, 17, 5, 64, 64)
    np.testing.assert_array_equal(tensor.contiguous().numpy(), volume)


def test_pool_features_averages_then_normalises() -> None:
    features = np.zeros((2, 3, 2, 2, 2), np.float32)
    features[0, 0] = 3.0
    features[0, 1, 0] = 8.0  # mean over the 8 cells: 4
    vectors, ok = pc3d.pool_features(features)
    assert vectors.dtype == np.float32 and vectors.shape == (2, 3)
    np.testing.assert_allclose(vectors[0], [0.6, 0.8, 0.0], atol=1e-7)
    np.testing.assert_array_equal(vectors[1], 0.0)
    assert ok.tolist() == [True, False]


# ---------------------------------------------------------------- posec3d: selection, glue


def test_posec3d_is_registered() -> None:
    assert "posec3d" in pose_models.names()
    assert pose_models.backend_class("posec3d") is pc3d.PoseC3DEmbedder


def test_posec3d_without_config_or_checkpoint_says_what_to_configure() -> None:
    with pytest.raises(BackendUnavailableError) as excinfo:
        pose_models.load("posec3d")
    message = unavailable_message(excinfo)
    assert "config_path is not set" in message
    assert "checkpoint_path is not set" in message
    assert "POSEFRAMER_POSE_MODEL=posec3d" in message


def test_posec3d_without_mmaction2_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_package(monkeypatch, "mmaction")
    config, ckpt = touch(tmp_path / "c.py"), touch(tmp_path / "w.pth")
    with pytest.raises(BackendUnavailableError) as excinfo:
        pose_models.load("posec3d", config_path=config, checkpoint_path=ckpt)
    (problem,) = problems(unavailable_message(excinfo))
    assert problem.startswith("mmaction2 is not installed: pip install 'poseframer[posec3d]'")


@pytest.fixture
def identity_posec3d(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pc3d.PoseC3DEmbedder:
    """A posec3d embedder whose "backbone" returns its input: checks the glue, not features."""
    import torch

    monkeypatch.setattr(pc3d, "package_missing", lambda module: False)
    embedder = pc3d.PoseC3DEmbedder(
        config_path=touch(tmp_path / "c.py", b"config"),
        checkpoint_path=touch(tmp_path / "w.pth", b"weights"),
        device="cpu",
        dim=17,
        clip_len=3,
        batch_size=1,
    )
    embedder._backbone = torch.nn.Identity()
    return embedder


def test_posec3d_embed_array_pools_backbone_features_of_valid_poses(
    identity_posec3d: pc3d.PoseC3DEmbedder,
) -> None:
    few = np.zeros((17, 3))
    few[:3] = [(0, 0, 1), (10, 10, 1), (20, 0, 1)]  # 3 seen joints < min_joints=4
    poses = np.stack([grid_pose(), few, grid_pose() * [2, 2, 1]])
    vectors, valid = identity_posec3d.embed_array(poses)
    assert valid.tolist() == [True, False, True]
    assert vectors.shape == (3, 17) and vectors.dtype == np.float32
    frames, _ = pc3d.pose_heatmaps(grid_pose()[None])
    means = frames[0].mean(axis=(1, 2))
    np.testing.assert_allclose(vectors[0], means / np.linalg.norm(means), atol=1e-6)
    np.testing.assert_allclose(vectors[2], vectors[0], atol=1e-5)
    np.testing.assert_array_equal(vectors[1], 0.0)
    assert identity_posec3d.model_id.startswith(
        f"posec3d-{file_digest(identity_posec3d.checkpoint_path)}("
    )


def test_posec3d_dim_must_match_the_backbone(identity_posec3d: pc3d.PoseC3DEmbedder) -> None:
    identity_posec3d.dim = 512
    with pytest.raises(BackendUnavailableError, match="set dim=17"):
        identity_posec3d.embed_array(grid_pose()[None])


def test_posec3d_model_id_names_every_output_changing_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pc3d, "package_missing", lambda module: False)
    paths = {"config_path": touch(tmp_path / "c.py"), "checkpoint_path": touch(tmp_path / "w.pth")}
    base = pc3d.PoseC3DEmbedder(**paths).model_id
    for option, value in [
        ("sigma", 1.0),
        ("grid", 56),
        ("clip_len", 16),
        ("with_limb", True),
        ("use_score", False),
        ("min_joints", 6),
    ]:
        assert pc3d.PoseC3DEmbedder(**paths, **{option: value}).model_id != base, option
