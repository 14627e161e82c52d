"""The Dagster instance of a PoseFramer home, and the in-process runs recorded in it.

The instance lives in `<home>/dagster` (SQLite by default, from the repository's
dagster.yaml; PostgreSQL when POSEFRAMER_DAGSTER_POSTGRES_URL is set): the one `dagster dev`
shows and `poseframer index` records its runs in.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import dagster as dg
import yaml

INSTANCE_TEMPLATE = Path(__file__).resolve().parents[1] / "dagster.yaml"


def dagster_home(home: Path) -> Path:
    return home / "dagster"


POSTGRES_URL_ENV = "POSEFRAMER_DAGSTER_POSTGRES_URL"
_POSTGRES_STORAGE = {"postgres": {"postgres_url": {"env": POSTGRES_URL_ENV}}}


def _check_postgres_url(url: str) -> None:
    # SQLAlchemy 2.1 opens a bare postgresql:// URL with psycopg 3, whose server-side
    # parameters break dagster-postgres (NOTIFY run_events, $1): name its driver, psycopg2.
    if not url.startswith("postgresql+psycopg2://"):
        given = url.split("://", 1)[0] + "://…" if "://" in url else "a value with no scheme"
        raise RuntimeError(
            f"{POSTGRES_URL_ENV} must look like postgresql+psycopg2://user:password@host:5432/db "
            f"(dagster-postgres needs the psycopg2 driver named), not {given}"
        )
    try:
        import dagster_postgres  # noqa: F401
    except ImportError:
        raise RuntimeError(
            f"{POSTGRES_URL_ENV} is set but dagster-postgres is not installed: "
            "pip install -e '.[postgres]'"
        ) from None


def open_instance(home: Path) -> dg.DagsterInstance:
    """The persistent Dagster instance of a PoseFramer home.

    Its dagster.yaml (in `dagster_home(home)`, the DAGSTER_HOME of `make dagster`) is the
    repository's with the storage written in: SQLite under that directory by default, so the
    instance opens the same whether or not DAGSTER_HOME is set; PostgreSQL when
    POSEFRAMER_DAGSTER_POSTGRES_URL is set (`postgresql+psycopg2://user:pw@host:5432/db`). The
    file names that variable rather than its value, so no password is written to disk. A home
    that was on SQLite moves to PostgreSQL when the variable is set; its SQLite history stays
    in the directory, unread.
    """
    directory = dagster_home(home)
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "dagster.yaml"
    postgres = bool(dg.EnvVar(POSTGRES_URL_ENV).get_value())
    if config.exists():
        settings = yaml.safe_load(config.read_text()) or {}
        on_postgres = settings.get("storage") == _POSTGRES_STORAGE
        if on_postgres and not postgres:
            raise RuntimeError(
                f"the Dagster instance in {config} keeps its runs in PostgreSQL: set "
                f"{POSTGRES_URL_ENV} (or edit that file's storage back to sqlite)"
            )
        rewrite = postgres and not on_postgres
    else:
        settings = (
            yaml.safe_load(INSTANCE_TEMPLATE.read_text()) if INSTANCE_TEMPLATE.exists() else {}
        )
        if "sqlite" in settings.get("storage", {"sqlite": {}}):
            settings["storage"] = {"sqlite": {"base_dir": str(directory)}}
        rewrite = True
    if postgres:
        _check_postgres_url(str(dg.EnvVar(POSTGRES_URL_ENV).get_value()))
        settings["storage"] = dict(_POSTGRES_STORAGE)
    if rewrite:
        config.write_text(
            f"# Written by PoseFramer from {INSTANCE_TEMPLATE.name}; edit freely.\n"
            + yaml.safe_dump(settings, sort_keys=False)
        )
    return dg.DagsterInstance.from_config(str(directory))


PID_TAG = "poseframer/pid"
HOST_TAG = "poseframer/host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail the in-process runs of this host whose process died (kill -9, power cut), and free
    the `gpu` pool slots they held: without this every later run would wait for them forever,
    since no daemon watches in-process runs."""
    released = []
    host = socket.gethostname()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        pid = run.tags.get(PID_TAG)
        if run.tags.get(HOST_TAG) != host or pid is None or not pid.isdigit() or _alive(int(pid)):
            continue
        instance.report_run_failed(run, f"its process {pid} died without finishing the run")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released
