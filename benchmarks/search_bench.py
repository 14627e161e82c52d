"""Hybrid search at scale: the service's ANN ranking against exact brute force.

    python -m benchmarks.search_bench --rows 1000000 [--queries 200]

Publishes a served table of synthetic rows with the real vector sizes (pose 62, CLIP 512;
clustered so that neighbours exist: 300 pose clusters, 1,000 CLIP clusters, drawn
independently, fixed seed; 3 % of rows are images with no person) through
`storage.publishing.publish_search_rows`, which builds the ANN index as every publish does. A
separate *server* process then loads that version the way the service does (`SnapshotCache`)
and answers hybrid queries (λ drawn in [0.2, 0.8], the pose near a stored person's, the CLIP
vector another row's) with the service's own ranking and page code (`pipelines.retrieval.ranking`,
`pipelines.retrieval.paging.page`): its latencies and peak RSS are the server-side figures.
This process holds the same vectors in memory and answers the same queries by exact brute
force (`pipelines.retrieval.exact.hybrid_search`, the service's exact path), for recall@10 and
the speed-up.

Prints a table and, as its last line, one JSON object: rows, p50_ms, p99_ms, recall10,
brute_p50_ms, speedup, index_build_s, rss_mb (the server's peak), and more.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from benchmarks.report import print_report
from pipelines.retrieval.calibration import Calibration
from pipelines.retrieval.exact import VectorColumns, hybrid_search
from storage import schemas
from storage.ann_files import version_dir
from storage.publishing import publish_search_rows

POSE_DIM, CLIP_DIM = 62, 512
CHUNK = 100_000
NO_PERSON_SHARE = 0.03
POSE_MODEL, CLIP_MODEL, KEYPOINT_MODEL = "bench-pose", "bench-clip", "bench-keypoints"


def clustered(rng: np.random.Generator, n: int, dim: int, centres: np.ndarray) -> np.ndarray:
    x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.normal(size=(n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _fixed_list(values: np.ndarray, mask: np.ndarray) -> pa.Array:
    dim = values.shape[1]
    flat = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), dim)
    return pa.FixedSizeListArray.from_arrays(
        flat.values, dim, mask=pa.array(~mask)
    )  # null where the row has no vector


def synthetic_rows(
    rows: int,
    seed: int,
    pose_clusters: int = 300,
    clip_clusters: int = 1000,
    pose_model: str = POSE_MODEL,
    clip_model: str = CLIP_MODEL,
) -> Iterator[tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]]:
    """Chunks of served-table rows, with their pose vectors, pose mask and CLIP vectors
    (the model ids are what the rows say made them)."""
    rng = np.random.default_rng(seed)
    pose_centres = rng.normal(size=(pose_clusters, POSE_DIM))
    clip_centres = rng.normal(size=(clip_clusters, CLIP_DIM))
    schema = schemas.search(POSE_DIM, CLIP_DIM)
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        pose = clustered(rng, n, POSE_DIM, pose_centres)
        has_pose = rng.random(n) >= NO_PERSON_SHARE
        pose[~has_pose] = 0.0
        clip = clustered(rng, n, CLIP_DIM, clip_centres)
        image_ids = [f"img{i:08d}" for i in range(start, start + n)]
        person = np.where(has_pose, 0, -1).astype(np.int32)
        columns = {
            "id": pa.array(
                [f"{im}:{'0' if p else '-'}" for im, p in zip(image_ids, has_pose, strict=True)]
            ),
            "image_id": pa.array(image_ids),
            "batch_id": pa.array(["bench"] * n),
            "person_index": pa.array(person),
            "source": pa.array(["bench"] * n),
            "source_uri": pa.array([f"bench://{im}" for im in image_ids]),
            "width": pa.array(np.full(n, 640, np.int32)),
            "height": pa.array(np.full(n, 480, np.int32)),
            "framing": pa.array(np.where(has_pose, "full_body", "no_person").tolist()),
            "keypoints": pa.nulls(n, schema.field("keypoints").type),
            "pose_vector": _fixed_list(pose, has_pose),
            "clip_vector": _fixed_list(clip, np.ones(n, bool)),
            "keypoint_model": pa.array([KEYPOINT_MODEL] * n),
            "pose_model": pa.array([pose_model] * n),
            "clip_model": pa.array([clip_model] * n),
        }
        for field in schemas.PROVENANCE:
            columns[field.name] = pa.nulls(n, field.type)
        columns["near_duplicate_group"] = pa.array(image_ids)
        table = pa.table(columns).cast(schema)
        yield table, pose, has_pose, clip


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the
    parent that started it)."""
    return _status_mb("VmHWM")


