"""`poseframer demo` from a fresh home to its first answer, and a no-op re-index after it.

    python -m benchmarks.demo_bench [--samples samples/corpus] [--timeout 900]

In a fresh temporary POSEFRAMER_HOME (the rest of the environment as it is, so CLIP is
whatever this machine has: offline, the demo indexes and serves without it):

(a) starts `python -m poseframer demo --port <free port>` and times, from the start, when
    `/health` first answers (the corpus is indexed and the server is up) and when a POST
    /search with a keypoints pose first returns 200 with results (the path a user waits on);
(b) with that server still running, runs `python -m poseframer index <samples>` again on the now
    indexed home and times it, and reports whether the published table version, and the one
    `/health` serves, changed. A re-index of unchanged images should add no rows and leave
    the served version as it was. The baseline beside it, in the same run: the same re-index
    with `--new-batch`, the whole Dagster run every re-index made before it checked for news.

Last line: one JSON object (`benchmarks.report.print_report`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.live_server import ServerError, free_port, stop, wait_healthy
from benchmarks.paths import REPO
from benchmarks.report import print_report
from pipelines.sources.base import CREDITS_FILE

DEFAULT_SAMPLES = REPO / "samples" / "corpus"
NOOP_REINDEX_GOAL_S = 10.0
# A standing figure, arms a little out (COCO-17 [x, y, score] in pixels): any indexed figure
# answers it, so the first 200 with results marks "search works".
STANDING = [
    [50, 20, 1], [53, 17, 1], [47, 17, 1], [56, 19, 1], [44, 19, 1], [62, 40, 1], [38, 40, 1],
    [66, 62, 1], [34, 62, 1], [68, 84, 1], [32, 84, 1], [57, 92, 1], [43, 92, 1], [58, 127, 1],
    [42, 127, 1], [58, 162, 1], [42, 162, 1],
]  # fmt: skip


def fresh_env(home: Path) -> dict[str, str]:
    """This environment with `home` as the only PoseFramer home (no inherited Dagster home)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env["POSEFRAMER_HOME"] = str(home)
    return env


def first_answer(base: str, process: subprocess.Popen[bytes], deadline: float) -> int:
    """Poll a keypoints search until it returns 200 with results; the number of results.
    A 503 (models still loading) or an empty page is retried until `deadline`."""
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"the demo exited with {process.returncode}")
        try:
            response = httpx.post(
                f"{base}/search", json={"keypoints": STANDING, "k": 5}, timeout=30
            )
            if response.status_code == 200 and response.json()["results"]:
                return len(response.json()["results"])
            last = f"{response.status_code}: {response.text[:200]}"
        except httpx.TransportError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise ServerError(f"no search results before the deadline; last answer {last}")


def served_version(base: str) -> Any:
    return httpx.get(f"{base}/health", timeout=10).json()["table_version"]


def published_version(home: Path) -> int | None:
    from storage.records import NothingPublishedError
    from storage.store import Store

    try:
        return Store.at_home(home).resolve_publication().version
    except NothingPublishedError:
        return None


def timed_index(
    samples: Path, env: dict[str, str], *options: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """`poseframer index [options] samples` as a user runs it, and its wall time in seconds."""
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "poseframer", "index", *options, str(samples)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return done, time.monotonic() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds allowed for the first answer"
    )
    args = parser.parse_args(argv)
    samples: Path = args.samples.resolve()
    if not samples.is_dir():
        print(f"error: not a folder: {samples}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="poseframer-demo-bench-") as tmp:
        home, log = Path(tmp) / "home", Path(tmp) / "demo.log"
        env = fresh_env(home)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "poseframer", "demo", "--samples", str(samples)]
        start = time.monotonic()
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*command, "--host", "127.0.0.1", "--port", str(port)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_healthy(base, process, log, args.timeout)
            healthy_s = time.monotonic() - start
            results = first_answer(base, process, start + args.timeout)
            first_answer_s = time.monotonic() - start

            served_before, published_before = served_version(base), published_version(home)
            reindex, reindex_s = timed_index(samples, env)
            served_after, published_after = served_version(base), published_version(home)
            # The baseline: what every re-index of an indexed folder did before the no-op
            # check, a whole run over a new batch (`--new-batch` still does exactly that).
            full, full_s = timed_index(samples, env, "--new-batch")
            published_full = published_version(home)
        except ServerError as exc:
            print(f"error: {exc}\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
            return 1
        finally:
            stop(process)
    if reindex.returncode != 0:
        print(reindex.stdout[-2000:] + reindex.stderr[-2000:], file=sys.stderr)
    images = sum(
        1
        for p in samples.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.name != CREDITS_FILE
    )
    print_report(
        {
            "samples": str(samples),
            "images": images,
            "health_up_s": round(healthy_s, 1),
            "first_answer_s": round(first_answer_s, 1),
            "first_answer_results": results,
            "noop_reindex_s": round(reindex_s, 1),
            "baseline_full_reindex_s": round(full_s, 1),
            "baseline_published_after": published_full,
            "baseline_exit_code": full.returncode,
            "noop_reindex_goal_s": NOOP_REINDEX_GOAL_S,
            "noop_reindex_ok": reindex_s <= NOOP_REINDEX_GOAL_S,
            "reindex_exit_code": reindex.returncode,
            "published_before": published_before,
            "published_after": published_after,
            "served_before": served_before,
            "served_after": served_after,
            "served_version_changed": served_before != served_after,
            "served_version_goal": "unchanged",
        }
    )
    return 0 if reindex.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
