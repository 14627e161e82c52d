"""Search features through the API: paging, more-like-this, relevance floor, people filters."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pipelines.retrieval import ranking
from serving.app import create_app
from tests.conftest import make_settings
from tests.test_api import republish, served_rows

pytestmark = pytest.mark.evalset


@pytest.fixture(scope="module")
def ann_home(indexed_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the index republished with an ANN index (as a large table gets one)."""
    home = tmp_path_factory.mktemp("ann") / "home"
    shutil.copytree(indexed_home, home)
    republish(home, served_rows(home), ann_min_rows=0)
    return home


@pytest.fixture(scope="module", params=["exact", "ann"])
def client(request: pytest.FixtureRequest, indexed_home: Path) -> Iterator[TestClient]:
    """The API over exact scoring, and over an ANN index whose candidate pool is so small
    (4 rows a side) that paging runs past it into the rest of the ranking."""
    if request.param == "exact":
        with TestClient(create_app(make_settings(indexed_home))) as c:
            yield c
        return
    home = request.getfixturevalue("ann_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ranking, "POOL_START", 4)
        with TestClient(create_app(make_settings(home))) as c:
            snapshot = c.app.state.search_service.snapshot()  # type: ignore[attr-defined]
            assert snapshot.ann is not None and snapshot.clip is None
            yield c


@pytest.fixture(scope="module")
def person(indexed_home: Path) -> dict[str, Any]:
    return next(r for r in served_rows(indexed_home) if r["pose_vector"] is not None)


def _keypoints(row: dict[str, Any]) -> list[list[float]]:
    flat = row["keypoints"]
    return [flat[i : i + 3] for i in range(0, 51, 3)]


def _pages(client: TestClient, body: dict[str, Any]) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    for _ in range(100):
        response = client.post("/search", json={**body, "cursor": cursor} if cursor else body)
        assert response.status_code == 200, response.text
        data = response.json()
        pages.append(data["results"])
        cursor = data["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("group_by_image", [True, False])
def test_paging_returns_every_row_once(
    client: TestClient, person: dict[str, Any], indexed_home: Path, group_by_image: bool
) -> None:
    body = {"keypoints": _keypoints(person), "k": 4, "group_by_image": group_by_image}
    pages = _pages(client, body)
    paged = [r["id"] for page in pages for r in page]
    assert len(paged) == len(set(paged)), "a row came back twice"
    assert all(len(page) == 4 for page in pages[:-1])
    whole = client.post("/search", json={**body, "k": 100}).json()["results"]
    assert paged == [r["id"] for r in whole], "pages must concatenate to the full ranking"
    people = [r for r in served_rows(indexed_home) if r["pose_vector"] is not None]
    expected = len({r["image_id"] for r in people}) if group_by_image else len(people)
    assert len(paged) == expected


def test_paging_stays_on_its_version_when_a_new_one_is_published(
    indexed_home: Path, tmp_path: Path, person: dict[str, Any]
) -> None:
    home = tmp_path / "home"
    shutil.copytree(indexed_home, home)
    with TestClient(create_app(make_settings(home))) as c:
        body = {"keypoints": _keypoints(person), "k": 3, "group_by_image": False}
        first = c.post("/search", json=body).json()
        rows = served_rows(home)
        republish(home, [r for r in rows if r["id"] not in {x["id"] for x in first["results"]}])
        second = c.post("/search", json={**body, "cursor": first["next_cursor"]}).json()
        assert second["table_version"] == first["table_version"]
        assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}
        fresh = c.post("/search", json=body).json()
        assert fresh["table_version"] > first["table_version"]


def test_a_foreign_cursor_is_a_422(client: TestClient, person: dict[str, Any]) -> None:
    body = {"keypoints": _keypoints(person), "cursor": "bm90LWEtY3Vyc29y"}
    response = client.post("/search", json=body)
    assert response.status_code == 422 and "cursor" in response.json()["detail"]


def test_more_like_this_finds_similar_people_but_not_itself(
    client: TestClient, person: dict[str, Any]
) -> None:
    response = client.post("/search", json={"more_like": person["id"], "k": 5})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert (results and person["image_id"] not in {r["image_id"] for r in results[:1]}) or all(
        r["id"] != person["id"] for r in results
    )
    assert all(r["id"] != person["id"] for r in results)
    # Its pose query equals sending its keypoints (minus the row itself).
    by_pose = client.post(
        "/search", json={"keypoints": _keypoints(person), "k": 6, "lambda": 1.0}
    ).json()["results"]
    like_pose = client.post(
        "/search", json={"more_like": person["id"], "k": 5, "lambda": 1.0}
    ).json()["results"]
    assert [r["id"] for r in like_pose] == [r["id"] for r in by_pose if r["id"] != person["id"]][:5]


def test_more_like_an_unknown_id_is_a_404(client: TestClient) -> None:
    response = client.post("/search", json={"more_like": "nope:0"})
    assert response.status_code == 404 and "nope:0" in response.json()["detail"]


def test_min_score_is_a_relevance_floor(client: TestClient, person: dict[str, Any]) -> None:
    body = {"keypoints": _keypoints(person), "k": 100, "group_by_image": False}
    everyone = client.post("/search", json=body).json()["results"]
    floor = everyone[len(everyone) // 2]["score"]
    kept = client.post("/search", json={**body, "min_score": floor}).json()["results"]
    assert kept and all(r["score"] >= floor for r in kept)
    assert len(kept) < len(everyone)


def test_people_count_filters(
    client: TestClient, indexed_home: Path, person: dict[str, Any]
) -> None:
    rows = [r for r in served_rows(indexed_home) if r["pose_vector"] is not None]
    per_image: dict[str, int] = {}
    for r in rows:
        per_image[r["image_id"]] = per_image.get(r["image_id"], 0) + 1
    body = {"keypoints": _keypoints(person), "k": 100}
    crowds = client.post("/search", json={**body, "min_people": 2}).json()["results"]
    assert {r["image_id"] for r in crowds} == {i for i, n in per_image.items() if n >= 2}
    solo = client.post("/search", json={**body, "max_people": 1}).json()["results"]
    assert {r["image_id"] for r in solo} == {i for i, n in per_image.items() if n == 1}


def test_results_carry_raw_and_calibrated_components(
    client: TestClient, person: dict[str, Any]
) -> None:
    body = {"keypoints": _keypoints(person), "text": "a person", "k": 3}
    for r in client.post("/search", json=body).json()["results"]:
        assert r["pose_raw"] is not None and r["clip_raw"] is not None
        assert r["pose_score"] is not None and r["clip_score"] is not None
