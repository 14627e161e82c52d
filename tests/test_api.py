"""API tier: the FastAPI app over a home where the evalset was indexed by the real pipeline."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pipelines.catalog import keypoint_models, pose_models
from pipelines.clip.encoder import ClipEncoder
from pipelines.pose.embedding import GeometricPoseEmbedder
from pipelines.records import FloatArray
from pipelines.retrieval.ann import ANN_MIN_ROWS
from serving.app import create_app
from serving.clip_loader import ClipLoader
from serving.deps import get_search_service
from serving.search_service import SearchService
from storage.publishing import publish_search_rows
from storage.store import Store
from storage.tables import T_FAILURES
from tests.conftest import REPO, TINY_CLIP_CONFIG, make_settings

pytestmark = pytest.mark.evalset

ORIGIN = "http://localhost:3000"


@pytest.fixture(scope="module")
def client(indexed_home: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(indexed_home, cors_origins=[ORIGIN]))
    with TestClient(app) as c:
        assert service_of(c).models.clip.wait(120), "the tiny CLIP model did not load"
        yield c


def service_of(client: TestClient) -> SearchService:
    service: SearchService = client.app.state.search_service  # type: ignore[attr-defined]
    return service


@pytest.fixture(scope="module")
def rows(indexed_home: Path) -> list[dict[str, Any]]:
    """The served search table's rows, vectors included, straight from storage."""
    return served_rows(indexed_home)


@pytest.fixture(scope="module")
def posed_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    posed = [r for r in rows if r["pose_vector"] is not None]
    assert len(posed) >= 10, "the evalset index should hold at least 10 people with a pose"
    return posed


def served_rows(home: Path) -> list[dict[str, Any]]:
    store = Store.at_home(home)
    return store.search_table_at(store.resolve_publication().version).to_pylist()


def republish(home: Path, rows: list[dict[str, Any]], ann_min_rows: int = ANN_MIN_ROWS) -> int:
    """Publish `rows` as the whole search table, as the indexer would; the new version."""
    store = Store.at_home(home, ann_min_rows=ann_min_rows)
    latest = store.resolve_publication()
    schema = store.search_table_at(latest.version).schema
    publication = publish_search_rows(
        store,
        list(latest.batches),
        rows,
        schema.field("pose_vector").type.list_size,
        schema.field("clip_vector").type.list_size,
        latest.framing_model,
    )
    return publication.version


