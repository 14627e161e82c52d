"""Name → model backend registries.

A backend class registers under a name; `load(name, **options)` builds it once per
(name, options) and returns the cached instance. Constructors must stay cheap: heavy packages
are imported and weights loaded lazily by the backend itself, on first use.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


# The devices a model may be asked to run on: one rule for the indexer and the service.
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device(device: str) -> str:
    """`device` if it names a device a model can run on, else a ValueError saying which do."""
    if not _DEVICE.match(device):
        raise ValueError(f"device must be auto, cpu, mps, cuda or cuda:N, not {device!r}")
    return device


class UnknownModelError(KeyError):
    """Raised for a model name no backend registered; the message lists the valid names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown model"


def _freeze(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def parse_options(text: str, variable: str) -> dict[str, Any]:
    """A backend's options from a JSON object (e.g. `{"model_path": "/models/rtm.onnx"}`)."""
    try:
        options = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"{variable} must be a JSON object: {exc}") from None
    if not isinstance(options, dict):
        raise ValueError(f"{variable} must be a JSON object, not {type(options).__name__}")
    return options


class Registry(Generic[T]):
    """A registry of backends of one kind (keypoint detectors, pose embedders, …)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, Callable[..., T]] = {}
        self._instances: dict[tuple[str, Hashable], T] = {}
        self._lock = threading.Lock()

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorate(cls: type[T]) -> type[T]:
            if name in self._classes and self._classes[name] is not cls:
                raise ValueError(f"{self.kind} backend {name!r} is already registered")
            self._classes[name] = cls
            return cls

        return decorate

    def names(self) -> list[str]:
        return sorted(self._classes)

    def backend_class(self, name: str) -> Callable[..., T]:
        try:
            return self._classes[name]
        except KeyError:
            valid = ", ".join(self.names()) or "(none registered)"
            raise UnknownModelError(
                f"unknown {self.kind} model {name!r}; valid names: {valid}"
            ) from None

    def load(self, name: str, **options: Any) -> T:
        """The cached instance of backend `name` built with `options`."""
        cls = self.backend_class(name)
        key = (name, _freeze(options))
        with self._lock:
            instance = self._instances.get(key)
            if instance is None:
                instance = cls(**options)
                self._instances[key] = instance
            return instance

    def clear_cache(self) -> None:
        with self._lock:
            self._instances.clear()
