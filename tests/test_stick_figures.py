"""Stick figures read by their structure (pipelines.pose.stick_figures), on drawings rendered from
random poses with the pose they were drawn from (benchmarks.stick_renders), and the shapes
that are no stick figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from benchmarks.stick_renders import pck, render
from pipelines.catalog import keypoint_models
from pipelines.pose.stick_figures import read_stick_figure
from pipelines.records import COCO17_INDEX


def test_open_poses_are_read_with_their_joints_in_place() -> None:
    rng = np.random.default_rng(2026)
    scores = []
    for _ in range(40):
        drawn = render(rng, "open")
        pose = read_stick_figure(drawn.image)
        if pose is not None:
            scores.append(pck(pose.array().astype(np.float64), drawn))
    assert len(scores) >= 24, f"only {len(scores)} of 40 stick figures read"
    assert float(np.mean(scores)) >= 0.9


def test_the_read_pose_is_in_the_drawings_pixels_and_faces_the_viewer() -> None:
    image = Image.new("RGB", (300, 420), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((125, 20, 175, 70), outline="black", width=4)
    draw.line((150, 72, 150, 220), fill="black", width=4)  # trunk
    draw.line(
        (150, 90, 90, 140, 60, 100), fill="black", width=4, joint="curve"
    )  # arm ending on the left
    draw.line((150, 90, 210, 140, 250, 180), fill="black", width=4, joint="curve")
    draw.line(
        (150, 220, 110, 300, 100, 390), fill="black", width=4, joint="curve"
    )  # leg ending on the left
    draw.line((150, 220, 190, 300, 205, 390), fill="black", width=4, joint="curve")
    pose = read_stick_figure(image)
    assert pose is not None
    joints = pose.array()
    # Facing the viewer: the hand and foot on the image's left are the figure's right.
    for name, (x, y) in {
        "right_wrist": (60, 100),
        "left_wrist": (250, 180),
        "right_ankle": (100, 390),
        "left_ankle": (205, 390),
        "nose": (150, 45),
    }.items():
        assert joints[COCO17_INDEX[name], :2] == pytest.approx((x, y), abs=8), name
    hip = (joints[COCO17_INDEX["left_hip"], :2] + joints[COCO17_INDEX["right_hip"], :2]) / 2
    assert hip == pytest.approx((150, 225), abs=12)
    assert joints[COCO17_INDEX["left_eye"], 2] == 0.0  # a drawn head has no face: don't care


def _blank() -> Image.Image:
    return Image.new("RGB", (300, 300), "white")


def _shapes() -> dict[str, Image.Image]:
    filled = _blank()
    ImageDraw.Draw(filled).ellipse((40, 40, 260, 260), fill="black")
    box = _blank()
    ImageDraw.Draw(box).rectangle((60, 60, 240, 240), outline="black", width=4)
    scribble = _blank()
    rng = np.random.default_rng(1)
    ImageDraw.Draw(scribble).line([tuple(p) for p in rng.uniform(20, 280, (12, 2))], "black", 3)
    head_only = _blank()
    ImageDraw.Draw(head_only).ellipse((100, 100, 200, 200), outline="black", width=4)
    return {
        "blank": _blank(),
        "filled disk": filled,
        "box": box,
        "scribble": scribble,
        "head": head_only,
    }


@pytest.mark.parametrize("name", list(_shapes()))
def test_shapes_that_are_no_stick_figure_give_none(name: str) -> None:
    assert read_stick_figure(_shapes()[name]) is None


def test_the_keypoint_reader_falls_back_to_it_for_drawings() -> None:
    rng = np.random.default_rng(5)
    drawn = next(d for d in (render(rng, "open") for _ in range(20)) if read_stick_figure(d.image))
    # Without the drawn-figure model, which reads drawings before the stick reader would.
    with_sticks = keypoint_models.load("mediapipe", hands=False, drawn_model=False)
    without = keypoint_models.load("mediapipe", hands=False, stick_figures=False, drawn_model=False)
    assert "sticks=v1" in with_sticks.model_id and "sticks" not in without.model_id
    assert without.detect(drawn.image) == []  # thin strokes: nothing for BlazePose
    (pose,) = with_sticks.detect(drawn.image)
    assert pck(pose.array().astype(np.float64), drawn) >= 0.8


def test_a_drawn_stick_figure_is_a_query_on_the_seed_endpoint(
    tmp_path: Path, index_settings_for: Any
) -> None:
    import base64
    import io

    from fastapi.testclient import TestClient

    from assets.indexing import index_folder
    from serving.app import create_app
    from tests.conftest import make_settings
    from tests.fakes import FIXED_POSE_MODEL
    from tests.local_http import textured_image

    folder = tmp_path / "photos"
    folder.mkdir()
    for n in range(3):
        (folder / f"{n}.png").write_bytes(textured_image(n, size=(120, 200)))
    settings = index_settings_for(tmp_path / "home", keypoint_model=FIXED_POSE_MODEL)
    assert index_folder(folder, settings).success
    rng = np.random.default_rng(11)
    drawn = next(d for d in (render(rng, "open") for _ in range(20)) if read_stick_figure(d.image))
    sketch = io.BytesIO()
    drawn.image.save(sketch, "PNG")
    # The seed frontend's own request, its drawing in `sketch` (served by the real reader).
    payload = {
        "sketch": "data:image/png;base64," + base64.b64encode(sketch.getvalue()).decode(),
        "text": "similar pose",
        "k": 4,
        "lambda": 0.95,
        "filter_portraits": False,
    }
    with TestClient(create_app(make_settings(tmp_path / "home"))) as client:
        response = client.post("/search_similar_images", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and 1 <= len(body["results"]) <= 4
