"""Query options through the API: mirror, body-part focus, visible-joint floor, grouping."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pipelines.errors import QueryError
from pipelines.query import JOINT_GROUPS, focus_joints, focus_pose, mirror_pose
from pipelines.records import COCO17_INDEX, COCO17_NAMES, Pose
from serving.app import create_app
from tests.conftest import make_settings
from tests.test_api import served_rows

LEFT_RIGHT = [
    (i, COCO17_INDEX[n.replace("left_", "right_")])
    for i, n in enumerate(COCO17_NAMES)
    if n.startswith("left_")
]


def _pose(seed: int = 0) -> Pose:
    rng = np.random.default_rng(seed)
    arr = np.column_stack([rng.uniform(0, 500, 17), rng.uniform(0, 500, 17), np.ones(17)])
    return Pose.from_array(arr)


def test_mirror_swaps_sides_and_flips_x() -> None:
    pose = _pose()
    mirrored = mirror_pose(pose).array()
    original = pose.array()
    for left, right in LEFT_RIGHT:
        assert mirrored[left, 0] == pytest.approx(-original[right, 0])
        assert mirrored[right, 1] == pytest.approx(original[left, 1])
    assert mirrored[COCO17_INDEX["nose"], 0] == pytest.approx(-original[COCO17_INDEX["nose"], 0])
    # Mirroring twice gives the pose back.
    np.testing.assert_allclose(mirror_pose(mirror_pose(pose)).array(), original, atol=1e-4)


def test_focus_keeps_only_the_named_parts() -> None:
    arms = focus_joints(["arms"])
    assert {COCO17_NAMES[i] for i in arms} == set(JOINT_GROUPS["arms"])
    focused = focus_pose(_pose(), arms).array()
    assert {COCO17_NAMES[i] for i in np.flatnonzero(focused[:, 2] > 0)} == set(JOINT_GROUPS["arms"])
    assert focus_joints(["nose", "legs"]) == {COCO17_INDEX["nose"]} | focus_joints(["legs"])
    with pytest.raises(QueryError, match=r"unknown joint or body part 'tail'.*arms"):
        focus_joints(["tail"])


@pytest.fixture(scope="module")
def client(indexed_home: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(indexed_home))) as c:
        yield c


@pytest.fixture(scope="module")
def people(indexed_home: Path) -> list[dict[str, Any]]:
    """Served people with every joint placed (so a mirrored copy is a fair query)."""
    rows = [r for r in served_rows(indexed_home) if r["pose_vector"] is not None]
    return [r for r in rows if min(r["keypoints"][2::3]) > 0]


def _keypoints(row: dict[str, Any]) -> list[list[float]]:
    flat = row["keypoints"]
    return [flat[i : i + 3] for i in range(0, 51, 3)]


def _mirrored(keypoints: list[list[float]], width: float) -> list[list[float]]:
    """What a horizontally flipped photo's detector would report: x flipped, sides swapped."""
    out = [list(k) for k in keypoints]
    for left, right in LEFT_RIGHT:
        out[left], out[right] = out[right], out[left]
    return [[width - x, y, s] for x, y, s in out]


def test_mirror_finds_the_flipped_pose_and_says_so(
    client: TestClient, people: list[dict[str, Any]]
) -> None:
    assert len(people) >= 5
    found_plain = found_mirror = 0
    for row in people:
        query = _mirrored(_keypoints(row), row["width"])
        plain = client.post("/search", json={"keypoints": query, "k": 1}).json()["results"]
        mirror = client.post("/search", json={"keypoints": query, "k": 1, "mirror": True}).json()
        best = mirror["results"][0]
        if best["id"] == row["id"]:
            found_mirror += 1
            assert best["mirrored"] is True
            assert best["pose_score"] == pytest.approx(1.0, abs=1e-3)
        found_plain += plain[0]["id"] == row["id"]
    assert found_mirror == len(people), f"mirror: {found_mirror}/{len(people)} found at rank 1"
    assert found_plain < len(people), "without mirror the flipped pose should not always match"


def test_unflipped_queries_are_not_marked_mirrored(
    client: TestClient, people: list[dict[str, Any]]
) -> None:
    row = people[0]
    body = {"keypoints": _keypoints(row), "k": 1, "mirror": True}
    best = client.post("/search", json=body).json()["results"][0]
    assert best["id"] == row["id"] and best["mirrored"] is False


def test_body_part_focus_ignores_the_other_joints(
    client: TestClient, people: list[dict[str, Any]]
) -> None:
    target = people[0]
    other = people[-1]
    query = _keypoints(target)
    # Legs of another person: with the focus on the arms and torso they must not matter.
    for name in JOINT_GROUPS["legs"]:
        if name.endswith(("knee", "ankle")):
            query[COCO17_INDEX[name]] = _keypoints(other)[COCO17_INDEX[name]]
    body = {"keypoints": query, "k": 1, "joints": ["arms", "torso", "head"]}
    best = client.post("/search", json=body).json()["results"][0]
    assert best["id"] == target["id"]
    assert best["pose_score"] == pytest.approx(1.0, abs=1e-3)


def test_unknown_body_part_is_a_422(client: TestClient, people: list[dict[str, Any]]) -> None:
    body = {"keypoints": _keypoints(people[0]), "joints": ["wings"]}
    response = client.post("/search", json=body)
    assert response.status_code == 422
    assert "wings" in response.json()["detail"] and "arms" in response.json()["detail"]


def test_min_visible_joints_filters_people(
    client: TestClient, people: list[dict[str, Any]]
) -> None:
    body = {"keypoints": _keypoints(people[0]), "k": 100, "min_visible_joints": 15}
    results = client.post("/search", json=body).json()["results"]
    assert results
    for r in results:
        assert sum(1 for _, _, s in r["keypoints"] if s > 0.3) >= 15
    everyone = client.post("/search", json={**body, "min_visible_joints": None}).json()["results"]
    assert len(everyone) > len(results)


def test_results_group_by_image_unless_asked_per_person(
    client: TestClient, indexed_home: Path
) -> None:
    rows = [r for r in served_rows(indexed_home) if r["pose_vector"] is not None]
    by_image: dict[str, int] = {}
    for r in rows:
        by_image[r["image_id"]] = by_image.get(r["image_id"], 0) + 1
    query = _keypoints(rows[0])
    grouped = client.post("/search", json={"keypoints": query, "k": 100}).json()["results"]
    assert len({r["image_id"] for r in grouped}) == len(grouped) == len(by_image)
    per_person = client.post(
        "/search", json={"keypoints": query, "k": 100, "group_by_image": False}
    ).json()["results"]
    assert len(per_person) == len(rows)


def test_the_second_person_of_an_image_finds_that_image(
    client: TestClient, indexed_home: Path
) -> None:
    rows = [r for r in served_rows(indexed_home) if r["pose_vector"] is not None]
    seconds = [r for r in rows if r["person_index"] == 1]
    assert seconds, "the evalset's group photos should give rows for a second person"
    for row in seconds:
        body = {"keypoints": _keypoints(row), "k": 3, "group_by_image": False}
        best = client.post("/search", json=body).json()["results"][0]
        assert best["id"] == row["id"], f"{row['source_uri']}: second person not found first"
        grouped = client.post("/search", json={**body, "group_by_image": True}).json()
        assert grouped["results"][0]["image_id"] == row["image_id"]
