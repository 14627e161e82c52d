"""The model registry: names → backends, one cached instance per (name, options)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from pipelines.catalog import clip_models, framing_models, keypoint_models, pose_models
from pipelines.registry import Registry, UnknownModelError


class Widget:
    built = 0

    def __init__(self, **options: Any) -> None:
        type(self).built += 1
        self.options = options


@pytest.fixture
def widgets() -> Registry[Widget]:
    registry: Registry[Widget] = Registry("widget")

    @registry.register("round")
    class Round(Widget):
        built = 0

    @registry.register("square")
    class Square(Widget):
        built = 0

    return registry


REPO = Path(__file__).resolve().parents[1]


def test_unknown_name_error_lists_the_valid_names(widgets: Registry[Widget]) -> None:
    with pytest.raises(UnknownModelError) as info:
        widgets.load("triangle")
    message = str(info.value)
    assert "'triangle'" in message
    assert "widget" in message
    assert "valid names: round, square" in message
    # A KeyError subclass, but its message reads as a sentence, not a quoted repr.
    assert isinstance(info.value, KeyError)
    assert not message.startswith(('"', "'"))


def test_unknown_name_in_an_empty_registry_says_so() -> None:
    with pytest.raises(UnknownModelError, match="none registered"):
        Registry[Widget]("widget").load("round")


def test_instances_are_cached_per_name_and_options(widgets: Registry[Widget]) -> None:
    first = widgets.load("round", size=3)
    assert widgets.load("round", size=3) is first
    assert type(first).built == 1  # the constructor ran once
    assert first.options == {"size": 3}


def test_option_order_does_not_matter(widgets: Registry[Widget]) -> None:
    assert widgets.load("round", a=1, b=2) is widgets.load("round", b=2, a=1)


def test_unhashable_option_values_are_cached_by_value(widgets: Registry[Widget]) -> None:
    a = widgets.load("round", sizes=[1, 2], extra={"x": [3]})
    assert widgets.load("round", sizes=[1, 2], extra={"x": [3]}) is a
    assert widgets.load("round", sizes=[2, 1], extra={"x": [3]}) is not a


def test_different_options_or_names_give_different_instances(widgets: Registry[Widget]) -> None:
    plain = widgets.load("round")
    sized = widgets.load("round", size=3)
    other = widgets.load("round", size=4)
    square = widgets.load("square", size=3)
    assert len({id(plain), id(sized), id(other), id(square)}) == 4
    assert type(square).__name__ == "Square"


def test_concurrent_loads_build_one_instance(widgets: Registry[Widget]) -> None:
    got: list[Widget] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        got.append(widgets.load("square", size=1))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(w) for w in got}) == 1
    assert type(got[0]).built == 1


def test_clear_cache_builds_anew(widgets: Registry[Widget]) -> None:
    before = widgets.load("round")
    widgets.clear_cache()
    assert widgets.load("round") is not before


def test_registering_another_class_under_a_taken_name_raises(widgets: Registry[Widget]) -> None:
    with pytest.raises(ValueError, match="'round' is already registered"):

        @widgets.register("round")
        class Impostor(Widget):
            pass

    # The original backend is still the one served.
    assert type(widgets.load("round")).__name__ == "Round"


def test_registering_the_same_class_again_is_harmless(widgets: Registry[Widget]) -> None:
    cls = widgets.backend_class("round")
    widgets.register("round")(cls)  # type: ignore[arg-type]
    assert widgets.names() == ["round", "square"]


def test_project_registries_know_their_backends() -> None:
    assert "mediapipe" in keypoint_models.names()
    assert "geometric-v1" in pose_models.names()
    assert "keypoint-rules-v1" in framing_models.names()
    assert "open-clip" in clip_models.names()
    with pytest.raises(UnknownModelError, match=r"valid names: .*mediapipe"):
        keypoint_models.load("openpose")


def test_backend_constructors_stay_cheap() -> None:
    # Building a backend must not load its model: that happens lazily, on first use.
    detector = keypoint_models.load("mediapipe", min_detection_confidence=0.61)
    assert detector._graph is None  # type: ignore[attr-defined]
    encoder = clip_models.load("open-clip", model="ViT-B-32", pretrained="never-loaded-tag")
    assert encoder._model is None  # type: ignore[attr-defined]


def test_the_catalog_registers_every_backend_and_no_other_module_imports_one() -> None:
    # The modules that define the registries import no backend (no cycle back to them) ...
    probe = (
        "import sys, pipelines.pose.keypoints, pipelines.pose.embedding, "
        "pipelines.clip.encoder, pipelines.pose.framing; "
        "print([m for m in sys.modules if m.startswith('pipelines.backends.')])"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
    # ... the catalog registers all of them ...
    assert {"mediapipe", "drawn", "rtmpose", "sam-3d-body"} <= set(keypoint_models.names())
    assert {"geometric-v1", "posec3d"} <= set(pose_models.names())
    # ... and it is the only module outside the backends package that imports one.
    backends = {p.stem for p in (REPO / "pipelines" / "backends").glob("*.py")} - {"__init__"}
    pattern = re.compile(
        rf"from pipelines\.backends import .*\b({'|'.join(backends)})\b"
        rf"|import pipelines\.backends\.({'|'.join(backends)})"
    )
    importers = [
        str(path.relative_to(REPO))
        for folder in ("pipelines", "storage", "config", "assets", "serving", "poseframer")
        for path in (REPO / folder).rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert importers == ["pipelines/catalog.py"]