def current_rss_mb() -> float:
    return _status_mb("VmRSS")


# --------------------------------------------------------------------------- server process


def serve(workdir: Path) -> int:
    """The server side: load the published version as the service does, answer the queries."""
    from pipelines.retrieval.paging import page
    from pipelines.retrieval.ranking import RankQuery, rank
    from serving.search_service import SearchQuery
    from storage.snapshot import SnapshotCache
    from storage.store import Store

    baseline_rss = current_rss_mb()
    store = Store(workdir / "lancedb", workdir / "blobs")
    start = time.perf_counter()
    snapshot = SnapshotCache(store).get()
    load_s = time.perf_counter() - start
    if snapshot.ann is None:
        raise SystemExit("the published version has no ANN index")
    data = np.load(workdir / "queries.npz")
    rules = SearchQuery(k=10).page_rules
    results: list[list[str]] = []
    latencies: list[float] = []
    pools: list[int] = []
    for round_ in range(2):  # the first round warms caches; the second is timed
        results, latencies, pools = [], [], []
        for lam, pose, clip in zip(data["lam"], data["pose"], data["clip"], strict=True):
            t = time.perf_counter()
            ranking = rank(snapshot, RankQuery(pose[None, :], clip, float(lam), None, None), 10)
            hits, _ = page(snapshot, ranking, rules, None, True)
            latencies.append((time.perf_counter() - t) * 1000)
            results.append([str(h.row["id"]) for h in hits])
            pools.append(ranking.pool)
        if round_ == 0:
            warm_rss = current_rss_mb()
    out = {
        "ids": results,
        "latencies_ms": latencies,
        "pools": pools,
        "load_s": load_s,
        "rss_mb": rss_mb(),
        "rss_now_mb": current_rss_mb(),
        "rss_after_warmup_mb": warm_rss,
        "rss_before_load_mb": baseline_rss,
        "nprobe": snapshot.ann.nprobe,
        "lists": snapshot.ann.meta.lists,
    }
    (workdir / "server.json").write_text(json.dumps(out))
    return 0


# --------------------------------------------------------------------------- driver


def build(store: Any, rows: int, seed: int) -> tuple[Any, list[str], VectorColumns, dict[str, Any]]:
    """Publish `rows` synthetic rows; the publication, its row ids in scan order, the same
    vectors in that order (for brute force), and the timings and index description."""
    start = time.perf_counter()
    tables, poses, masks, clips = [], [], [], []
    for table, pose, mask, clip in synthetic_rows(rows, seed):
        tables.append(table)
        poses.append(pose)
        masks.append(mask)
        clips.append(clip)
    generate_s = time.perf_counter() - start
    pose_all, mask_all, clip_all = (
        np.concatenate(poses),
        np.concatenate(masks),
        np.concatenate(clips),
    )
    del poses, clips
    start = time.perf_counter()
    publication = publish_search_rows(
        store, ["bench"], pa.concat_tables(tables), POSE_DIM, CLIP_DIM, "bench-framing"
    )
    publish_s = time.perf_counter() - start
    del tables
    meta_path = Path(version_dir(store.files()[1], publication.version)) / "meta.json"
    meta = json.loads(meta_path.read_text())
    # The server numbers rows in the table's scan order: the row ids say which is which.
    ids = store.search_column_at(publication.version, "id").to_pylist()
    order = {row_id: i for i, row_id in enumerate(ids)}
    generated_ids = [f"img{i:08d}:{'0' if m else '-'}" for i, m in enumerate(mask_all)]
    position = np.array([order[g] for g in generated_ids])
    columns = VectorColumns(
        np.empty_like(pose_all), np.empty_like(mask_all), np.empty_like(clip_all),
        np.ones(len(ids), bool),
    )  # fmt: skip
    columns.pose[position], columns.pose_mask[position] = pose_all, mask_all
    columns.clip[position] = clip_all
    timings = {"generate_s": generate_s, "publish_s": publish_s, "meta": meta}
    return publication, ids, columns, timings


