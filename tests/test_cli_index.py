"""`poseframer index`: the options reach the indexer (`python -m assets.indexing`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from serving import cli


@pytest.mark.parametrize(
    ("options", "passed"),
    [
        ([], []),
        (["--batch-id", "mine"], ["--batch-id", "mine"]),
        (["--new-batch"], ["--new-batch"]),
    ],
)
def test_index_passes_its_options_to_the_indexer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: list[str], passed: list[str]
) -> None:
    ran: list[list[str]] = []

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[bytes]:
        ran.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(cli.subprocess, "run", run)
    assert cli.main(["index", str(tmp_path), *options]) == 0
    assert ran == [[sys.executable, "-m", "assets.indexing", str(tmp_path), *passed]]
