"""Index a folder as a new ingest batch, in-process, with the Dagster definitions.

`python -m assets.indexing DIR` (what `poseframer index DIR` runs): registers the batch,
adds its dynamic partition to the instance under $POSEFRAMER_HOME/dagster, materializes the
whole chain for it and prints what was indexed. The run is recorded in the same instance
that `dagster dev` shows.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from assets.definitions import INDEX_JOB, build_definitions
from assets.instance import HOST_TAG, PID_TAG, open_instance, release_dead_runs
from assets.partitions import INGEST_BATCHES
from assets.sources import SOURCE_TAG, SourcesConfigError, load_sources
from config.settings import Settings, describe_settings_error
from pipelines.clip.encoder import CONFIGURE_HINT
from pipelines.images import image_id_of
from pipelines.sources.base import LocalFolderSource, SourceItem
from storage.records import NothingPublishedError, Publication
from storage.store import Store


def new_batch_id(folder: Path) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", folder.name).strip("-")[:40] or "folder"
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S-%f}-{slug}"


_ACTIVE_RUN_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def unfinished_folder_batches(
    store: Store, instance: dg.DagsterInstance, folder: Path
) -> list[str]:
    """Batches of `folder` that no publication lists and no live run is indexing, oldest first.

    Such a batch owns the images its ingest stored (an image belongs to the first batch that
    stored its bytes), so a new batch of the same folder would find them all duplicates and
    they would never be served: its run was killed, or failed, before `search_index` recorded a
    publication. A search version committed but never recorded counts as unpublished, as the
    service never serves it. Runs of processes that died are failed first (`release_dead_runs`),
    so only a run still in progress (another `poseframer index`, the Dagster UI) keeps its batch
    from being taken over.
    """
    candidates = _unpublished_folder_batches(store, folder)
    if not candidates:
        return []
    release_dead_runs(instance)
    return [
        batch_id
        for batch_id in candidates
        if not instance.get_runs(
            filters=dg.RunsFilter(tags={PARTITION_TAG: batch_id}, statuses=_ACTIVE_RUN_STATUSES),
            limit=1,
        )
    ]


def _unpublished_folder_batches(store: Store, folder: Path) -> list[str]:
    """Batches registered for `folder` that no publication lists, oldest first."""
    published = {b for p in store.publications() for b in p.batches}
    return [
        b.batch_id
        for b in store.list_batches()
        if b.source == "folder"
        and b.options is None
        and b.location == str(folder)
        and b.batch_id not in published
    ]


def _as_resumed(store: Store, report: IndexReport) -> IndexReport:
    """A resumed batch's report, counting the images its killed run stored as its new images
    (its re-ingest found them already indexed, by the batch itself)."""
    owned = store.images_per_batch("images", [report.batch_id]).get(report.batch_id, 0)
    earlier = max(0, owned - report.new_images)
    return replace(
        report,
        new_images=report.new_images + earlier,
        duplicates=max(0, report.duplicates - earlier),
        resumed=True,
    )


@dataclass(frozen=True)
class IndexReport:
    batch_id: str
    success: bool
    new_images: int
    duplicates: int
    people: int
    failures: list[tuple[str, str]]
    publication: Publication | None
    clip_problem: str | None  # why the batch has no CLIP vectors, if it has none
    resumed: bool = False  # an earlier, unpublished batch of the folder was finished
    unchanged: bool = False  # nothing new in the folder: no batch, no run, no new version


def index_folder(
    folder: str | Path,
    settings: Settings | None = None,
    batch_id: str | None = None,
    progress_bar: bool = False,
    resume: bool = True,
    announce: Callable[[str], None] | None = None,
) -> IndexReport:
    """Index `folder` as a batch and publish the search table.

    Without `batch_id`, a batch of the same folder whose run never published (killed, or
    failed) is resumed instead of starting a new one, so its images are published once
    (`unfinished_folder_batches`); when there are several, each is finished, oldest first, and
    the last one's report returned. `resume=False` always starts a new batch. `announce` is
    told which batch is resumed before its run starts.
    """
    settings = settings or Settings.from_env()
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    settings.storage.home.mkdir(parents=True, exist_ok=True)
    store = settings.storage.open_store()
    if batch_id is None and resume and _unpublished_folder_batches(store, folder):
        unfinished = unfinished_folder_batches(store, open_instance(settings.storage.home), folder)
        report: IndexReport | None = None
        for resumed in unfinished:
            if announce is not None:
                announce(
                    f"resuming batch {resumed}: an earlier run of this folder stopped before "
                    "publishing it"
                )
            report = _as_resumed(store, index_batch(resumed, settings, progress_bar))
            if not report.success:
                break
        if report is not None:
            return report
    if batch_id is None and resume:
        unchanged = _unchanged_folder(store, folder)
        if unchanged is not None:
            return unchanged
    batch_id = batch_id or new_batch_id(folder)
    store.register_batch(batch_id, "folder", str(folder))
    return index_batch(batch_id, settings, progress_bar)


def _unchanged_folder(store: Store, folder: Path) -> IndexReport | None:
    """The report of a re-index with nothing to do, or None when the folder has news.

    Nothing to do: every file's bytes are already indexed (from this folder or any other),
    and every other file already failed, unchanged since. Then no batch is registered, no
    run started and no version published, and the command takes seconds, not a model load.
    """
    try:
        latest = store.resolve_publication()
    except NothingPublishedError:
        return None
    ids: dict[str, str] = {}
    unreadable: list[str] = []
    for item in LocalFolderSource(str(folder)).items():
        if isinstance(item, SourceItem):
            ids[item.source_uri] = image_id_of(item.data)
        else:
            unreadable.append(item.source_uri)
    known = store.known_image_ids(ids.values())
    others = [uri for uri, image_id in ids.items() if image_id not in known] + unreadable
    failed = store.latest_failures(others)
    for uri in others:
        if uri not in failed or _modified_at(uri) > failed[uri][0]:
            return None  # new, or changed since it failed: index it
    return IndexReport(
        batch_id="",
        success=True,
        new_images=0,
        duplicates=sum(1 for image_id in ids.values() if image_id in known),
        people=0,
        failures=[(uri, failed[uri][1]) for uri in sorted(others)],
        publication=latest,
        clip_problem=None,
        unchanged=True,
    )


def _modified_at(path: str) -> datetime:
    try:
        return datetime.fromtimestamp(Path(path).stat().st_mtime, UTC)
    except OSError:
        return datetime.max.replace(tzinfo=UTC)  # gone or unreadable now: look again


def index_source(
    name: str,
    settings: Settings | None = None,
    batch_id: str | None = None,
    progress_bar: bool = False,
) -> IndexReport:
    """Run configured source `name` now, as a new batch (what its schedule does on a tick)."""
    settings = settings or Settings.from_env()
    specs = {s.name: s for s in load_sources(settings.sources_path)}
    if name not in specs:
        where = settings.sources_path or "no sources file (POSEFRAMER_SOURCES)"
        known = ", ".join(sorted(specs)) or "none"
        raise KeyError(f"no source named {name!r} in {where}; configured: {known}")
    spec = specs[name]
    settings.storage.home.mkdir(parents=True, exist_ok=True)
    batch_id = batch_id or spec.batch_id(datetime.now(UTC))
    spec.register_batch(settings.storage.open_store(), batch_id)
    return index_batch(batch_id, settings, progress_bar, tags={SOURCE_TAG: name})


PARTITION_TAG = "dagster/partition"


def index_batch(
    batch_id: str,
    settings: Settings,
    progress_bar: bool = False,
    tags: dict[str, str] | None = None,
) -> IndexReport:
    """Index a registered batch end to end, in-process, recorded in the home's instance."""
    store = settings.storage.open_store()
    instance = open_instance(settings.storage.home)
    release_dead_runs(instance)
    instance.add_dynamic_partitions(INGEST_BATCHES, [batch_id])
    defs = build_definitions(settings, progress_bar=progress_bar)
    # With a progress bar the per-step log lines would only repeat it.
    log_level = "WARNING" if progress_bar else "INFO"
    result = defs.resolve_job_def(INDEX_JOB).execute_in_process(
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        partition_key=batch_id,
        instance=instance,
        tags={**(tags or {}), PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()},
        raise_on_error=False,
    )
    metadata: dict[str, dict[str, object]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        metadata[mat.asset_key.to_user_string()] = dict(mat.metadata)
    ingest = metadata.get("source_images", {})
    kp = metadata.get("keypoints", {})
    clip = metadata.get("clip_embeddings", {})
    clip_problem = None
    if _value(clip, "clip_available") is False:
        clip_problem = str(_value(clip, "reason"))
    failures = [(f["source_uri"], f["reason"]) for f in store.failures_for_batches([batch_id])]
    publication = None
    if "search_index" in metadata:
        publication = store.resolve_publication(
            _int(_value(metadata["search_index"], "table_version"))
        )
    return IndexReport(
        batch_id=batch_id,
        success=result.success,
        new_images=_int(_value(ingest, "new_images")),
        duplicates=_int(_value(ingest, "duplicates")),
        people=_int(_value(kp, "people")),
        failures=failures,
        publication=publication,
        clip_problem=clip_problem,
    )


def _value(metadata: dict[str, object], key: str) -> object:
    """The plain value of a materialization's metadata entry (None when absent)."""
    entry = metadata.get(key)
    return getattr(entry, "value", entry)


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def main(argv: list[str] | None = None) -> int:
    """`python -m assets.indexing`: what `poseframer index` runs, with `--source` too."""
    parser = argparse.ArgumentParser(
        prog="poseframer index",
        description="Index a folder of images, or run a configured source, as a new batch.",
    )
    parser.add_argument("folder", type=Path, nargs="?", help="folder of images")
    parser.add_argument(
        "--source", help="run this source of the sources file (POSEFRAMER_SOURCES) instead"
    )
    parser.add_argument("--batch-id", default=None, help="batch id (default: time + folder name)")
    parser.add_argument(
        "--new-batch",
        action="store_true",
        help="start a new batch even if an earlier run of the folder stopped before publishing "
        "(by default that batch is resumed)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if (args.folder is None) == (args.source is None):
        parser.error("give either a folder or --source NAME")
    try:
        settings = Settings.from_env()
    except ValueError as exc:  # pydantic's ValidationError is one
        print(f"error: {describe_settings_error(exc)}", file=sys.stderr)
        return 2
    return run_index(
        settings,
        folder=args.folder,
        source=args.source,
        batch_id=args.batch_id,
        new_batch=args.new_batch,
        progress=not args.no_progress and sys.stderr.isatty(),
    )


def run_index(
    settings: Settings,
    folder: Path | None = None,
    source: str | None = None,
    batch_id: str | None = None,
    new_batch: bool = False,
    progress: bool = False,
) -> int:
    """Index `folder` (or run configured `source`) in this process and print the report, as
    `poseframer index` and `python -m assets.indexing` do; the command's exit code."""
    if source is not None:
        try:
            report = index_source(source, settings, batch_id, progress)
        except (KeyError, SourcesConfigError) as exc:
            print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
            return 2
    elif folder is None or not folder.is_dir():
        print(f"error: not a folder: {folder}", file=sys.stderr)
        return 2
    else:
        report = index_folder(
            folder,
            settings,
            batch_id=batch_id,
            progress_bar=progress,
            resume=not new_batch,
            announce=lambda message: print(message, flush=True),
        )
    return print_report(report, settings, folder)


def print_report(report: IndexReport, settings: Settings, folder: Path | None) -> int:
    """What an indexing run did, on stdout (problems on stderr); its exit code."""
    pub = report.publication
    if report.unchanged:
        print(f"nothing new in {folder}: no new batch, no new version")
        print(f"already indexed {report.duplicates} image(s)")
        if report.failures:
            print(f"known failures  {len(report.failures)} (unchanged since they failed)")
        if pub is not None:
            print(f"table version  {pub.version} ({pub.tag}), {pub.rows} rows")
        return 0
    print(f"batch          {report.batch_id}" + (" (resumed)" if report.resumed else ""))
    print(f"new images     {report.new_images}")
    print(f"duplicates     {report.duplicates} (already indexed, skipped)")
    print(f"people         {report.people}")
    print(f"failures       {len(report.failures)}")
    for uri, reason in report.failures[:20]:
        print(f"  - {uri}: {reason}")
    if len(report.failures) > 20:
        print(f"  … and {len(report.failures) - 20} more (table ingest_failures)")
    if pub is not None:
        print(f"table version  {pub.version} ({pub.tag}), {pub.rows} rows")
        print(f"models         {pub.models}")
    print(f"home           {settings.storage.home}")
    if report.clip_problem:
        print(
            f"WARNING: indexed without CLIP vectors, text search is off: {report.clip_problem}. "
            "Pose search works. To enable text search: " + CONFIGURE_HINT,
            file=sys.stderr,
        )
    if not report.success:
        print("error: the indexing run failed; see the log above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