@pytest.fixture(scope="module")
def portrait_home(indexed_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the index with two people relabelled `portrait`: the evalset need not hold a
    head-and-shoulders crop that the current detector classifies so, yet the filters must be
    tested on one."""
    home = tmp_path_factory.mktemp("portraits") / "home"
    shutil.copytree(indexed_home, home)
    rows = served_rows(home)
    # Every person of two images, so those images are portraits through and through.
    chosen = list(dict.fromkeys(r["image_id"] for r in rows if r["pose_vector"] is not None))[:2]
    for row in rows:
        if row["image_id"] in chosen:
            row["framing"] = "portrait"
    republish(home, rows)
    return home


@pytest.fixture(scope="module")
def portrait_client(portrait_home: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(portrait_home))) as c:
        assert service_of(c).models.clip.wait(120)
        yield c


def triples(flat: list[float]) -> list[list[float]]:
    return [list(flat[i : i + 3]) for i in range(0, len(flat), 3)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def png(size: tuple[int, int] = (320, 320), color: tuple[int, int, int] = (255, 255, 255)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def search(client: TestClient, **body: Any) -> dict[str, Any]:
    """A per-person search (`group_by_image` off unless given): these tests look at people."""
    body.setdefault("group_by_image", False)
    response = client.post("/search", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def ids(response: dict[str, Any]) -> list[str]:
    return [r["id"] for r in response["results"]]


# ---------------------------------------------------------------- pose search


def test_stored_keypoints_find_their_own_person_first(
    client: TestClient, posed_rows: list[dict[str, Any]]
) -> None:
    for row in posed_rows:
        response = search(client, keypoints=triples(row["keypoints"]), k=5)
        top = response["results"][0]
        assert top["id"] == row["id"], f"{row['source_uri']} did not find itself first"
        assert top["pose_score"] == pytest.approx(1.0, abs=1e-4)
        assert top["clip_score"] is None
        assert top["keypoints"] == triples(row["keypoints"])
        assert top["image_url"] == f"/images/{row['image_id']}"
        assert top["thumbnail_url"] == f"/images/{row['image_id']}/thumbnail"


@pytest.mark.parametrize("as_data_url", [False, True])
def test_image_query_finds_the_same_photo_first(
    client: TestClient, posed_rows: list[dict[str, Any]], as_data_url: bool
) -> None:
    photo = Path(sorted(r["source_uri"] for r in posed_rows if r["source_uri"].endswith(".jpg"))[0])
    data = photo.read_bytes()
    image = f"data:image/jpeg;base64,{b64(data)}" if as_data_url else b64(data)
    response = search(client, image=image, k=3)
    assert response["results"][0]["image_id"] == hashlib.sha256(data).hexdigest()
    assert response["results"][0]["pose_score"] == pytest.approx(1.0, abs=1e-3)
    assert len(response["query_keypoints"]) == 17


def test_blank_image_says_no_figure_was_found(client: TestClient) -> None:
    response = client.post("/search", json={"image": b64(png())})
    assert response.status_code == 422
    assert "no human figure" in response.json()["detail"]


def test_a_drawing_the_index_would_leave_out_is_still_read_as_a_query(client: TestClient) -> None:
    """The clip-art policeman's figure reads differently mirrored, so the index leaves it
    out (the mirror check); sent as a query, its reading is the query figure, with a
    warning that it is unsure."""
    drawing = REPO / "samples" / "corpus" / "policeman-stop.png"
    assert (
        keypoint_models.load("mediapipe", hands=False).detect(Image.open(drawing).convert("RGB"))
        == []
    )
    response = client.post("/search", json={"image": b64(drawing.read_bytes())})
    assert response.status_code == 200, response.text
    assert len(response.json()["query_keypoints"]) == 17
    # The answer says the reading is unsure, for the person to check it.
    warnings = response.json()["warnings"]
    assert [w["code"] for w in warnings] == ["unsure_figure"]
    assert "skeleton" in warnings[0]["message"]
    # A stick man read alike either way round: no such warning.
    stick = REPO / "samples" / "corpus" / "stickman-running.png"
    response = client.post("/search", json={"image": b64(stick.read_bytes())})
    assert response.status_code == 200, response.text
    assert response.json()["warnings"] == []


def test_framing_filter_returns_only_those_framings(
    portrait_client: TestClient, portrait_home: Path
) -> None:
    wanted = {"upper_body", "portrait"}
    expected = {r["id"] for r in served_rows(portrait_home) if r["framing"] in wanted}
    assert len(expected) >= 2
    response = search(portrait_client, text="a person", framing=sorted(wanted), k=100)
    assert {r["framing"] for r in response["results"]} <= wanted
    assert set(ids(response)) == expected


# ---------------------------------------------------------------- text and hybrid search


def test_text_query_uses_the_random_test_clip(
    client: TestClient, rows: list[dict[str, Any]]
) -> None:
    response = search(client, text="a person jumping", k=100)
    assert len(response["results"]) == sum(r["clip_vector"] is not None for r in rows)
    for hit in response["results"]:
        assert isinstance(hit["clip_score"], float)
        assert hit["pose_score"] is None
        assert hit["score"] == pytest.approx(hit["clip_score"])
    scores = [hit["score"] for hit in response["results"]]
    assert scores == sorted(scores, reverse=True)
    assert "random-weights" in response["models"]["clip_model"]


def test_lambda_one_ranks_by_pose_and_lambda_zero_by_text(
    client: TestClient, posed_rows: list[dict[str, Any]]
) -> None:
    keypoints = triples(posed_rows[0]["keypoints"])
    text = "a figure drawing"
    pose_only = search(client, keypoints=keypoints, k=5)
    text_only = search(client, text=text, k=10)
    at_one = search(client, keypoints=keypoints, text=text, k=5, **{"lambda": 1.0})
    at_zero = search(client, keypoints=keypoints, text=text, k=10, **{"lambda": 0.0})
    assert ids(at_one) == ids(pose_only)
    assert ids(at_zero) == ids(text_only)
    middle = search(client, keypoints=keypoints, text=text, k=5, **{"lambda": 0.5})
    for hit in middle["results"]:
        assert hit["score"] == pytest.approx(0.5 * hit["pose_score"] + 0.5 * hit["clip_score"])


def test_text_waits_for_clip_while_pose_search_works(indexed_home: Path) -> None:
    gate = threading.Event()
    # A text query waits for CLIP at most `model_wait` seconds, then is told when to retry.
    app = create_app(make_settings(indexed_home, model_wait=0.2))
    service: SearchService = app.state.search_service
    service.models.clip = ClipLoader(GatedEncoder(service.models.clip.encoder, gate))
    with TestClient(app) as c:
        response = c.post("/search", json={"text": "a dancer"})
        assert response.status_code == 503
        assert "still loading" in response.json()["detail"]
        assert response.headers["Retry-After"] == "5"
        health = c.get("/health").json()
        assert health["text_search"]["available"] is False
        assert health["status"] == "loading"
        keypoints = [[100.0 + 10 * i, 50.0 + 20 * i, 1.0] for i in range(17)]
        assert c.post("/search", json={"keypoints": keypoints}).status_code == 200
        gate.set()
        assert service.models.clip.wait(60)
        assert c.post("/search", json={"text": "a dancer"}).status_code == 200


class GatedEncoder(ClipEncoder):
    """A real encoder whose loading waits for a gate: a slow hub download, on demand."""

    name = "gated"

    def __init__(self, inner: ClipEncoder, gate: threading.Event) -> None:
        self.inner = inner
        self.gate = gate

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def load(self) -> None:
        self.gate.wait(60)
        self.inner.load()

    def encode_images(self, images: list[Image.Image]) -> FloatArray:
        return self.inner.encode_images(images)

    def encode_texts(self, texts: list[str]) -> FloatArray:
        return self.inner.encode_texts(texts)


def test_missing_clip_weights_disable_only_text_search(
    indexed_home: Path, posed_rows: list[dict[str, Any]]
) -> None:
    app = create_app(make_settings(indexed_home, clip_pretrained="/nonexistent/ckpt.pt"))
    with TestClient(app) as c:
        assert app.state.search_service.models.clip.wait(60)
        text_search = c.get("/health").json()["text_search"]
        assert text_search["available"] is False
        assert "POSEFRAMER_CLIP_PRETRAINED" in text_search["reason"]
        assert text_search["random_weights"] is False
        response = c.post("/search", json={"text": "a dancer"})
        assert response.status_code == 503
        assert "POSEFRAMER_CLIP_PRETRAINED" in response.json()["detail"]
        keypoints = triples(posed_rows[0]["keypoints"])
        response = c.post("/search", json={"keypoints": keypoints})
        assert response.status_code == 200
        assert response.json()["results"][0]["id"] == posed_rows[0]["id"]


def test_index_clip_vectors_of_another_model_are_refused(
    indexed_home: Path, tmp_path: Path
) -> None:
    # Same architecture under another name: it loads, but its vectors are not the index's.
    other = tmp_path / "poseframer-other-clip.json"
    other.write_text(TINY_CLIP_CONFIG.read_text())
    settings = make_settings(indexed_home, clip_model="poseframer-other-clip", clip_config=other)
    app = create_app(settings)
    with TestClient(app) as c:
        assert app.state.search_service.models.clip.wait(60)
        response = c.post("/search", json={"text": "a dancer"})
        assert response.status_code == 503
        detail = response.json()["detail"]
        assert "open-clip:poseframer-other-clip:random-weights" in detail
        assert "open-clip:poseframer-tiny-clip:random-weights" in detail
        assert "re-index" in detail
        assert c.get("/health").json()["text_search"]["available"] is False


def test_index_without_clip_vectors_says_so(indexed_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(indexed_home, home)
    rows = served_rows(home)
    for row in rows:  # as indexed where no CLIP weights could be loaded
        row["clip_vector"] = None
        row["clip_model"] = None
    republish(home, rows)
    with TestClient(create_app(make_settings(home))) as c:
        response = c.post("/search", json={"text": "a dancer"})
        assert response.status_code == 503
        assert "no CLIP vectors" in response.json()["detail"]
        # With a pose beside it, the text is left out and said so; the pose is answered.
        both = c.post("/search", json={"text": "a dancer", "keypoints": KP17})
        assert both.status_code == 200
        assert [w["code"] for w in both.json()["warnings"]] == ["text_ignored"]
        assert c.post("/search", json={"keypoints": KP17}).status_code == 200


# ---------------------------------------------------------------- model consistency


@pose_models.register("geometric-strict-test")
class StrictPoseEmbedder(GeometricPoseEmbedder):
    """Same geometry, other joint threshold: vectors not comparable with geometric-v1's."""

    name = "geometric-strict-test"

    def __init__(self) -> None:
        super().__init__(min_score=0.6)


def test_index_built_with_another_pose_model_is_refused(
    indexed_home: Path, posed_rows: list[dict[str, Any]]
) -> None:
    app = create_app(make_settings(indexed_home, pose_model="geometric-strict-test"))
    with TestClient(app) as c:
        response = c.post("/search", json={"keypoints": triples(posed_rows[0]["keypoints"])})
        assert response.status_code == 409
        detail = response.json()["detail"]
        index_model = Store.at_home(indexed_home).resolve_publication().pose_model
        assert index_model in detail and StrictPoseEmbedder().model_id in detail
        assert "POSEFRAMER_POSE_MODEL" in detail
        pose_search = c.get("/health").json()["pose_search"]
        assert pose_search["available"] is False
        assert "POSEFRAMER_POSE_MODEL" in pose_search["reason"]
        # Text search does not involve the pose model, so it still answers.
        assert app.state.search_service.models.clip.wait(60)
        assert c.post("/search", json={"text": "a dancer"}).status_code == 200


# ---------------------------------------------------------------- input validation

KP17 = [[10.0 * i, 20.0 * i, 1.0] for i in range(1, 18)]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"keypoints": KP17, "k": 0}, 422, "k:"),
        ({"keypoints": KP17, "k": 101}, 422, "k:"),
        ({"keypoints": KP17, "k": "ten"}, 422, "k:"),
        ({"keypoints": KP17, "lambda": 1.5}, 422, "lambda:"),
        ({"keypoints": KP17, "lambda": "NaN"}, 422, "lambda:"),
        ({}, 422, "at least one of"),
        ({"text": "   "}, 422, "at least one of"),
        ({"keypoints": KP17, "image": "aGVsbG8="}, 422, "both a pose"),
        ({"keypoints": KP17[:16]}, 422, "17 COCO-17"),
        ({"keypoints": [[1.0, 2.0]] * 17}, 422, "17 COCO-17"),
        ({"keypoints": [*KP17[:16], ["NaN", "1", "1"]]}, 422, "finite"),
        ({"keypoints": [*KP17[:16], ["Infinity", "1", "1"]]}, 422, "finite"),
        ({"keypoints": [[0.0, 0.0, 0.0]] * 17}, 422, "too few joints"),
        ({"keypoints": KP17, "framing": ["sideways"]}, 422, "framing"),
        ({"keypoints": KP17, "framing": []}, 422, "framing"),
        ({"keypoints": KP17, "lamda": 0.3}, 422, "lamda"),
        ({"image": "this is not base64!"}, 400, "base64"),
        ({"image": "data:image/png,notbase64"}, 400, "data URL"),
        ({"image": b64(b"just some text")}, 422, "cannot be read"),
        ({"text": "x" * 1001}, 422, "text:"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(
    client: TestClient, body: dict[str, Any], status: int, words: str
) -> None:
    response = client.post("/search", json=body)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and words in detail


def test_malformed_json_is_a_422_not_a_crash(client: TestClient) -> None:
    response = client.post(
        "/search", content=b'{"keypoints": [', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"]


def test_oversized_images_are_refused_with_413(indexed_home: Path) -> None:
    app = create_app(make_settings(indexed_home, max_upload_bytes=2000))
    big = png((400, 400), (10, 120, 30)) + b"\0" * 4000  # any image > 2000 bytes
    with TestClient(app) as c:
        response = c.post("/search", json={"image": b64(big)})
        assert response.status_code == 413
        assert "2000" in response.json()["detail"]
        # A body far over the limit is refused by its declared length, before it is read.
        response = c.post("/search", json={"image": b64(b"\0" * 200_000)})
        assert response.status_code == 413
        assert "POSEFRAMER_MAX_UPLOAD_BYTES" in response.json()["detail"]
        response = c.post("/search_similar_images", json={"sketch": b64(big)})
        assert response.status_code == 413
        assert response.json()["success"] is False


# ---------------------------------------------------------------- versions


def test_unknown_version_is_404_and_a_tag_selects_its_version(client: TestClient) -> None:
    response = client.post("/search", json={"text": "a dancer", "version": "999999"})
    assert response.status_code == 404
    assert "999999" in response.json()["detail"]
    response = client.post("/search?version=no-such-tag", json={"text": "a dancer"})
    assert response.status_code == 404
    health = client.get("/health").json()
    tagged = search(client, text="a dancer", version=health["tag"])
    assert tagged["table_version"] == health["table_version"]


def test_pinned_version_from_settings(indexed_home: Path) -> None:
    publication = Store.at_home(indexed_home).resolve_publication()
    with TestClient(create_app(make_settings(indexed_home, table_version=publication.tag))) as c:
        assert c.get("/health").json()["table_version"] == publication.version
        assert search(c, keypoints=KP17)["table_version"] == publication.version
    with TestClient(create_app(make_settings(indexed_home, table_version="999999"))) as c:
        health = c.get("/health").json()
        assert health["table_version"] is None
        assert "999999" in health["message"]
        response = c.post("/search", json={"keypoints": KP17})
        assert response.status_code == 404
        assert "999999" in response.json()["detail"]


def test_new_publication_is_served_without_restart(indexed_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(indexed_home, home)
    first = Store.at_home(home).resolve_publication()
    all_rows = served_rows(home)
    target = next(r for r in all_rows if r["pose_vector"] is not None)
    with TestClient(create_app(make_settings(home))) as c:
        before = search(c, keypoints=triples(target["keypoints"]), k=100)
        assert before["table_version"] == first.version
        assert before["results"][0]["image_id"] == target["image_id"]

        # The indexer drops that image (e.g. removed at the source) and publishes.
        second = republish(home, [r for r in all_rows if r["image_id"] != target["image_id"]])
        assert second > first.version

        after = search(c, keypoints=triples(target["keypoints"]), k=100)
        assert after["table_version"] == second
        assert target["image_id"] not in {r["image_id"] for r in after["results"]}
        assert c.get("/health").json()["table_version"] == second
        # The previous version stays searchable by number.
        pinned = search(c, keypoints=triples(target["keypoints"]), version=str(first.version))
        assert pinned["results"][0]["image_id"] == target["image_id"]


def test_nothing_published_yet(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path / "empty-home"))) as c:
        health = c.get("/health")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] in ("loading", "ready")
        assert body["table_version"] is None
        assert body["rows"] == {"search": 0, "images": 0, "failures": 0}
        assert "poseframer index" in body["message"]
        response = c.post("/search", json={"keypoints": KP17})
        assert response.status_code == 503
        assert "nothing has been published" in response.json()["detail"]
        assert int(response.headers["Retry-After"]) > 0


