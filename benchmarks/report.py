"""How the benchmarks print their figures: a table, then the same figures as one JSON line."""

from __future__ import annotations

import json
from collections.abc import Mapping


def print_report(result: Mapping[str, object], width: int = 30) -> None:
    """A `metric  value` table, and as the last line one JSON object (what scripts read)."""
    print(f"{'metric':<24}{'value':>{width}}")
    for key, value in result.items():
        print(f"{key:<24}{value!s:>{width}}")
    print(json.dumps(result))
