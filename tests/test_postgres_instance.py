"""The Dagster instance on PostgreSQL: a real materialization recorded in a real server.

The server is the one `.ci/run` starts (`.ci/postgres-server`, Debian's PostgreSQL) and names
in POSEFRAMER_TEST_POSTGRES_URL; each test run gets a database of its own, dropped afterwards.
Without the variable the local default below is tried, and the test skips (saying why) when
nothing answers there; with the variable set, an unreachable server is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from assets.indexing import index_folder
from assets.instance import POSTGRES_URL_ENV, dagster_home, open_instance
from tests.synthetic import image_bytes
from tests.test_assets import ASSET_NAMES

psycopg2 = pytest.importorskip("psycopg2", reason="the postgres extra (dagster-postgres)")
pytest.importorskip("dagster_postgres", reason="the postgres extra (dagster-postgres)")

URL_ENV = "POSEFRAMER_TEST_POSTGRES_URL"
DEFAULT_URL = "postgresql://poseframer:poseframer@127.0.0.1:5432/poseframer"


def _connect(url: str, autocommit: bool = False) -> Any:
    connection = psycopg2.connect(url, connect_timeout=5)
    connection.autocommit = autocommit
    return connection


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """The URL of a fresh, empty database on the test server (dropped afterwards)."""
    # libpq's form, for psycopg2 here; Dagster gets the same URL with the driver named.
    url = (os.environ.get(URL_ENV) or DEFAULT_URL).replace(
        "postgresql+psycopg2://", "postgresql://"
    )
    try:
        admin = _connect(url, autocommit=True)
    except psycopg2.OperationalError as exc:
        if os.environ.get(URL_ENV):
            pytest.fail(f"{URL_ENV}={url} is set but the server does not answer: {exc}")
        pytest.skip(
            f"no PostgreSQL server at {DEFAULT_URL} ({str(exc).strip()}); run "
            f".ci/postgres-server and export {URL_ENV} with the URL it prints"
        )
    name = f"poseframer_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _query(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    connection = _connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows: list[tuple[Any, ...]] = cursor.fetchall()
    finally:
        connection.close()
    return rows


@pytest.mark.slow
def test_materialization_is_recorded_in_postgres(
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    index_settings_for: Any,
) -> None:
    home = tmp_path / "home"
    folder = tmp_path / "images"
    folder.mkdir()
    for i, color in enumerate([(200, 30, 40), (30, 200, 40), (30, 40, 200)]):
        (folder / f"plain-{i}.png").write_bytes(image_bytes((96, 72), color=color))
    settings = index_settings_for(home)

    # The default stays SQLite, under the home.
    monkeypatch.delenv(POSTGRES_URL_ENV, raising=False)
    sqlite_instance = open_instance(home)
    sqlite_instance.dispose()
    config = dagster_home(home) / "dagster.yaml"
    assert "sqlite" in yaml.safe_load(config.read_text())["storage"]

    # The variable moves the home's instance to PostgreSQL, naming the variable, not its value.
    monkeypatch.setenv(
        POSTGRES_URL_ENV, postgres_url.replace("postgresql://", "postgresql+psycopg2://")
    )
    report = index_folder(folder, settings, batch_id="pg-batch")
    assert report.success
    assert report.new_images == 3 and report.publication is not None
    written = config.read_text()
    assert yaml.safe_load(written)["storage"] == {
        "postgres": {"postgres_url": {"env": POSTGRES_URL_ENV}}
    }
    assert postgres_url not in written and "poseframer@" not in written
    # The rest of the repository's instance settings (the gpu pool limit) came along.
    assert yaml.safe_load(written)["concurrency"]["pools"]["default_limit"] == 1

    # What the server holds, read straight from its tables.
    runs = _query(postgres_url, "SELECT run_id, status, partition FROM runs")
    assert len(runs) == 1
    run_id, status, partition = runs[0]
    assert status == "SUCCESS" and partition == "pg-batch"
    materialized = _query(
        postgres_url,
        "SELECT DISTINCT asset_key FROM event_logs "
        "WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
        run_id,
    )
    keys = [dg.AssetKey.from_db_string(key) for (key,) in materialized]
    assert {key.to_user_string() for key in keys if key is not None} == ASSET_NAMES
    partitions = _query(
        postgres_url,
        "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = %s",
        "ingest_batches",
    )
    assert partitions == [("pg-batch",)]

    # A fresh instance opened on the same home reads it all back from PostgreSQL.
    instance = open_instance(home)
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        for asset in ASSET_NAMES:
            event = instance.get_latest_materialization_event(dg.AssetKey(asset))
            assert event is not None and event.run_id == run_id
            assert event.asset_materialization is not None
            assert event.asset_materialization.partition == "pg-batch"
        search = instance.get_latest_materialization_event(dg.AssetKey("search_index"))
        assert search is not None and search.asset_materialization is not None
        version = search.asset_materialization.metadata["table_version"].value
        assert version == report.publication.version
    finally:
        instance.dispose()
    # Nothing of this run went to SQLite files in the home.
    assert not (dagster_home(home) / "history" / "runs" / f"{run_id}.db").exists()


def test_postgres_url_must_name_the_psycopg2_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLAlchemy 2.1 would open a bare postgresql:// URL with psycopg 3, which breaks
    # dagster-postgres; the error says what to write instead, before anything connects.
    monkeypatch.setenv(POSTGRES_URL_ENV, "postgresql://user:secret@127.0.0.1:1/db")
    with pytest.raises(RuntimeError, match=r"postgresql\+psycopg2://") as caught:
        open_instance(tmp_path)
    assert "secret" not in str(caught.value)


def test_a_postgres_home_without_the_url_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = dagster_home(tmp_path) / "dagster.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(
        yaml.safe_dump({"storage": {"postgres": {"postgres_url": {"env": POSTGRES_URL_ENV}}}})
    )
    monkeypatch.delenv(POSTGRES_URL_ENV, raising=False)
    with pytest.raises(RuntimeError, match=POSTGRES_URL_ENV):
        open_instance(tmp_path)
