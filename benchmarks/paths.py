"""Where the benchmarks find the project, the annotated evalset and the tiny CLIP config.

`POSEFRAMER_EVALSET` names it; by default it is `../shared/data/evalset` beside the project
root, where the development machines keep it (its licences forbid copying it into the repo).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVALSET_ENV = "POSEFRAMER_EVALSET"
# The tests' tiny random-weight CLIP config: plumbing only, never real search.
TINY_CLIP = REPO / "tests" / "fixtures" / "poseframer-tiny-clip.json"


def evalset_dir() -> Path:
    """The evalset folder (it holds `annotations.json` and `images/` when it is there)."""
    configured = os.environ.get(EVALSET_ENV, "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    return REPO.parent / "shared" / "data" / "evalset"
