"""An uploaded image counts for its pose, its look (CLIP image-to-image), or both; the CLIP
side of a query mixes text and the image's look by `text_weight`.

The CLIP model here has random weights (no weights are reachable offline): these tests prove
the plumbing — the same picture finds itself, weights 0 and 1 reduce to one input — not that
its looks are meaningful.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from storage.store import Store
from tests.conftest import make_settings
from tests.test_api import served_rows, service_of

pytestmark = pytest.mark.evalset


@pytest.fixture(scope="module")
def client(indexed_home: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(indexed_home))) as c:
        assert service_of(c).models.clip.wait(120), "the tiny CLIP model did not load"
        yield c


@pytest.fixture(scope="module")
def person(indexed_home: Path) -> dict[str, Any]:
    """A stored person whose picture has a CLIP vector, and the picture's bytes."""
    row = next(
        r
        for r in served_rows(indexed_home)
        if r["pose_vector"] is not None and r["clip_vector"] is not None
    )
    data = Store.at_home(indexed_home).blobs.get(row["image_id"])
    return {**row, "b64": base64.b64encode(data).decode()}


def _search(client: TestClient, **body: Any) -> list[dict[str, Any]]:
    response = client.post("/search", json={"k": 10, **body})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def _keypoints(row: dict[str, Any]) -> list[list[float]]:
    flat = row["keypoints"]
    return [flat[i : i + 3] for i in range(0, 51, 3)]


def test_an_image_used_for_its_look_finds_the_same_picture_first(
    client: TestClient, person: dict[str, Any]
) -> None:
    results = _search(client, image=person["b64"], image_use="look")
    assert results[0]["image_id"] == person["image_id"]
    assert results[0]["clip_raw"] == pytest.approx(1.0, abs=1e-4)
    assert all(r["pose_score"] is None for r in results)  # the look alone: no pose side


def test_an_image_used_for_both_has_a_pose_side_and_a_look_side(
    client: TestClient, person: dict[str, Any]
) -> None:
    results = _search(client, image=person["b64"], image_use="both", **{"lambda": 0.5})
    assert results and all(r["pose_score"] is not None for r in results)
    assert all(r["clip_score"] is not None for r in results)
    assert results[0]["image_id"] == person["image_id"]  # its own pose and its own picture


def test_keypoints_give_the_pose_while_the_image_gives_the_look(
    client: TestClient, person: dict[str, Any]
) -> None:
    body = {"keypoints": _keypoints(person), "image": person["b64"], "image_use": "look"}
    by_look = _search(client, **body, **{"lambda": 0.0})
    look_only = _search(client, image=person["b64"], image_use="look")
    assert [(r["id"], r["clip_raw"]) for r in by_look] == [
        (r["id"], r["clip_raw"]) for r in look_only
    ]
    assert by_look[0]["pose_raw"] == pytest.approx(1.0, abs=1e-4)  # the pose is still scored
    by_pose = _search(client, **body, **{"lambda": 1.0})
    assert [r["id"] for r in by_pose] == [
        r["id"] for r in _search(client, keypoints=_keypoints(person), **{"lambda": 1.0})
    ]


def test_text_weight_mixes_text_and_look(client: TestClient, person: dict[str, Any]) -> None:
    look = {"image": person["b64"], "image_use": "look"}
    text_only = _search(client, text="a dancer mid-leap")
    look_only = _search(client, **look)
    assert _search(client, **look, text="a dancer mid-leap", text_weight=1.0) == text_only
    assert _search(client, **look, text="a dancer mid-leap", text_weight=0.0) == look_only
    mixed = _search(client, **look, text="a dancer mid-leap", text_weight=0.5)
    # Half text: no picture matches the query as its own picture does the look alone.
    assert look_only[0]["clip_raw"] == pytest.approx(1.0, abs=1e-4)
    assert mixed[0]["clip_raw"] < 0.999


@pytest.mark.parametrize(
    "body, message",
    [
        ({"text": "x", "image_use": "look"}, "needs an image"),
        ({"keypoints": [[1, 2, 1]] * 17, "image": "aGk=", "image_use": "pose"}, "both a pose"),
        ({"text": "x", "text_weight": 1.5}, "text_weight"),
    ],
)
def test_image_use_mistakes_are_422s(
    client: TestClient, body: dict[str, Any], message: str
) -> None:
    response = client.post("/search", json=body)
    assert response.status_code == 422 and message in response.text, response.text
