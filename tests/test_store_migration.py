"""An existing PoseFramer home keeps its data when the tables gain columns."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import lancedb
import pyarrow as pa
import pytest

from pipelines.records import DecodedImage
from pipelines.sources.base import SourceItem, decode_item
from storage import schemas
from storage.publishing import publish_search_rows
from storage.records import StoreError
from storage.store import Store
from tests.local_http import textured_image

NEW_COLUMNS = {f.name for f in schemas.PROVENANCE}
BATCH_COLUMNS = {"batch_id", "source", "location", "created_at"}
OLD_IMAGES = pa.schema([f for f in schemas.IMAGES if f.name not in NEW_COLUMNS])
OLD_BATCHES = pa.schema([f for f in schemas.BATCHES if f.name in BATCH_COLUMNS])
OLD_SEARCH = pa.schema([f for f in schemas.search(62, 8) if f.name not in NEW_COLUMNS])
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _decoded(seed: int, **provenance: object) -> DecodedImage:
    result = decode_item(SourceItem(f"/photos/{seed}.png", textured_image(seed), **provenance))  # type: ignore[arg-type]
    assert isinstance(result, DecodedImage)
    return result


def _old_home(home: Path) -> DecodedImage:
    """A home written before the provenance columns: one batch, one image, one search row."""
    db = lancedb.connect(str(home / "lancedb"))
    old = _decoded(1)
    db.create_table(
        "batches",
        data=pa.Table.from_pylist(
            [{"batch_id": "old", "source": "folder", "location": "/photos", "created_at": NOW}],
            schema=OLD_BATCHES,
        ),
    )
    db.create_table(
        "images",
        data=pa.Table.from_pylist(
            [
                {
                    "image_id": old.image_id,
                    "batch_id": "old",
                    "source": "folder",
                    "source_uri": old.source_uri,
                    "width": old.width,
                    "height": old.height,
                    "format": old.format,
                    "media_type": old.media_type,
                    "thumbnail": old.thumbnail,
                    "ingested_at": NOW,
                }
            ],
            schema=OLD_IMAGES,
        ),
    )
    row = {f.name: None for f in OLD_SEARCH}
    row |= {
        "id": f"{old.image_id}:-",
        "image_id": old.image_id,
        "batch_id": "old",
        "person_index": -1,
        "source": "folder",
        "source_uri": old.source_uri,
        "width": old.width,
        "height": old.height,
        "framing": "no_person",
        "keypoint_model": "kp",
        "pose_model": "pose",
    }
    table = db.create_table(
        "search", data=pa.Table.from_pylist([row], schema=OLD_SEARCH), on_bad_vectors="null"
    )
    table.tags.create("publish-1", table.version)
    return old


def test_an_old_images_table_is_migrated_not_wiped(tmp_path: Path) -> None:
    old = _old_home(tmp_path)
    store = Store.at_home(tmp_path)
    new = _decoded(2, page_url="https://example.org/p", licence="CC0 1.0", fetched_at=NOW)

    store.register_batch("new", "urls", "list.txt", options={"path": "list.txt"})
    added = store.add_images("new", "urls", [old, new])

    assert [r.image_id for r in added] == [new.image_id]  # the old image is still known
    table = store.db.open_table("images")
    assert set(table.schema.names) >= NEW_COLUMNS
    rows = {r["image_id"]: r for r in table.to_arrow().to_pylist()}
    assert set(rows) == {old.image_id, new.image_id}
    assert rows[old.image_id]["batch_id"] == "old"
    assert rows[old.image_id]["thumbnail"] == old.thumbnail
    assert all(rows[old.image_id][c] is None for c in NEW_COLUMNS)
    assert rows[new.image_id]["page_url"] == "https://example.org/p"
    assert rows[new.image_id]["licence"] == "CC0 1.0"
    assert rows[new.image_id]["phash"] == new.phash
    assert rows[new.image_id]["near_duplicate_group"] == new.image_id
    (record,) = store.images_for_batches(["old"])
    assert record.image_id == old.image_id and record.licence is None


def test_old_batches_keep_their_rows_and_read_as_folders(tmp_path: Path) -> None:
    _old_home(tmp_path)
    store = Store.at_home(tmp_path)
    store.register_batch("new", "crawl", "crawl of x", options={"seeds": ["https://x.org/"]})
    store.record_batch_ingest("new", source_items=5, new_images=3, duplicates=1, failures=1)
    old, new = store.get_batch("old"), store.get_batch("new")
    assert old is not None and new is not None
    assert old.source_options() == {"folder": "/photos"}
    assert old.source_items is None
    assert new.source_options() == {"seeds": ["https://x.org/"]}
    assert (new.source_items, new.new_images, new.duplicates, new.failures) == (5, 3, 1, 1)
    assert [b.batch_id for b in store.list_batches()] == ["old", "new"]


def test_an_old_search_version_reads_with_null_provenance(tmp_path: Path) -> None:
    old = _old_home(tmp_path)
    store = Store.at_home(tmp_path)
    rows = store.search_table_at(1)
    assert set(rows.schema.names) >= NEW_COLUMNS
    (row,) = rows.to_pylist()
    assert row["image_id"] == old.image_id and row["licence"] is None
    # Publishing with the new schema adds the columns and keeps the other batches' rows.
    new_row = {f.name: None for f in schemas.search(62, 8)}
    new_row |= {
        "id": "x:-",
        "image_id": "x",
        "batch_id": "new",
        "person_index": -1,
        "source": "urls",
        "source_uri": "https://example.org/x.png",
        "width": 1,
        "height": 1,
        "framing": "no_person",
        "keypoint_model": "kp",
        "pose_model": "pose",
        "licence": "CC BY 4.0",
    }
    publication = publish_search_rows(store, ["new"], [new_row], 62, 8, "framing")
    latest = {r["image_id"]: r for r in store.search_table_at(publication.version).to_pylist()}
    assert set(latest) == {old.image_id, "x"}
    assert latest["x"]["licence"] == "CC BY 4.0"
    assert store.search_table_at(1).num_rows == 1  # the old version is still readable


def test_a_kept_table_whose_column_type_changed_is_refused_not_rebuilt(tmp_path: Path) -> None:
    db = lancedb.connect(str(tmp_path / "lancedb"))
    odd = pa.schema(
        [pa.field("batch_id", pa.string(), nullable=False), pa.field("source", pa.int32())]
    )
    db.create_table(
        "batches", data=pa.Table.from_pylist([{"batch_id": "b", "source": 1}], schema=odd)
    )
    store = Store.at_home(tmp_path)
    with pytest.raises(StoreError, match="refusing to rebuild"):
        store.register_batch("c", "folder", "/x")
    assert db.open_table("batches").count_rows() == 1
