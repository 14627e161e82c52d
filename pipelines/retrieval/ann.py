"""The served table's ANN index: built when a version is published, used by the ranking.

Two inverted-file (IVF) indexes, one per side of the hybrid score, with exact fusion:

    score = λ · cal_p(p · p') + (1 − λ) · cal_c(c · c')

- pose: IVF-SQ8 over the 62-d pose vectors (8-bit codes, inner product);
- CLIP: IVF-SQ8 over the CLIP vectors (8-bit codes, a quarter of the float size);
- the CLIP vectors themselves, row-major float32 in `clip.f32`, read row by row (`pread`)
  for the exact re-scoring of candidates, so they never sit in the server's memory.

A query takes the best `pool` rows of each side (of each pose variant, e.g. the mirror), and
the union is re-scored exactly by the caller. Any row outside the union has, on each side, a
similarity below that side's `pool`-th best, so its hybrid score is below the *bound*
`λ·cal_p(P_pool) + (1 − λ)·cal_c(C_pool)` (Fagin's threshold; it holds as far as the per-side
IVF lists are exact, i.e. up to their `nprobe` recall). When the union's k-th best exact score
is below the bound, the caller doubles `pool` — see `pipelines.retrieval.ranking`.

Why not one index over the concatenated [pose, clip] vector queried with [λ·p, (1 − λ)·c]:
its clusters follow the larger CLIP part, so a pose-weighted query must probe most of them
(a prototype of that, LanceDB IVF-PQ on the concatenation, reached recall@10 0.72 at 100k
rows). The candidates' exact scores come from the float32 vectors (pose in memory, CLIP
from `clip.f32`), never from the 8-bit codes.

This module builds the files into a local folder and opens them from one; where they are kept
beside the tables (a local directory or S3), and how a service finds a version's folder, is
`storage.ann_files`'s business. `meta.json` is written last: a folder that lacks it has no
index (a publish killed while building), and the service then scores exactly. Small tables
get no index at all (`ANN_MIN_ROWS`): an exact scan of them is faster than any index.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
import pyarrow as pa

log = logging.getLogger(__name__)

FORMAT = 1
# Below this many rows an exact scan (a few ms) beats an index (the default of the
# `ann_min_rows` setting, POSEFRAMER_ANN_MIN_ROWS; tests index small tables with 0).
ANN_MIN_ROWS = 20_000
SCAN_BATCH = 65_536
TRAIN_PER_LIST = 64  # k-means training rows per inverted list
DEFAULT_NPROBE = 16
SCAN_PER_POOL = 4  # a query scans at least this many rows per row of its pool
FILES = ("pose.faiss", "clip.faiss", "clip.f32", "clip_rows.npy", "meta.json")  # meta.json last


def lists_for(rows: int) -> int:
    """Inverted lists for `rows` vectors: ~2·√rows, within [4, 4096]."""
    return int(min(4096, max(4, round(2 * math.sqrt(max(rows, 1))))))


@dataclass(frozen=True)
class AnnMeta:
    version: int
    rows: int
    pose_rows: int
    clip_rows: int
    pose_dim: int
    clip_dim: int
    lists: int
    ids_sha256: str  # of the row ids in scan order: the index's row numbers are positions
    build_s: float
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2)

    @classmethod
    def from_json(cls, text: str) -> AnnMeta:
        return cls(**json.loads(text))


def ids_digest(ids: pa.ChunkedArray | pa.Array) -> str:
    """A digest of the row ids in order, whatever their chunking."""
    digest = hashlib.sha256()
    for value in ids.to_pylist():
        digest.update(str(value).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _valid_rows(column: pa.Array, dim: int) -> tuple[npt.NDArray[np.bool_], np.ndarray]:
    mask = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    valid = column.filter(column.is_valid())
    values = np.asarray(valid.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    return mask, values.reshape(-1, dim)


def _ivf(dim: int, lists: int, sq8: bool) -> Any:
    codes = "SQ8" if sq8 else "Flat"
    index = faiss.index_factory(dim, f"IVF{lists},{codes}", faiss.METRIC_INNER_PRODUCT)
    # Deterministic k-means: the same table builds the same index.
    faiss.extract_index_ivf(index).cp.seed = 1234
    return index


def _sample(rng: np.random.Generator, n: int, size: int) -> npt.NDArray[np.int64]:
    return np.sort(rng.choice(n, size=min(n, size), replace=False)).astype(np.int64)


def build_index(
    batches: Iterable[pa.RecordBatch], pose_dim: int, clip_dim: int, version: int, work: Path
) -> AnnMeta:
    """Build the ANN files of a table version in the local folder `work`, from its rows in scan
    order (`id`, `pose_vector`, `clip_vector` batches); `meta.json`, which says the folder is
    complete, last (see module doc)."""
    start = time.perf_counter()
    clip_path = work / "clip.f32"
    pose_ids: list[np.ndarray] = []
    pose_parts: list[np.ndarray] = []
    clip_ids: list[np.ndarray] = []
    id_chunks: list[pa.Array] = []
    rows = 0
    # Pass 1: stream the table; CLIP vectors go to disk in row order (zeros where a row has
    # none), pose vectors (small) stay in memory.
    with clip_path.open("wb") as out:
        for batch in batches:
            n = batch.num_rows
            id_chunks.append(batch.column(0))
            mask, pose = _valid_rows(batch.column(1), pose_dim)
            pose_ids.append(np.flatnonzero(mask) + rows)
            pose_parts.append(pose)
            mask, clip = _valid_rows(batch.column(2), clip_dim)
            dense = np.zeros((n, clip_dim), dtype=np.float32)
            dense[mask] = clip
            out.write(dense.tobytes())
            clip_ids.append(np.flatnonzero(mask) + rows)
            rows += n
    pose_id = np.concatenate(pose_ids) if pose_ids else np.zeros(0, np.int64)
    pose_matrix = np.concatenate(pose_parts) if pose_parts else np.zeros((0, pose_dim), np.float32)
    clip_id = np.concatenate(clip_ids) if clip_ids else np.zeros(0, np.int64)
    lists = lists_for(rows)
    rng = np.random.default_rng(0)

    pose_index = _ivf(pose_dim, max(1, min(lists, len(pose_id))), sq8=True)
    if len(pose_id):
        pose_index.train(pose_matrix[_sample(rng, len(pose_id), TRAIN_PER_LIST * lists)])
        pose_index.add_with_ids(pose_matrix, pose_id.astype(np.int64))
    faiss.write_index(pose_index, str(work / "pose.faiss"))
    del pose_index, pose_matrix

    clip_index = _ivf(clip_dim, max(1, min(lists, len(clip_id))), sq8=True)
    if len(clip_id):
        dense_clip = np.memmap(clip_path, dtype=np.float32, mode="r", shape=(rows, clip_dim))
        train = clip_id[_sample(rng, len(clip_id), TRAIN_PER_LIST * lists)]
        clip_index.train(np.ascontiguousarray(dense_clip[train]))
        for lo in range(0, len(clip_id), SCAN_BATCH):
            ids = clip_id[lo : lo + SCAN_BATCH]
            clip_index.add_with_ids(np.ascontiguousarray(dense_clip[ids]), ids)
        del dense_clip
    faiss.write_index(clip_index, str(work / "clip.faiss"))
    clip_rows = np.zeros(rows, dtype=bool)
    clip_rows[clip_id] = True
    np.save(work / "clip_rows.npy", np.packbits(clip_rows))
    del clip_index

    meta = AnnMeta(
        version=version,
        rows=rows,
        pose_rows=len(pose_id),
        clip_rows=len(clip_id),
        pose_dim=pose_dim,
        clip_dim=clip_dim,
        lists=lists,
        ids_sha256=ids_digest(pa.chunked_array(id_chunks, type=pa.string())),
        build_s=round(time.perf_counter() - start, 3),
    )
    (work / "meta.json").write_text(meta.to_json())
    return meta


@dataclass(frozen=True)
class SideHits:
    """One side's candidates: rows (−1 where the list ran short) and its pool-th similarity."""

    rows: npt.NDArray[np.int64]
    sims: np.ndarray  # their similarities as the index estimates them (8-bit codes)
    cutoff: float  # the smallest similarity in the list; −inf when it is empty


