"""`POST /uploads`: images from a frontend into the watched inbox, behind an API key."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import serving.routers.uploads as uploads
from pipelines.records import DecodedImage
from pipelines.sources.base import SourceItem, decode_item
from serving.app import create_app
from storage.store import Store
from tests.conftest import make_settings
from tests.local_http import textured_image

KEY = "s3cret-key"


def _client(home: Path, **overrides: Any) -> TestClient:
    settings = make_settings(home, **overrides)
    # Without the lifespan (no `with`): these requests need no CLIP model.
    return TestClient(create_app(settings))


def _files(*named: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "application/octet-stream")) for name, data in named]


def _inbox_files(home: Path) -> list[Path]:
    return sorted(p for p in (home / "inbox").rglob("*") if p.is_file())


def test_uploads_are_off_without_a_configured_key(tmp_path: Path) -> None:
    response = _client(tmp_path).post("/uploads", files=_files(("a.png", textured_image(1))))
    assert response.status_code == 503
    assert "POSEFRAMER_API_KEY" in response.json()["detail"]
    assert _inbox_files(tmp_path) == []


def test_a_missing_or_wrong_key_is_401(tmp_path: Path) -> None:
    client = _client(tmp_path, api_key=KEY)
    files = _files(("a.png", textured_image(1)))
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}):
        response = client.post("/uploads", files=files, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "ApiKey"
        assert "X-API-Key" in response.json()["detail"]
    assert _inbox_files(tmp_path) == []


def test_images_are_saved_into_a_new_inbox_folder_and_others_rejected(tmp_path: Path) -> None:
    known = textured_image(3)
    decoded = decode_item(SourceItem("/x.png", known))
    assert isinstance(decoded, DecodedImage)
    store = Store.at_home(tmp_path)
    store.register_batch("b", "folder", "/x")
    store.add_images("b", "folder", [decoded])
    a, b = textured_image(1), textured_image(2, fmt="JPEG")

    response = _client(tmp_path, api_key=KEY).post(
        "/uploads",
        files=_files(
            ("pose one.png", a),
            ("../../etc/b.jpg", b),
            ("notes.txt", b"hello"),
            ("known.png", known),
        ),
        headers={"X-API-Key": KEY},
    )

    assert response.status_code == 202, response.text
    body = response.json()
    upload_id = body["upload_id"]
    assert upload_id.startswith("upload-")
    assert [f["name"] for f in body["accepted"]] == ["pose one.png", "../../etc/b.jpg", "known.png"]
    assert [f["already_indexed"] for f in body["accepted"]] == [False, False, True]
    assert body["rejected"] == [
        {
            "name": "notes.txt",
            "reason": "not an image: jpeg, png, webp, gif, bmp or tiff content expected",
        }
    ]
    saved = _inbox_files(tmp_path)
    assert [p.parent.name for p in saved] == [upload_id] * 3  # nothing escapes the inbox folder
    by_hash = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in saved}
    for entry, data in zip(body["accepted"], (a, b, known), strict=True):
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
        path = by_hash[entry["sha256"]]
        assert entry["saved_as"] == path.relative_to(tmp_path / "inbox").as_posix()
    assert by_hash[hashlib.sha256(b).hexdigest()].name.endswith("-b.jpg")
    assert not any(p.name.startswith(".") for p in saved)


def test_size_and_count_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client(tmp_path, api_key=KEY, max_upload_bytes=2000)
    headers = {"X-API-Key": KEY}
    big = textured_image(1, size=(400, 400))
    assert len(big) > 2000
    response = client.post("/uploads", files=_files(("big.png", big)), headers=headers)
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]

    response = client.post("/uploads", files=_files(("t.txt", b"text")), headers=headers)
    assert response.status_code == 415

    response = client.post("/uploads", data={"note": "no files"}, files=[], headers=headers)
    assert response.status_code in (400, 422)

    monkeypatch.setattr(uploads, "MAX_FILES_PER_UPLOAD", 2)
    small = textured_image(1, size=(8, 8))
    files = _files(*((f"{n}.png", small) for n in range(3)))
    response = client.post("/uploads", files=files, headers=headers)
    assert response.status_code == 413
    assert "at most 2 files" in response.json()["detail"]

    monkeypatch.setattr(uploads, "MAX_UPLOAD_REQUEST_BYTES", 500)
    response = client.post("/uploads", files=_files(("a.png", small * 10)), headers=headers)
    assert response.status_code == 413
    assert _inbox_files(tmp_path) == []


def test_the_endpoint_is_documented(tmp_path: Path) -> None:
    spec = _client(tmp_path, api_key=KEY).get("/openapi.json").json()
    operation = spec["paths"]["/uploads"]["post"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    assert {"202", "401", "413", "503"} <= set(operation["responses"])
    assert any(p["name"].lower() == "x-api-key" for p in operation["parameters"])


def test_uploaded_files_are_what_the_inbox_sensor_claims(tmp_path: Path) -> None:
    from pipelines.sources.inbox import claim_inbox

    response = _client(tmp_path, api_key=KEY).post(
        "/uploads", files=_files(("a.png", textured_image(1))), headers={"X-API-Key": KEY}
    )
    upload_id = response.json()["upload_id"]
    claim = claim_inbox(
        tmp_path / "inbox", tmp_path / "batch", Store.at_home(tmp_path).known_image_ids, settle_s=0
    )
    assert claim.files == [response.json()["accepted"][0]["saved_as"]]
    assert claim.files[0].startswith(f"{upload_id}/")
