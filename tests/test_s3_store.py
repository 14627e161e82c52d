"""LanceDB on S3-compatible object storage: moto's S3 server on loopback, started here.

Indexes real photos through the Dagster job into `s3://…`, publishes twice, and serves a
search from the bucket through the FastAPI app: tables, merge_insert upserts, versions and
publish tags all live in the object store; only the originals stay on local disk.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from fastapi.testclient import TestClient

from assets.indexing import index_folder
from benchmarks.live_server import free_port
from config.settings import Settings, describe_settings_error
from serving.app import create_app
from storage.location import parse_db_uri, parse_storage_options
from storage.store import Store
from tests.conftest import make_settings

moto_server = pytest.importorskip("moto.server", reason="moto[server] (the dev extra) is needed")
boto3 = pytest.importorskip("boto3")

BUCKET = "poseframer-test"
PHOTOS = [
    "coco__000000000785.jpg",  # one person, full body
    "h36m__S1_Directions_1.54138969_000001.jpg",
]
LATER_PHOTO = "neg_ap10k__000000000004.jpg"  # an animal: no person


@pytest.fixture(scope="module")
def s3_options() -> Iterator[dict[str, str]]:
    """LanceDB storage options reaching a fresh moto S3 server with one empty bucket."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    server.start()
    try:
        host, port = server.get_host_and_port()
        options = {
            "endpoint": f"http://{host}:{port}",
            "region": "us-east-1",
            "allow_http": "true",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        boto3.client(
            "s3",
            endpoint_url=options["endpoint"],
            region_name=options["region"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=BUCKET)
        yield options
    finally:
        server.stop()


def _object_keys(options: dict[str, str], prefix: str) -> set[str]:
    client = boto3.client(
        "s3",
        endpoint_url=options["endpoint"],
        region_name=options["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return keys


def _search(client: TestClient, path: str = "/search", **body: Any) -> dict[str, Any]:
    body.setdefault("group_by_image", False)
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# ---------------------------------------------------------------- configuration


def test_db_uri_and_storage_options_parse() -> None:
    assert parse_db_uri("s3://bucket/some/prefix/") == "s3://bucket/some/prefix"
    assert parse_db_uri("relative/db") == str(Path("relative/db").resolve())
    assert parse_db_uri("file:///tmp/db") == "/tmp/db"
    with pytest.raises(ValueError, match="unsupported scheme"):
        parse_db_uri("ftp://host/db", "POSEFRAMER_LANCEDB_URI")
    with pytest.raises(ValueError, match="names no bucket"):
        parse_db_uri("s3:///db")
    assert parse_storage_options('{"allow_http": true, "timeout": 30}', "X") == {
        "allow_http": "true",
        "timeout": "30",
    }
    with pytest.raises(ValueError, match="POSEFRAMER_LANCEDB_STORAGE_OPTIONS"):
        parse_storage_options("[1]", "POSEFRAMER_LANCEDB_STORAGE_OPTIONS")


def test_the_db_location_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("POSEFRAMER_HOME", str(tmp_path))
    monkeypatch.setenv("POSEFRAMER_LANCEDB_URI", "s3://bucket/poseframer")
    monkeypatch.setenv(
        "POSEFRAMER_LANCEDB_STORAGE_OPTIONS",
        '{"endpoint": "http://127.0.0.1:9000", "allow_http": true, "region": "eu-west-1"}',
    )
    expected = {"endpoint": "http://127.0.0.1:9000", "allow_http": "true", "region": "eu-west-1"}
    # One settings model: the indexer and the service read the same location.
    storage = Settings.from_env().storage
    assert storage.lancedb_uri == "s3://bucket/poseframer"
    assert storage.lancedb_storage_options == expected

    monkeypatch.delenv("POSEFRAMER_LANCEDB_URI")
    monkeypatch.delenv("POSEFRAMER_LANCEDB_STORAGE_OPTIONS")
    # Unset: the tables stay where they always were, <home>/lancedb.
    storage = Settings.from_env().storage
    assert storage.open_store().db_uri == str(tmp_path.resolve() / "lancedb")
    assert storage.lancedb_uri is None

    monkeypatch.setenv("POSEFRAMER_LANCEDB_URI", "ftp://example.org/db")
    with pytest.raises(ValueError, match="unsupported scheme") as caught:
        Settings.from_env()
    assert "POSEFRAMER_LANCEDB_URI" in describe_settings_error(caught.value)


def test_files_beside_local_tables(tmp_path: Path) -> None:
    store = Store.at_home(tmp_path)
    fs, root = store.files()
    assert isinstance(fs, pafs.LocalFileSystem)
    assert root == str(tmp_path.resolve() / "lancedb")


# ---------------------------------------------------------------- the object store


def test_files_beside_s3_tables_write_and_read(s3_options: dict[str, str], tmp_path: Path) -> None:
    store = Store(f"s3://{BUCKET}/files-test/lancedb", tmp_path / "blobs", s3_options)
    fs, root = store.files()
    assert isinstance(fs, pafs.S3FileSystem)
    assert root == f"{BUCKET}/files-test/lancedb"
    payload = bytes(range(256)) * 64
    with fs.open_output_stream(f"{root}/ann/search-v1.ivf") as out:
        out.write(payload)
    with fs.open_input_stream(f"{root}/ann/search-v1.ivf") as src:
        assert src.read() == payload
    listed = fs.get_file_info(pafs.FileSelector(f"{root}/ann"))
    assert [info.base_name for info in listed] == ["search-v1.ivf"]
    # The same object, seen by another S3 client: it is in the bucket, beside the tables.
    assert "files-test/lancedb/ann/search-v1.ivf" in _object_keys(s3_options, "files-test/")


@pytest.mark.slow
def test_index_publish_and_serve_from_s3(
    s3_options: dict[str, str], evalset: Path, tmp_path: Path, index_settings_for: Any
) -> None:
    home = tmp_path / "home"
    db_uri = f"s3://{BUCKET}/e2e/lancedb"
    settings = index_settings_for(home, lancedb_uri=db_uri, lancedb_storage_options=s3_options)
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS:
        shutil.copyfile(evalset / "images" / name, folder / name)

    first = index_folder(folder, settings, batch_id="s3-first")
    assert first.success and first.publication is not None
    assert first.new_images == len(PHOTOS)
    assert first.people >= 1
    # The tables, their versions and the publish tags are in the bucket; nothing local but
    # the originals (and the Dagster instance).
    assert not (home / "lancedb").exists()
    assert any((home / "blobs").rglob("*")), "originals stay in the local blob store"
    keys = _object_keys(s3_options, "e2e/lancedb/")
    assert any(k.startswith("e2e/lancedb/search.lance/_versions/") for k in keys)
    assert f"e2e/lancedb/search.lance/_refs/tags/{first.publication.tag}.json" in keys

    store = settings.storage.open_store()
    served_first = store.search_table_at(first.publication.version).to_pylist()
    person = next(r for r in served_first if r["pose_vector"] is not None)

    # Indexing the same folder again adds no rows (merge_insert on the object store).
    again = index_folder(folder, settings, batch_id="s3-again")
    assert again.success and again.new_images == 0 and again.duplicates == len(PHOTOS)
    assert store.count_rows("images") == len(PHOTOS)

    later = tmp_path / "later"
    later.mkdir()
    shutil.copyfile(evalset / "images" / LATER_PHOTO, later / LATER_PHOTO)
    second = index_folder(later, settings, batch_id="s3-second")
    assert second.success and second.publication is not None
    assert second.publication.version > first.publication.version
    assert store.count_rows("images") == len(PHOTOS) + 1

    serving = make_settings(home, lancedb_uri=db_uri, lancedb_storage_options=s3_options)
    with TestClient(create_app(serving)) as client:
        health = client.get("/health").json()
        assert health["table_version"] == second.publication.version

        query = [list(person["keypoints"][i : i + 3]) for i in range(0, 51, 3)]
        latest = _search(client, keypoints=query, k=3)
        assert latest["table_version"] == second.publication.version
        assert latest["results"][0]["image_id"] == person["image_id"]

        pinned = _search(client, f"/search?version={first.publication.tag}", keypoints=query)
        assert pinned["table_version"] == first.publication.version
        assert pinned["results"][0]["image_id"] == person["image_id"]

        assert client.get(f"/images/{person['image_id']}/thumbnail").status_code == 200
        original = client.get(f"/images/{person['image_id']}")
        assert original.status_code == 200
        assert original.content == (folder / _source_name(person)).read_bytes()


def _source_name(row: dict[str, Any]) -> str:
    return Path(row["source_uri"]).name


def test_the_ann_index_is_published_beside_s3_tables_and_served_from_them(
    s3_options: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index files go to the bucket beside the tables; a service elsewhere fetches them
    once into its local cache and ranks with them, as it does on a local disk."""
    from benchmarks.search_bench import CLIP_DIM, POSE_DIM, synthetic_rows
    from pipelines.retrieval.ann import FILES
    from pipelines.retrieval.ranking import RankQuery, rank
    from storage.ann_files import ANN_DIR
    from storage.publishing import publish_search_rows
    from storage.snapshot import SnapshotCache

    store = Store(f"s3://{BUCKET}/ann-test/lancedb", tmp_path / "blobs", s3_options, 100)
    table = pa.concat_tables(
        t for t, *_ in synthetic_rows(1500, seed=2, pose_clusters=3, clip_clusters=3)
    )
    publication = publish_search_rows(store, ["b"], table, POSE_DIM, CLIP_DIM, "framing")
    keys = _object_keys(s3_options, "ann-test/")
    prefix = f"ann-test/lancedb/{ANN_DIR}/search/v{publication.version}/"
    assert {prefix + name for name in FILES} <= keys

    reader = Store(f"s3://{BUCKET}/ann-test/lancedb", tmp_path / "other-blobs", s3_options)
    snapshot = SnapshotCache(reader).get()
    assert snapshot.ann is not None and snapshot.clip is None
    assert snapshot.ann.folder.is_dir() and not str(snapshot.ann.folder).startswith("s3")
    pose = snapshot.pose[np.flatnonzero(snapshot.pose_mask)[0]]
    everything = np.ones(len(snapshot), dtype=bool)
    top = rank(snapshot, RankQuery(pose[None, :], None, 1.0, everything, None), 5).segments[0]
    assert snapshot.pose_mask[top.rows[0]] and np.isclose(top.pose_raw[0], 1.0, atol=1e-5)