class AnnIndex:
    """A published version's ANN files, opened for querying (thread-safe)."""

    def __init__(self, folder: Path, meta: AnnMeta, nprobe: int = DEFAULT_NPROBE) -> None:
        self.folder = folder
        self.meta = meta
        self.nprobe = nprobe
        self.pose = faiss.read_index(str(folder / "pose.faiss"))
        self.clip = faiss.read_index(str(folder / "clip.faiss"))
        packed = np.load(folder / "clip_rows.npy")
        self.clip_mask = np.unpackbits(packed, count=meta.rows).astype(bool)
        self._fd = os.open(folder / "clip.f32", os.O_RDONLY)
        self._row_bytes = meta.clip_dim * 4
        self._lock = threading.Lock()

    @classmethod
    def open(cls, folder: Path, version: int, ids: pa.ChunkedArray) -> AnnIndex | None:
        """The index in the local `folder`, or None when it has none (or one that does not
        match the rows `ids` in scan order, which would make its row numbers meaningless)."""
        if not (folder / "meta.json").is_file():
            return None
        meta = AnnMeta.from_json((folder / "meta.json").read_text())
        if meta.format != FORMAT or meta.rows != len(ids) or meta.ids_sha256 != ids_digest(ids):
            log.warning("ANN index of version %s does not match its rows; scoring exactly", version)
            return None
        return cls(folder, meta)

    def describe(self) -> str:
        return f"IVF{self.meta.lists},SQ8 per side ({self.meta.rows} rows, nprobe ≥ {self.nprobe})"

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            self.close()

    def clip_vectors(self, rows: npt.NDArray[np.int64]) -> np.ndarray:
        """The exact float32 CLIP vectors of `rows` (zeros for rows without one)."""
        rb = self._row_bytes
        buf = b"".join(os.pread(self._fd, rb, int(r) * rb) for r in rows)
        return np.frombuffer(buf, dtype=np.float32).reshape(len(rows), self.meta.clip_dim)

    def clip_chunks(self, chunk: int = SCAN_BATCH) -> Iterator[tuple[int, np.ndarray]]:
        """Every row's CLIP vector, `chunk` rows at a time (for an exact scan of all rows)."""
        rb = self._row_bytes
        for lo in range(0, self.meta.rows, chunk):
            n = min(chunk, self.meta.rows - lo)
            buf = os.pread(self._fd, n * rb, lo * rb)
            yield lo, np.frombuffer(buf, dtype=np.float32).reshape(n, self.meta.clip_dim)

    def _params(
        self, index: Any, pool: int, allowed: npt.NDArray[np.bool_] | None
    ) -> tuple[Any, np.ndarray | None]:
        """Search parameters, and the filter bitmap they point to (keep it alive meanwhile)."""
        params = faiss.SearchParametersIVF()
        # Probe enough lists to scan several times the pool: a deeper pool probes wider.
        per_list = max(1.0, index.ntotal / max(index.nlist, 1))
        nprobe = max(self.nprobe, math.ceil(SCAN_PER_POOL * pool / per_list))
        bitmap = None
        if allowed is not None:
            share = float(allowed.mean()) if allowed.size else 1.0
            # A filter leaves fewer rows per list: probe more lists, about as many as it takes
            # to scan as many allowed rows as an unfiltered query scans rows.
            nprobe = int(min(index.nlist, math.ceil(nprobe / max(share, 1e-6))))
            bitmap = np.packbits(allowed, bitorder="little")
            params.sel = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        params.nprobe = max(1, min(nprobe, index.nlist))
        return params, bitmap

    def search(
        self,
        side: str,
        queries: np.ndarray,
        pool: int,
        allowed: npt.NDArray[np.bool_] | None = None,
    ) -> list[SideHits]:
        """The best `pool` rows of `side` ("pose" or "clip") for each query row."""
        index = self.pose if side == "pose" else self.clip
        if index.ntotal == 0:
            empty = np.zeros(0, np.int64), np.zeros(0, np.float32)
            return [SideHits(*empty, -math.inf) for _ in range(len(queries))]
        params, bitmap = self._params(index, pool, allowed)
        sims, rows = index.search(
            np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32), pool, params=params
        )
        del bitmap
        out = []
        for s, r in zip(sims, rows, strict=True):
            keep = r >= 0
            found = r[keep].astype(np.int64)
            # A list that ran short holds every allowed row of the lists it probed.
            cutoff = float(s[keep][-1]) if found.size else -math.inf
            out.append(SideHits(found, s[keep], cutoff))
        return out
