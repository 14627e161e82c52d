"""`python -m poseframer serve` as a real process on loopback, for benchmarks and tests: start
it, wait until `/health` answers, stop it with SIGINT (as Ctrl-C would)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.paths import REPO


class ServerError(RuntimeError):
    """The server exited, or did not answer, while it was being started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    base: str
    process: subprocess.Popen[bytes]
    log: Path
    health: Any  # the first `/health` answer
    stopped_cleanly: bool = False  # set on exit: stopped within the grace time of SIGINT


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


def wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> Any:
    """The first 200 answer of `base/health`; ServerError if the process exits first or
    nothing answers within `timeout` seconds (with the end of its log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"server exited with {process.returncode}:\n{_log_tail(log)}")
        try:
            response = httpx.get(f"{base}/health", timeout=2)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise ServerError(f"no answer from {base}/health within {timeout} s:\n{_log_tail(log)}")


def stop(process: subprocess.Popen[bytes], grace: float = 20) -> bool:
    """SIGINT, then kill after `grace` seconds; whether it stopped by itself in time."""
    if process.poll() is not None:
        return True
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=grace)
        return True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False


@contextmanager
def live_server(env: Mapping[str, str], log: Path, timeout: float = 120) -> Iterator[LiveServer]:
    """The service on a free loopback port with environment `env`, its output in `log`."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "poseframer",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(base, process, log, None)
    try:
        server.health = wait_healthy(base, process, log, timeout)
        yield server
    finally:
        server.stopped_cleanly = stop(process)
