"""The layer rules of ARCHITECTURE.md are enforced by ruff (banned-api, TID251) per folder.

Each case lints a probe source as if it were a module inside the layer folder (ruff reads it
from stdin; nothing is written into the package) and checks that a banned import is reported
and a permitted one is not.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def ruff_binary() -> str:
    beside_python = Path(sys.executable).parent / "ruff"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    return found


def banned_api_reports(layer: str, source: str, use_layer_config: bool = True) -> list[str]:
    """The TID251 messages ruff gives `source` as a module of `layer`."""
    config = ["--config", f"{layer}/ruff.toml"] if use_layer_config else []
    done = subprocess.run(
        [
            ruff_binary(),
            "check",
            "--no-cache",
            *config,
            "--output-format",
            "json",
            "--stdin-filename",
            f"{layer}/probe_module.py",
            "-",
        ],
        input=source,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode in (0, 1), done.stderr  # 2: ruff itself failed (bad config, …)
    return [d["message"] for d in json.loads(done.stdout) if d["code"] == "TID251"]


BANNED = [
    ("pipelines", "import dagster"),
    ("pipelines", "from lancedb.table import Table"),
    ("pipelines", "from storage.store import Store"),
    ("pipelines", "import fastapi"),
    ("pipelines", "from assets import definitions"),
    ("pipelines", "import serving.app"),
    ("storage", "import dagster"),
    ("storage", "from fastapi import FastAPI"),
    ("storage", "import torch"),
    ("storage", "import open_clip"),
    ("storage", "from assets.partitions import ingest_batches"),
    ("assets", "import fastapi"),
    ("assets", "from serving import app"),
    ("assets", "import torch"),
    ("serving", "import dagster"),
    ("serving", "from assets.definitions import build_definitions"),
    ("serving", "import lancedb"),
    ("serving", "import torch.nn"),
    ("pipelines", "from config.settings import Settings"),
    ("storage", "import config"),
    ("config", "import dagster"),
    ("config", "from fastapi import FastAPI"),
    ("config", "from assets.definitions import defs"),
    ("config", "from serving.app import create_app"),
    ("poseframer", "import torch"),
    ("poseframer", "from lancedb.table import Table"),
    ("pipelines/retrieval", "from pipelines.pose.keypoints import KeypointDetector"),
    ("pipelines/retrieval", "from pipelines.clip import encoder"),
    ("pipelines/retrieval", "import torch"),
]

PERMITTED = [
    ("pipelines", "import numpy\nimport torch\nfrom PIL import Image\nimport mediapipe"),
    ("pipelines", "from pipelines.records import Pose"),
    ("pipelines/retrieval", "import faiss\nimport pyarrow\nfrom pipelines.records import Pose"),
    ("storage", "import lancedb\nimport pyarrow\nfrom pipelines.records import Pose"),
    (
        "assets",
        "import dagster\nfrom storage.store import Store\nfrom pipelines.sources import base",
    ),
    ("serving", "import fastapi\nfrom storage.store import Store\nfrom pipelines import query"),
    (
        "config",
        "import pydantic\nfrom storage.store import Store\nfrom pipelines.pose import keypoints",
    ),
    ("assets", "from config.settings import Settings"),
    ("serving", "from config.settings import Settings"),
    ("poseframer", "from assets.indexing import run_index\nfrom serving.app import create_app"),
]


@pytest.mark.parametrize(("layer", "source"), BANNED, ids=[f"{lay}:{src}" for lay, src in BANNED])
def test_a_banned_import_is_reported(layer: str, source: str) -> None:
    reports = banned_api_reports(layer, source + "\n")
    assert len(reports) == 1, f"{layer}/: {source!r} should be banned, ruff said {reports}"
    assert f"{layer}/" in reports[0]  # the message says which layer rule it breaks


@pytest.mark.parametrize(
    ("layer", "source"), PERMITTED, ids=[f"{lay}:{src.splitlines()[0]}" for lay, src in PERMITTED]
)
def test_a_permitted_import_is_not_reported(layer: str, source: str) -> None:
    assert banned_api_reports(layer, source + "\n") == []


@pytest.mark.parametrize(
    ("layer", "source"),
    [("pipelines", "import dagster"), ("storage", "import torch"), ("serving", "import assets")],
)
def test_a_plain_ruff_check_finds_the_layer_config(layer: str, source: str) -> None:
    # `ruff check` with no --config (as CI and editors run it) picks up the folder's ruff.toml.
    assert len(banned_api_reports(layer, source + "\n", use_layer_config=False)) == 1


def test_tests_may_import_anything() -> None:
    source = "import dagster\nimport fastapi\nimport lancedb\n"
    assert banned_api_reports("tests", source, use_layer_config=False) == []


def test_every_layer_folder_has_its_rules() -> None:
    for layer in ("pipelines", "storage", "config", "assets", "serving", "poseframer"):
        text = (REPO / layer / "ruff.toml").read_text(encoding="utf-8")
        assert 'extend = "../pyproject.toml"' in text, layer
        assert "banned-api" in text, layer


PACKAGES = ("pipelines", "storage", "config", "assets", "serving", "poseframer", "benchmarks")


def module_imports(root: Path = REPO) -> dict[str, set[str]]:
    """Each project module and the project modules it imports when it is imported (module
    level; imports inside functions and `if TYPE_CHECKING:` blocks run later or never)."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles of `graph` (its strongly connected components of more than one module)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in order:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], order[nxt])
        if low[node] == order[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return cycles


def test_no_project_module_imports_itself_back() -> None:
    graph = module_imports()
    assert len(graph) > 100 and graph["storage.publishing"] >= {"pipelines.retrieval.ann"}
    assert import_cycles(graph) == []


def test_an_import_cycle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]
