"""Real-data tier: search the indexed evalset with its ground-truth poses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.conftest import make_settings

pytestmark = pytest.mark.evalset


@pytest.fixture(scope="module")
def client(indexed_home: Path) -> TestClient:
    settings = make_settings(indexed_home)
    with TestClient(create_app(settings)) as c:
        yield c  # type: ignore[misc]


def _annotations(evalset: Path) -> list[dict]:  # type: ignore[type-arg]
    return json.loads((evalset / "annotations.json").read_text())["images"]  # type: ignore[no-any-return]


def test_ground_truth_pose_finds_its_image_in_top_3(client: TestClient, evalset: Path) -> None:
    singles = [im for im in _annotations(evalset) if len(im["people"]) == 1]
    assert len(singles) >= 10
    hits, misses = 0, []
    for im in singles:
        keypoints = [
            [x, y, 1.0 if v > 0 else 0.0] for x, y, v in im["people"][0]["keypoints_coco17"]
        ]
        response = client.post("/search", json={"keypoints": keypoints, "lambda": 1.0, "k": 10})
        assert response.status_code == 200, response.text
        names = [Path(r["source_uri"]).name for r in response.json()["results"]]
        top3 = list(dict.fromkeys(names))[:3]  # one image may hold several matching people
        if Path(im["file"]).name in top3:
            hits += 1
        else:
            misses.append(Path(im["file"]).name)
    rate = hits / len(singles)
    print(f"GT keypoints → own image in top 3: {hits}/{len(singles)} = {rate:.2f}; missed {misses}")
    # 11 of 15: the misses are the two children's drawings and an illustration (no figure or
    # a wrong one), and a photographed toy figurine whose huge head holds no human face and
    # whose body is seen too unclearly (mean visibility 0.64) for the human-evidence check,
    # which rejects it as it rejects animals (pipelines.pose.human_evidence; it was 12 of 15).
    assert hits >= 11, f"only {hits}/{len(singles)} single-person images in top 3; missed {misses}"


def test_every_image_of_the_folder_has_a_row(client: TestClient, evalset: Path) -> None:
    health = client.get("/health").json()
    files = {
        Path(im["file"]).name for im in _annotations(evalset) if im["file"].startswith("images/")
    }
    assert health["rows"]["images"] == len(files)
    # Rows: at least one per image (people, or one no-person row).
    assert health["rows"]["search"] >= len(files)
