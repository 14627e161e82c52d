"""Ingesting a batch's source: read, decode, skip what is indexed, store the new images.

Items stream in chunk by chunk, so only one chunk of image bytes is held at a time, whatever
the size of the batch (the total is unknown up front for web sources).
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import dagster as dg

from pipelines.indexing import decode_items
from pipelines.records import DecodedImage, IngestFailure
from pipelines.sources.base import (
    ImageSource,
    SourceConfigError,
    SourceItem,
    SourceUnavailableError,
    open_source,
)
from pipelines.sources.dedupe import NearDuplicateIndex, sort_new_images
from storage.records import Batch, ImageRecord
from storage.store import Store

INGEST_CHUNK = 64


@dataclass(frozen=True)
class BatchIngest:
    """What ingesting one batch did."""

    source: str  # the source, described for people
    added: list[ImageRecord]
    duplicates: int
    near_duplicates: int
    failures: list[IngestFailure]


def source_for(batch: Batch) -> ImageSource:
    try:
        return open_source(batch.source, batch.source_options())
    except SourceConfigError as exc:
        raise dg.Failure(f"batch {batch.batch_id}: {exc}") from None


def ingest_batch(
    db: Store, batch: Batch, near: NearDuplicateIndex, advance: Callable[[int], None]
) -> BatchIngest:
    """Store the new images of `batch`'s source and record its failures and counts; an
    image already indexed (in any batch) is a duplicate, one close to an indexed picture
    joins its near-duplicate group in `near`."""
    source = source_for(batch)
    failures: list[IngestFailure] = []
    added: list[ImageRecord] = []
    seen: set[str] = set()
    duplicates = near_duplicates = items = 0
    try:
        for chunk in _chunks(source.items(), INGEST_CHUNK):
            items += len(chunk)
            decoded: list[DecodedImage] = []
            for result in decode_items(chunk):
                if isinstance(result, IngestFailure):
                    failures.append(result)
                else:
                    decoded.append(result)
            indexed = db.known_image_ids(d.image_id for d in decoded)
            new = sort_new_images(decoded, indexed, seen, near)
            added += db.add_images(batch.batch_id, batch.source, new.fresh, new.groups)
            duplicates += new.duplicates
            near_duplicates += new.near_duplicates
            advance(len(chunk))
    except (SourceUnavailableError, FileNotFoundError) as exc:
        raise dg.Failure(f"batch {batch.batch_id}: {source.describe()}: {exc}") from None
    db.record_failures(batch.batch_id, "source_images", failures)
    db.record_batch_ingest(
        batch.batch_id,
        source_items=items,
        new_images=len(added),
        duplicates=duplicates,
        failures=len(failures),
    )
    return BatchIngest(source.describe(), added, duplicates, near_duplicates, failures)


def _chunks(
    entries: Iterable[SourceItem | IngestFailure], size: int
) -> Iterator[list[SourceItem | IngestFailure]]:
    chunk: list[SourceItem | IngestFailure] = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
