"""API fuzzing: schemathesis generates requests from the app's own OpenAPI schema, valid and
invalid, and none may get a 5xx answer (a crash or an unhandled case), in-process over ASGI
against a home where the evalset was indexed by the real pipeline."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err

from serving.app import create_app
from tests.conftest import make_settings

pytestmark = pytest.mark.evalset

# Requests per operation and mode (fewer where the schema allows fewer): under a minute.
MAX_EXAMPLES = 150
API_KEY = "fuzz-test-key"  # uploads are enabled, so the fuzzer meets their real checks


@pytest.fixture(scope="module")
def fuzzed_app(indexed_home: Path) -> Iterator[FastAPI]:
    app = create_app(make_settings(indexed_home, api_key=API_KEY))
    with TestClient(app) as client:  # runs the lifespan: CLIP starts loading
        service: Any = client.app.state.search_service  # type: ignore[attr-defined]
        assert service.models.clip.wait(120), "the tiny CLIP model did not load"
        yield app


def operations_of(api_schema: Any) -> list[Any]:
    """Every operation of the schema; one the schema describes wrongly fails the test."""
    operations = []
    for result in api_schema.get_all_operations():
        if isinstance(result, Err):
            raise AssertionError(f"the OpenAPI schema is invalid: {result.err()}")
        operations.append(result.ok())
    return operations


def fuzz(operation: Any, mode: GenerationMode) -> None:
    """Send `MAX_EXAMPLES` generated requests to one operation; raise on the first 5xx."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,  # the same requests on every run: a failure is reproducible
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def send(case: Any) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    send()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(fuzzed_app: FastAPI, mode: GenerationMode) -> None:
    """Requests that fit the schema (`positive`) and that break it (`negative`), for every
    operation; each operation is fuzzed even if another failed, and all failures reported."""
    api_schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)
    operations = operations_of(api_schema)
    assert {op.path for op in operations} >= {"/search", "/health", "/images/{image_id}"}
    failures = []
    fuzzed = 0
    for operation in operations:
        try:
            fuzz(operation, mode)
            fuzzed += 1
        except Unsatisfiable:
            # Nothing in its schema can be broken (no parameters, or a free-form string).
            assert mode is GenerationMode.NEGATIVE, operation.path
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}:\n{exc}")
    assert not failures, "\n\n".join(failures)
    assert fuzzed >= 3


def test_the_fuzzer_finds_a_server_error_when_there_is_one() -> None:
    """The harness itself: an endpoint that fails on some inputs is caught."""
    app = FastAPI()

    @app.get("/root")
    def root(n: int) -> dict[str, float]:
        return {"root": math.sqrt(n)}  # an unhandled ValueError (a 500) for n < 0

    api_schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    (operation,) = operations_of(api_schema)
    with pytest.raises(Exception, match=r"(?i)server error|math domain"):
        fuzz(operation, GenerationMode.POSITIVE)