# ---------------------------------------------------------------- images


def test_original_bytes_hash_to_their_id(client: TestClient, rows: list[dict[str, Any]]) -> None:
    for image_id in sorted({r["image_id"] for r in rows})[:5]:
        response = client.get(f"/images/{image_id}")
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == image_id
        assert response.headers["content-type"].startswith("image/")
        Image.open(io.BytesIO(response.content)).verify()


def test_thumbnail_is_a_small_jpeg_with_etag(
    client: TestClient, rows: list[dict[str, Any]]
) -> None:
    image_id = rows[0]["image_id"]
    response = client.get(f"/images/{image_id}/thumbnail")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(response.content))
    assert thumb.format == "JPEG" and max(thumb.size) <= 256
    etag = response.headers["etag"]
    assert image_id in etag
    assert "max-age" in response.headers["cache-control"]
    again = client.get(f"/images/{image_id}/thumbnail", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    other = client.get(f"/images/{image_id}/thumbnail", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200


def test_unknown_and_malformed_image_ids(client: TestClient) -> None:
    response = client.get(f"/images/{'0' * 64}")
    assert response.status_code == 404
    assert "no stored image" in response.json()["detail"]
    for bad in ("not-an-id", "A" * 64):
        response = client.get(f"/images/{bad}/thumbnail")
        assert response.status_code == 422
        assert "64" in response.json()["detail"]


# ---------------------------------------------------------------- health, CORS, OpenAPI


def test_health_describes_what_is_served(
    client: TestClient, rows: list[dict[str, Any]], indexed_home: Path
) -> None:
    assert service_of(client).models.pose_loader.wait(60)
    body = client.get("/health").json()
    publication = Store.at_home(indexed_home).resolve_publication()
    assert body["status"] == "ready"
    assert body["table_version"] == publication.version
    assert body["tag"] == publication.tag
    assert body["rows"]["search"] == len(rows)
    assert body["rows"]["images"] == len({r["image_id"] for r in rows})
    assert body["rows"]["failures"] == Store.at_home(indexed_home).count_rows(T_FAILURES)
    assert body["models"] == publication.models
    assert body["service_models"]["keypoint_model"] == publication.keypoint_model
    assert body["service_models"]["pose_model"] == publication.pose_model
    assert body["service_models"]["clip_model"] == publication.clip_model
    assert body["pose_search"] == {"available": True, "reason": None}
    assert body["text_search"] == {
        "available": True,
        "summary": None,
        "reason": None,
        "random_weights": True,
    }


def test_cors_allows_only_configured_origins(client: TestClient) -> None:
    allowed = client.get("/health", headers={"Origin": ORIGIN})
    assert allowed.headers.get("access-control-allow-origin") == ORIGIN
    other = client.get("/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = client.options(
        "/search",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    # Error responses carry the header too, so a browser frontend can show their message.
    error = client.post("/search", json={}, headers={"Origin": ORIGIN})
    assert error.status_code == 422
    assert error.headers.get("access-control-allow-origin") == ORIGIN


def test_openapi_shows_request_examples(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["SearchRequest"]["examples"]
    assert schemas["SeedSearchRequest"]["examples"]


def test_unexpected_errors_are_json_500(indexed_home: Path) -> None:
    app = create_app(make_settings(indexed_home))

    def broken() -> SearchService:
        raise RuntimeError("simulated bug")

    app.dependency_overrides[get_search_service] = broken
    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.get("/health")
    assert response.status_code == 500
    assert "bug" in response.json()["detail"]


# ---------------------------------------------------------------- seed-project compatibility


def test_seed_endpoint_returns_display_renditions(
    client: TestClient, posed_rows: list[dict[str, Any]]
) -> None:
    big = max(
        (r for r in posed_rows if r["source_uri"].endswith(".jpg")),
        key=lambda r: max(r["width"], r["height"]),
    )
    assert max(big["width"], big["height"]) > 768, "the evalset should hold a photo > 768 px"
    data = Path(big["source_uri"]).read_bytes()
    response = client.post(
        "/search_similar_images",
        json={"sketch": f"data:image/jpeg;base64,{b64(data)}", "k": 5, "lambda": 1.0},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["error"] is None
    assert 1 <= len(body["results"]) <= 5
    first = body["results"][0]
    # The path inside the indexed folder, never where the server keeps it.
    assert first["path"] == Path(big["source_uri"]).name
    assert not any(r["path"].startswith("/") for r in body["results"])
    assert first["image_url"] == f"/images/{big['image_id']}"
    assert first["score"] == pytest.approx(1.0, abs=1e-3)
    shown = Image.open(io.BytesIO(base64.b64decode(first["image"])))
    assert shown.format == "JPEG"
    assert max(shown.size) == 768  # scaled down from the original, aspect kept
    assert shown.size[0] / shown.size[1] == pytest.approx(big["width"] / big["height"], rel=0.01)
    for result in body["results"]:
        assert max(Image.open(io.BytesIO(base64.b64decode(result["image"]))).size) <= 768
    # One result per image, even where an image holds several matching people.
    urls = [r["image_url"] for r in body["results"]]
    assert len(urls) == len(set(urls))


def test_seed_filter_portraits_leaves_out_portraits(
    portrait_client: TestClient, portrait_home: Path
) -> None:
    framings: dict[str, set[str]] = {}
    for r in served_rows(portrait_home):
        framings.setdefault(Path(r["source_uri"]).name, set()).add(r["framing"])
    portraits = {uri for uri, found in framings.items() if found == {"portrait"}}
    assert len(portraits) == 2
    body = {"text": "a portrait photo", "k": 100}
    every = portrait_client.post("/search_similar_images", json=body).json()["results"]
    filtered = portrait_client.post(
        "/search_similar_images", json={**body, "filter_portraits": True}
    ).json()["results"]
    assert portraits <= {r["path"] for r in every}
    assert not portraits & {r["path"] for r in filtered}
    assert len(filtered) == len(every) - len(portraits)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({}, 422, "sketch"),
        ({"text": "a dancer", "k": 0}, 422, "k:"),
        ({"sketch": "%%%"}, 400, "base64"),
        ({"sketch": b64(png())}, 422, "no human figure"),
    ],
)
def test_seed_endpoint_errors_keep_its_shape(
    client: TestClient, body: dict[str, Any], status: int, words: str
) -> None:
    response = client.post("/search_similar_images", json=body)
    assert response.status_code == status
    payload = response.json()
    assert payload["success"] is False
    assert payload["results"] == []
    assert words in payload["error"]
