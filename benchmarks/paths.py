"""Where the benchmarks and the real-data tests find the annotated evalset.

`POSEFRAMER_EVALSET` names it; by default it is `../shared/data/evalset` beside the project
root, where the development machines keep it (its licences forbid copying it into the repo).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVALSET_ENV = "POSEFRAMER_EVALSET"


def evalset_dir() -> Path:
    """The evalset folder (it holds `annotations.json` and `images/` when it is there)."""
    configured = os.environ.get(EVALSET_ENV, "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    return REPO.parent / "shared" / "data" / "evalset"
