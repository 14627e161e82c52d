"""The search API end to end at scale: keypoints + text queries over HTTP on loopback.

    python -m benchmarks.api_bench [--rows 100000] [--queries 200]

Publishes `--rows` synthetic rows with the real vector sizes (`benchmarks.search_bench`;
an ANN index is built on publish above `storage.ann.ANN_MIN_ROWS` rows), starts the real
server (`python -m poseframer serve`, uvicorn) on 127.0.0.1 and sends keypoints + text queries
one at a time, timing each request from the client. The CLIP model is a random-weight one
with CLIP's 512-d output and tiny towers (`poseframer-bench-clip-512.json` here): it
exercises the plumbing at the real vector size, its results mean nothing, and the time a real
model takes
is not in these figures. So the model time — the pose embedding and the text encoding of the
same queries, measured in this process — is printed beside the end-to-end time, and the
figure to compare with the goal (≤ 50 ms plus model time) is their difference.

Last line: one JSON object with rows, e2e_p50_ms, e2e_p99_ms, model_p50_ms,
e2e_minus_model_p50_ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa

from benchmarks.live_server import live_server
from benchmarks.load_bench import STANDING
from benchmarks.paths import REPO
from benchmarks.report import print_report
from benchmarks.search_bench import CLIP_DIM, POSE_DIM, synthetic_rows

BENCH_CLIP = REPO / "benchmarks" / "poseframer-bench-clip-512.json"
BENCH_CLIP_MODEL = "poseframer-bench-clip-512"
TEXTS = (
    "a dancer mid-leap",
    "a person sitting on a chair",
    "someone reaching up with both arms",
    "a martial artist kicking",
    "a woman reading a book",
)


def poses(count: int, seed: int) -> list[list[list[float]]]:
    """Standing figures with every joint jittered: full poses, no don't-care joints."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        jitter = rng.normal(scale=6.0, size=(len(STANDING), 2))
        out.append(
            [[x + dx, y + dy, 1.0] for (x, y), (dx, dy) in zip(STANDING, jitter, strict=True)]
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from config.settings import Settings
    from pipelines.catalog import clip_models
    from pipelines.pose.keypoints import pose_from_keypoint_list
    from pipelines.query import pose_vector, text_vector
    from storage.publishing import publish_search_rows
    from storage.store import Store

    settings = Settings.from_env(
        clip_model=BENCH_CLIP_MODEL, clip_pretrained="random", clip_config=str(BENCH_CLIP)
    )
    embedder = settings.models.pose()
    encoder = clip_models.load(
        "open-clip", model=BENCH_CLIP_MODEL, pretrained="random", config_path=str(BENCH_CLIP)
    )
    queries = [(kp, TEXTS[i % len(TEXTS)]) for i, kp in enumerate(poses(args.queries, args.seed))]
    # Model time, in this process: what a query costs before any search.
    text_vector(TEXTS[0], encoder)  # load and warm
    model_ms = []
    for kp, text in queries:
        t = time.perf_counter()
        pose_vector(pose_from_keypoint_list(kp), embedder)
        text_vector(text, encoder)
        model_ms.append((time.perf_counter() - t) * 1000)

    home = Path(tempfile.mkdtemp(prefix="poseframer-api-bench-"))
    try:
        store = Store.at_home(home)
        table = pa.concat_tables(
            t
            for t, *_ in synthetic_rows(
                args.rows, args.seed, pose_model=embedder.model_id, clip_model=encoder.model_id
            )
        )
        start = time.perf_counter()
        publication = publish_search_rows(
            store, ["bench"], table, POSE_DIM, CLIP_DIM, "bench-framing"
        )
        publish_s = time.perf_counter() - start
        del table
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")},
            "POSEFRAMER_HOME": str(home),
            "POSEFRAMER_CLIP_MODEL": BENCH_CLIP_MODEL,
            "POSEFRAMER_CLIP_PRETRAINED": "random",
            "POSEFRAMER_CLIP_CONFIG": str(BENCH_CLIP),
        }
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        with (
            live_server(env, home / "server.log", timeout=180) as server,
            httpx.Client(base_url=server.base, timeout=60) as client,
        ):
            deadline = time.monotonic() + 180
            while not client.get("/health").json()["text_search"]["available"]:
                if time.monotonic() > deadline:
                    raise SystemExit("the server's CLIP model did not load within 180 s")
                time.sleep(0.5)
            for round_ in range(2):  # a warm-up round (loads the snapshot and CLIP), then timed
                latencies = []
                for kp, text in queries:
                    body = {"keypoints": kp, "text": text, "lambda": 0.5, "k": 10}
                    t = time.perf_counter()
                    response = client.post("/search", json=body)
                    elapsed = (time.perf_counter() - t) * 1000
                    if round_ == 1:
                        latencies.append(elapsed)
                        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code != 200 and round_ == 0:
                        raise SystemExit(f"search failed: {response.status_code} {response.text}")
            ann_used = client.get("/health").json().get("ann_index")
    finally:
        shutil.rmtree(home, ignore_errors=True)

    e2e_p50 = float(np.percentile(latencies, 50))
    model_p50 = float(np.percentile(model_ms, 50))
    result = {
        "rows": args.rows,
        "version": publication.version,
        "e2e_p50_ms": round(e2e_p50, 2),
        "e2e_p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "model_p50_ms": round(model_p50, 2),
        "e2e_minus_model_p50_ms": round(e2e_p50 - model_p50, 2),
        "statuses": {str(k): v for k, v in statuses.items()},
        "ann_index": ann_used,
        "publish_s": round(publish_s, 1),
        "queries": args.queries,
    }
    print_report(result, width=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