def make_queries(
    columns: VectorColumns, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """λ in [0.2, 0.8], a pose near a stored person's, another row's CLIP vector."""
    rng = np.random.default_rng(seed + 1)
    posed = np.flatnonzero(columns.pose_mask)
    lams = rng.uniform(0.2, 0.8, count).astype(np.float32)
    base = columns.pose[posed[rng.integers(0, posed.size, count)]]
    pose_q = base + 0.05 * rng.normal(size=base.shape).astype(np.float32)
    pose_q /= np.linalg.norm(pose_q, axis=1, keepdims=True)
    clip_q = columns.clip[rng.integers(0, len(columns.clip_mask), count)].copy()
    return lams, pose_q, clip_q


def exact_answers(
    columns: VectorColumns, ids: list[str], calibration: Calibration, queries: tuple[Any, ...]
) -> tuple[list[set[str]], list[float]]:
    """Each query's exact top 10 by brute force, and its time in ms."""
    truth: list[set[str]] = []
    brute: list[float] = []
    for lam, p, c in zip(*queries, strict=True):
        t = time.perf_counter()
        exact = hybrid_search(
            columns, p[None, :], c, float(lam), 10,
            pose_calibration=calibration.pose, clip_calibration=calibration.clip,
        )  # fmt: skip
        brute.append((time.perf_counter() - t) * 1000)
        truth.append({ids[int(r)] for r in exact.rows})
    return truth, brute


def summary(
    args: argparse.Namespace,
    server: dict[str, Any],
    truth: list[set[str]],
    brute: list[float],
    timings: dict[str, Any],
) -> dict[str, Any]:
    recalls = [len(set(got) & want) / 10 for got, want in zip(server["ids"], truth, strict=True)]
    latencies = server["latencies_ms"]
    p50, p99 = float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))
    brute_p50 = float(np.percentile(brute, 50))
    meta = timings["meta"]
    return {
        "rows": args.rows,
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "recall10": round(float(np.mean(recalls)), 4),
        "min_recall10": round(float(np.min(recalls)), 2),
        "brute_p50_ms": round(brute_p50, 2),
        "speedup": round(brute_p50 / p50, 1),
        "index_build_s": round(float(meta["build_s"]), 1),
        "publish_s": round(timings["publish_s"], 1),
        "generate_s": round(timings["generate_s"], 1),
        "snapshot_load_s": round(float(server["load_s"]), 1),
        "rss_mb": round(float(server["rss_mb"])),
        "rss_before_load_mb": round(float(server["rss_before_load_mb"])),
        "index": f"IVF{meta['lists']},SQ8 per side, nprobe ≥ {server['nprobe']}",
        "pool_p50": int(np.percentile(server["pools"], 50)),
        "pool_max": int(max(server["pools"])),
        "queries": args.queries,
        "seed": args.seed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: temp)")
    parser.add_argument("--serve", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        return serve(args.serve)

    from storage.store import Store

    workdir = Path(args.dir or tempfile.mkdtemp(prefix="poseframer-search-bench-"))
    try:
        store = Store(workdir / "lancedb", workdir / "blobs", ann_min_rows=0)  # always indexed
        publication, ids, columns, timings = build(store, args.rows, args.seed)
        queries = make_queries(columns, args.queries, args.seed)
        np.savez(workdir / "queries.npz", lam=queries[0], pose=queries[1], clip=queries[2])
        truth, brute = exact_answers(columns, ids, publication.calibration, queries)
        del columns
        subprocess.run(
            [sys.executable, "-m", "benchmarks.search_bench", "--serve", str(workdir)], check=True
        )
        server = json.loads((workdir / "server.json").read_text())
    finally:
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print_report(summary(args, server, truth, brute, timings), width=44)
    return 0


if __name__ == "__main__":
    sys.exit(main())
