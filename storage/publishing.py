"""Publishing a version of the served table: write its rows, measure it, index it, record it.

The steps, in the order that keeps a reader safe at every point:

1. the batches' rows replace theirs in the search table, in one commit (`Store.write_search_rows`);
2. that version's calibration is fitted on a sample of its own vectors
   (`pipelines.retrieval.calibration`);
3. a table of at least `Store.ann_min_rows` rows gets its ANN index
   (`pipelines.retrieval.ann` builds it in a local folder, `storage.ann_files` keeps it beside
   the tables), before the publication row, so a service that sees the version finds its index;
4. the publication row is written (`Store.record_publication`): services serve it from now on.

A process killed before step 4 leaves the previous version served; running the step again
publishes the batches once.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.retrieval.ann import build_index
from pipelines.retrieval.calibration import fit_calibration
from storage.ann_files import save_index
from storage.records import Publication
from storage.store import Store

log = logging.getLogger(__name__)


def publish_search_rows(
    store: Store,
    batch_ids: Sequence[str],
    rows: list[dict[str, Any]] | pa.Table,
    pose_dim: int,
    clip_dim: int,
    framing_model: str,
    text_queries: np.ndarray | None = None,
) -> Publication:
    """Replace the batches' rows of the served table and publish that version (module doc);
    `text_queries` (typical text queries' CLIP vectors) calibrate its CLIP side."""
    version = store.write_search_rows(batch_ids, rows, pose_dim, clip_dim)
    sample = store.search_vector_sample(version)
    calibration = fit_calibration(sample.pose, sample.clip, text_queries)
    count = sample.rows
    if count >= store.ann_min_rows:
        try:
            fs, root = store.files()
        except ValueError as exc:
            log.warning("no ANN index for version %s (exact search): %s", version, exc)
        else:
            log.info("building the ANN index of version %s (%s rows)", version, count)
            _, batches = store.search_batches_at(version, ["id", "pose_vector", "clip_vector"])
            with tempfile.TemporaryDirectory(prefix="poseframer-ann-") as tmp:
                meta = build_index(batches, pose_dim, clip_dim, version, Path(tmp))
                save_index(Path(tmp), fs, root, version)
            log.info("ANN index of version %s built in %.1f s", version, meta.build_s)
    return store.record_publication(version, batch_ids, framing_model, calibration)
