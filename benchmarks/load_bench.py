"""The search service under concurrent load while a new batch is published.

    python -m benchmarks.load_bench [--clients 32] [--duration 60] [--images DIR]

Indexes half of the images (the evalset's when present, else synthetic ones) into a temporary
home with the real command (`python -m assets.indexing`), starts the real server
(`python -m poseframer serve`) on 127.0.0.1, and runs `--clients` concurrent clients issuing
keypoint searches for `--duration` seconds. At `--publish-at` of the way through, the other
half is indexed and published by a second `python -m assets.indexing` process while the load
goes on. Prints requests, errors, latency percentiles (overall and while publishing),
requests/s, and whether (and how soon after the publication was recorded) responses came from
the new version; the last line is one JSON object.

Bounded: every request has a timeout, the load stops at the deadline (held open at most
`--publish-timeout` seconds more if the publish is still running, to see the new version), and
the server is stopped at the end. All traffic is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from benchmarks.live_server import live_server
from benchmarks.paths import REPO, TINY_CLIP, evalset_dir
from storage.store import Store

DEFAULT_IMAGES = evalset_dir() / "images"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
# A person standing, arms down (COCO-17 order), used when the index holds nobody.
STANDING = [
    (50, 20), (53, 17), (47, 17), (56, 19), (44, 19), (62, 40), (38, 40), (66, 62), (34, 62),
    (68, 84), (32, 84), (57, 92), (43, 92), (58, 127), (42, 127), (58, 162), (42, 162),
]  # fmt: skip


@dataclass
class LoadStats:
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (sent at, seconds)
    errors: dict[str, int] = field(default_factory=dict)
    versions: dict[int, float] = field(default_factory=dict)  # version → first seen (epoch s)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def bench_env(home: Path, clip: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env["POSEFRAMER_HOME"] = str(home)
    if clip == "tiny":  # the tests' random-weight CLIP: the plumbing, with no download
        env.update(
            POSEFRAMER_CLIP_MODEL="poseframer-tiny-clip",
            POSEFRAMER_CLIP_PRETRAINED="random",
            POSEFRAMER_CLIP_CONFIG=str(TINY_CLIP),
        )
    return env


def synthetic_images(folder: Path, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for i in range(count):
        base = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)
        image = Image.fromarray(base).resize((320, 240), Image.Resampling.BICUBIC)
        image.save(folder / f"synthetic-{seed}-{i:04d}.jpg", quality=90)


def split_images(source: Path | None, root: Path, synthetic: int) -> tuple[Path, Path, str]:
    """Two folders: the first batch and the one published under load."""
    first, second = root / "first", root / "second"
    first.mkdir()
    second.mkdir()
    if source is not None and source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        random.Random(0).shuffle(files)
        half = len(files) // 2
        for i, path in enumerate(files):
            target = first if i < half else second
            os.symlink(path.resolve(), target / path.name)  # read in place, never copied
        return first, second, str(source)
    synthetic_images(first, synthetic, seed=1)
    synthetic_images(second, synthetic, seed=2)
    return first, second, f"{2 * synthetic} synthetic images"


def index(folder: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "assets.indexing", str(folder), "--no-progress"]
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def query_keypoints(home: Path) -> list[list[list[float]]]:
    """Poses of people in the index (so searches do real work), or a standing figure."""
    store = Store.at_home(home)
    version = store.resolve_publication().version
    rows = store.search_table_at(version, without=("clip_vector",)).to_pylist()
    poses = [
        [list(r["keypoints"][i : i + 3]) for i in range(0, 51, 3)]
        for r in rows
        if r.get("keypoints") and r.get("pose_vector") is not None
    ]
    return poses[:50] or [[[float(x), float(y), 1.0] for x, y in STANDING]]


async def client_loop(
    client: httpx.AsyncClient,
    base: str,
    poses: list[list[list[float]]],
    stats: LoadStats,
    origin: float,
    stop: asyncio.Event,
    seed: int,
) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        body = {"keypoints": rng.choice(poses), "k": 10}
        sent = time.perf_counter()
        try:
            response = await client.post(f"{base}/search", json=body)
        except httpx.HTTPError as exc:
            stats.error(type(exc).__name__)
            continue
        elapsed = time.perf_counter() - sent
        if response.status_code != 200:
            stats.error(f"HTTP {response.status_code}")
            continue
        stats.latencies.append((sent - origin, elapsed))
        version = int(response.json()["table_version"])
        stats.versions.setdefault(version, time.time())


async def run_load(
    args: argparse.Namespace, base: str, home: Path, second: Path, env: dict[str, str]
) -> dict[str, Any]:
    poses = query_keypoints(home)
    before = Store.at_home(home).resolve_publication().version
    stats = LoadStats()
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    origin = time.perf_counter()
    publish: dict[str, Any] = {}

    async def publisher() -> None:
        await asyncio.sleep(args.duration * args.publish_at)
        publish["started"] = time.perf_counter() - origin
        done = await asyncio.to_thread(index, second, env, args.publish_timeout)
        publish["ended"] = time.perf_counter() - origin
        publish["returncode"] = done.returncode
        if done.returncode != 0:
            publish["stderr"] = done.stderr[-2000:]

    async with httpx.AsyncClient(timeout=args.request_timeout, limits=limits) as client:
        tasks = [
            asyncio.create_task(client_loop(client, base, poses, stats, origin, stop, i))
            for i in range(args.clients)
        ]
        publishing = asyncio.create_task(publisher())
        await asyncio.sleep(args.duration)
        if not publishing.done():  # keep the load on until the publish ends (bounded)
            print("load: the publish is still running; holding the load until it ends")
            await asyncio.wait_for(publishing, timeout=args.publish_timeout)
        await asyncio.sleep(args.settle)  # time for the new version to be seen
        stop.set()
        await asyncio.gather(*tasks)
        await publishing
    after = Store.at_home(home).resolve_publication().version
    wall = time.perf_counter() - origin

    latencies = [lat for _, lat in stats.latencies]
    during = [
        lat
        for at, lat in stats.latencies
        if publish.get("started", wall) <= at <= publish.get("ended", wall)
    ]
    seen_new_at = stats.versions.get(after) if after != before else None
    # From the moment the publication was recorded to the first answer from its version.
    published_at = Store.at_home(home).resolve_publication().published_at.timestamp()
    errors = sum(stats.errors.values())
    return {
        "clients": args.clients,
        "seconds": round(wall, 1),
        "requests": len(latencies) + errors,
        "errors": errors,
        "error_kinds": stats.errors,
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": _ms(percentile(latencies, 50)),
        "p90_ms": _ms(percentile(latencies, 90)),
        "p99_ms": _ms(percentile(latencies, 99)),
        "max_ms": _ms(max(latencies) if latencies else None),
        "p50_ms_while_publishing": _ms(percentile(during, 50)),
        "p99_ms_while_publishing": _ms(percentile(during, 99)),
        "version_before": before,
        "version_after": after,
        "versions_seen": sorted(stats.versions),
        "publish_ok": publish.get("returncode") == 0,
        "publish_started_s": _round(publish.get("started")),
        "publish_ended_s": _round(publish.get("ended")),
        "new_version_visible": seen_new_at is not None,
        "new_version_seen_after_publish_s": None
        if seen_new_at is None
        else round(seen_new_at - published_at, 2),
        "publish_stderr": publish.get("stderr"),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load_bench", description=__doc__)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument(
        "--publish-at", type=float, default=0.5, help="fraction of --duration to publish at"
    )
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument(
        "--synthetic", type=int, default=20, help="images per batch without --images"
    )
    parser.add_argument(
        "--clip",
        choices=["tiny", "env"],
        default="tiny",
        help="tiny: the tests' random-weight CLIP; env: POSEFRAMER_CLIP_*",
    )
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--publish-timeout", type=float, default=600.0)
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds of load after the publish ends"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or not 0 <= args.publish_at <= 1:
        parser.error("need --clients ≥ 1, --duration > 0 and 0 ≤ --publish-at ≤ 1")

    root = Path(tempfile.mkdtemp(prefix="poseframer-load-"))
    try:
        home = root / "home"
        first, second, described = split_images(args.images, root, args.synthetic)
        env = bench_env(home, args.clip)
        print(f"images: {described}; home: {home}")
        started = time.perf_counter()
        done = index(first, env, args.publish_timeout)
        if done.returncode != 0:
            print(done.stdout, done.stderr[-3000:], sep="\n", file=sys.stderr)
            return 1
        print(f"first batch indexed in {time.perf_counter() - started:.1f} s")

        with live_server(env, root / "server.log") as server:
            base = server.base
            print(
                f"server up on {base}; {args.clients} clients for {args.duration:g} s, "
                f"publishing the second batch at {args.publish_at:.0%}"
            )
            result = asyncio.run(run_load(args, base, home, second, env))
        result["images"] = described
        result["device"] = f"{os.cpu_count()} CPUs"
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    print(f"{'requests':<26}{result['requests']}")
    print(f"{'errors':<26}{result['errors']} {result['error_kinds'] or ''}")
    print(f"{'requests/s':<26}{result['requests_per_s']}")
    print(
        f"{'latency p50 / p90 / p99':<26}{result['p50_ms']} / {result['p90_ms']} / "
        f"{result['p99_ms']} ms (max {result['max_ms']})"
    )
    print(
        f"{'while publishing p50/p99':<26}{result['p50_ms_while_publishing']} / "
        f"{result['p99_ms_while_publishing']} ms"
    )
    print(
        f"{'versions':<26}{result['version_before']} → {result['version_after']} "
        f"(seen: {result['versions_seen']})"
    )
    print(
        f"{'new version visible':<26}{result['new_version_visible']} "
        f"({result['new_version_seen_after_publish_s']} s after it was published)"
    )
    print(json.dumps(result))
    ok = result["errors"] == 0 and result["publish_ok"] and result["new_version_visible"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
