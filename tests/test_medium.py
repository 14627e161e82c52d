"""Each image's medium (photo or drawing) is stored at ingest and search can filter by it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from benchmarks.dim_eval import underexposed
from pipelines.pose.human_evidence import looks_drawn
from pipelines.pose.medium import medium_of
from serving.app import create_app
from storage.store import Store
from tests.conftest import make_settings
from tests.fakes import FIXED_POSE_MODEL
from tests.test_human_evidence import drawing, photo

KP17 = [[100.0 + 5 * i, 40.0 + 15 * i, 1.0] for i in range(17)]
ALL = {"sketch.png": "drawing", "photo-a.png": "photo", "photo-b.png": "photo"}


def test_the_medium_of_a_drawing_and_of_a_photo() -> None:
    assert medium_of(drawing()) == "drawing"
    assert medium_of(photo()) == "photo"


def scene(seed: int) -> Image.Image:
    """Coloured shapes, softened, with a camera's noise: a photo to the medium decision."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (320, 480), (90, 110, 130))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = (int(v) for v in rng.integers(-40, 320, 2))
        w, h = (int(v) for v in rng.integers(20, 160, 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x, y, x + w, y + h), fill=colour)
    soft = np.asarray(image.filter(ImageFilter.GaussianBlur(2)), dtype=np.float64)
    noisy = soft + rng.normal(0, 12, soft.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_dark_photo_is_a_photo_though_flat(seed: int) -> None:
    # Taken with 2 % of the light: its pixels crowd into a few greys, as a drawing's do.
    dark = underexposed(scene(seed), 0.02, 10000, 3, seed=seed)
    assert medium_of(scene(seed)) == "photo"
    assert looks_drawn(dark)
    assert medium_of(dark) == "photo"


def test_chalk_on_a_board_stays_a_drawing() -> None:
    board = np.asarray(ImageOps.invert(drawing()), dtype=np.float64) * 0.6 + 20
    board += np.random.default_rng(0).normal(0, 6, board.shape)
    chalk = Image.fromarray(np.clip(board, 0, 255).astype(np.uint8))
    assert medium_of(chalk) == "drawing"


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, index_settings_for: Any
) -> Iterator[TestClient]:
    from assets.indexing import index_folder

    root = tmp_path_factory.mktemp("medium")
    folder = root / "pictures"
    folder.mkdir()
    drawing().save(folder / "sketch.png")
    photo(seed=1).save(folder / "photo-a.png")
    photo(seed=2).save(folder / "photo-b.png")
    settings = index_settings_for(root / "home", keypoint_model=FIXED_POSE_MODEL)
    assert index_folder(folder, settings, batch_id="media").success
    stored = {
        Path(r.source_uri).name: r.medium
        for r in Store.at_home(root / "home").images_for_batches(["media"])
    }
    assert stored == {"sketch.png": "drawing", "photo-a.png": "photo", "photo-b.png": "photo"}
    with TestClient(create_app(make_settings(root / "home", keypoint_model=FIXED_POSE_MODEL))) as c:
        yield c


def _names(client: TestClient, **options: Any) -> dict[str, str]:
    response = client.post("/search", json={"keypoints": KP17, "k": 10, **options})
    assert response.status_code == 200, response.text
    return {r["source_uri"]: r["medium"] for r in response.json()["results"]}


def test_search_filters_by_medium(client: TestClient) -> None:
    assert _names(client) == {
        "sketch.png": "drawing",
        "photo-a.png": "photo",
        "photo-b.png": "photo",
    }
    assert _names(client, medium=["drawing"]) == {"sketch.png": "drawing"}
    assert set(_names(client, medium=["photo"])) == {"photo-a.png", "photo-b.png"}
    assert len(_names(client, medium=["photo", "drawing"])) == 3


def test_an_unknown_medium_is_a_clear_4xx(client: TestClient) -> None:
    response = client.post("/search", json={"keypoints": KP17, "medium": ["painting"]})
    assert response.status_code == 422
    assert "medium" in response.json()["detail"]
