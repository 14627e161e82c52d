"""Hybrid search at scale: the served table's ANN pass plus exact re-ranking, against brute force.

    python -m benchmarks.search_bench --rows 1000000 [--queries 200]

Builds a LanceDB table of synthetic vectors with the real dimensions (pose 62 + CLIP 512,
clustered so neighbours exist, fixed seed), indexes it as a publish does
(IVF-PQ over the concatenated vector, dot product), then times hybrid queries
`[λ·p, (1−λ)·c]` as ANN candidates plus exact re-ranking with `pipelines.scoring` — the
prototype measured for the service, which does not use it yet — and
exact brute force on the same data in the same run. Prints a table and, as its last line, one
JSON object: rows, p50_ms, p99_ms, recall10 (against brute force), brute_p50_ms, speedup,
index_build_s, rss_mb.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa

from pipelines.scoring import VectorColumns, hybrid_search

HYBRID = "hybrid_vector"
# Below this many rows an exact scan is fast enough and an index would only cost time.
ANN_MIN_ROWS = 20_000
POSE_DIM, CLIP_DIM = 62, 512
DIM = POSE_DIM + CLIP_DIM
CHUNK = 100_000
CANDIDATES = 100


def _sub_vectors(dim: int) -> int:
    """A PQ sub-vector count dividing `dim`, aiming at ~8 dimensions per sub-vector."""
    best = 1
    for n in range(1, dim + 1):
        if dim % n == 0 and dim / n >= 4:
            best = n if abs(dim / n - 8) < abs(dim / best - 8) else best
    return best


@dataclass(frozen=True)
class IndexReport:
    indexed: bool
    rows: int
    seconds: float
    kind: str


def build_ann_index(table: Any, dim: int) -> IndexReport:
    """Index the hybrid column (IVF-PQ, dot product) once the table is large enough."""
    rows = int(table.count_rows())
    if rows < ANN_MIN_ROWS:
        return IndexReport(False, rows, 0.0, "exact scan")
    from lancedb.index import IvfPq

    start = time.perf_counter()
    partitions = max(16, int(math.sqrt(rows)))
    table.create_index(
        HYBRID,
        config=IvfPq(
            distance_type="dot",
            num_partitions=partitions,
            num_sub_vectors=_sub_vectors(dim),
        ),
        replace=True,
    )
    seconds = time.perf_counter() - start
    return IndexReport(True, rows, seconds, f"IVF_PQ({partitions} partitions)")


def nearest(
    table: Any,
    query: np.ndarray,
    limit: int,
    where: str | None = None,
    columns: list[str] | None = None,
    nprobes: int = 24,
    refine_factor: int = 5,
) -> pa.Table:
    """The `limit` rows with the largest dot product with `query` (approximate when indexed)."""
    builder = (
        table.search(query.astype(np.float32), vector_column_name=HYBRID)
        .distance_type("dot")
        .limit(limit)
        .nprobes(nprobes)
        .refine_factor(refine_factor)
    )
    if where:
        builder = builder.where(where, prefilter=True)
    if columns:
        builder = builder.select(columns)
    return builder.to_arrow()


def clustered(rng: np.random.Generator, n: int, dim: int, centres: np.ndarray) -> np.ndarray:
    x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.normal(size=(n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_table(db: lancedb.DBConnection, rows: int, seed: int) -> tuple[object, np.ndarray]:
    rng = np.random.default_rng(seed)
    pose_centres = rng.normal(size=(300, POSE_DIM))
    clip_centres = rng.normal(size=(1000, CLIP_DIM))
    table = None
    samples = []
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        hybrid = np.concatenate(
            [clustered(rng, n, POSE_DIM, pose_centres), clustered(rng, n, CLIP_DIM, clip_centres)],
            axis=1,
        )
        samples.append(hybrid[: max(1, n // 1000)])
        batch = pa.table(
            {
                "id": pa.array(np.arange(start, start + n)),
                HYBRID: pa.FixedSizeListArray.from_arrays(pa.array(hybrid.reshape(-1)), DIM),
            }
        )
        if table is None:
            table = db.create_table("search", batch, mode="overwrite")
        else:
            table.add(batch)
    return table, np.concatenate(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nprobes", type=int, default=24)
    parser.add_argument("--refine", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: temp)")
    args = parser.parse_args(argv)

    workdir = Path(args.dir or tempfile.mkdtemp(prefix="poseframer-search-bench-"))
    try:
        db = lancedb.connect(str(workdir))
        start = time.perf_counter()
        table, samples = build_table(db, args.rows, args.seed)
        write_s = time.perf_counter() - start
        report = build_ann_index(table, DIM)
        rng = np.random.default_rng(args.seed + 1)
        queries = []
        for _ in range(args.queries):
            lam = float(rng.uniform(0.2, 0.8))
            base = samples[rng.integers(0, len(samples))]
            other = samples[rng.integers(0, len(samples))]
            pose = base[:POSE_DIM] + 0.05 * rng.normal(size=POSE_DIM)
            pose = pose / np.linalg.norm(pose)
            clip = other[POSE_DIM:]
            queries.append((lam, pose.astype(np.float32), clip.astype(np.float32)))

        def hybrid(lam: float, pose: np.ndarray, clip: np.ndarray, exact: bool) -> list[int]:
            q = np.concatenate([lam * pose, (1 - lam) * clip])
            if exact:
                found = (
                    table.search(q, vector_column_name=HYBRID)  # type: ignore[attr-defined]
                    .distance_type("dot")
                    .bypass_vector_index()
                    .limit(10)
                    .select(["id"])
                    .to_arrow()
                )
                return found.column("id").to_pylist()
            found = nearest(table, q, CANDIDATES, columns=["id", HYBRID], nprobes=args.nprobes,
                            refine_factor=args.refine)  # fmt: skip
            vectors = found.column(HYBRID).combine_chunks().flatten().to_numpy()
            vectors = vectors.reshape(-1, DIM)
            columns = VectorColumns(
                vectors[:, :POSE_DIM],
                np.ones(len(vectors), bool),
                vectors[:, POSE_DIM:],
                np.ones(len(vectors), bool),
            )
            scored = hybrid_search(columns, pose, clip, lam, 10)
            ids = found.column("id").to_numpy()
            return [int(i) for i in ids[scored.rows]]

        hybrid(*queries[0], exact=False)  # warm caches
        latencies, recalls = [], []
        for lam, pose, clip in queries:
            t = time.perf_counter()
            got = hybrid(lam, pose, clip, exact=False)
            latencies.append((time.perf_counter() - t) * 1000)
            truth = hybrid(lam, pose, clip, exact=True)
            recalls.append(len(set(got) & set(truth)) / 10)
        server_rss = rss_mb()
        brute = []
        for lam, pose, clip in queries[: min(20, len(queries))]:
            t = time.perf_counter()
            hybrid(lam, pose, clip, exact=True)
            brute.append((time.perf_counter() - t) * 1000)
    finally:
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    p50, p99 = float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))
    brute_p50 = float(np.percentile(brute, 50))
    result = {
        "rows": args.rows,
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "recall10": round(float(np.mean(recalls)), 4),
        "brute_p50_ms": round(brute_p50, 2),
        "speedup": round(brute_p50 / p50, 1),
        "index_build_s": round(report.seconds, 1),
        "index": report.kind,
        "write_s": round(write_s, 1),
        "rss_mb": round(server_rss, 0),
        "queries": args.queries,
        "nprobes": args.nprobes,
        "refine_factor": args.refine,
    }
    print(f"{'metric':<16}{'value':>14}")
    for key, value in result.items():
        print(f"{key:<16}{value!s:>14}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
