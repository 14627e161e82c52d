"""Source readers: a local folder walked recursively, and validating what it yields."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

import pipelines.sources as sources
from pipelines.records import DecodedImage, IngestFailure
from pipelines.sources import LocalFolderSource, SourceItem, decode_item
from tests.synthetic import image_bytes

TREE = {
    "a.png": image_bytes((40, 30), "PNG"),
    "z.jpg": image_bytes((30, 40), "JPEG"),
    "sub/b.png": image_bytes((20, 20), "PNG", color=(0, 255, 0)),
    "sub/deeper/c.webp": image_bytes((50, 10), "WEBP"),
    "other/d.gif": image_bytes((16, 16), "GIF"),
    "notes.txt": b"not an image",
}
HIDDEN = {
    ".DS_Store": b"\x00\x00\x00\x01Bud1",
    "sub/.hidden.png": image_bytes((10, 10), "PNG"),
    ".git/objects/e.png": image_bytes((10, 10), "PNG"),
    "sub/.cache/f.png": image_bytes((10, 10), "PNG"),
}


def write_tree(root: Path, files: dict[str, bytes], reverse: bool = False) -> None:
    for rel in sorted(files, reverse=reverse):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[rel])


def relative_uris(root: Path, results: list[SourceItem | IngestFailure]) -> list[str]:
    base = root.resolve()
    return [Path(r.source_uri).relative_to(base).as_posix() for r in results]


def test_walks_recursively_and_skips_hidden_files_and_folders(tmp_path: Path) -> None:
    write_tree(tmp_path, {**TREE, **HIDDEN})
    results = list(LocalFolderSource(str(tmp_path)).items())
    assert all(isinstance(r, SourceItem) for r in results)
    assert sorted(relative_uris(tmp_path, results)) == sorted(TREE)
    for r in results:
        assert isinstance(r, SourceItem)
        assert Path(r.source_uri).is_absolute()
        assert r.data == TREE[Path(r.source_uri).relative_to(tmp_path.resolve()).as_posix()]


def test_order_is_stable_whatever_the_creation_order(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    write_tree(one, TREE)
    write_tree(two, TREE, reverse=True)
    first = relative_uris(one, list(LocalFolderSource(str(one)).items()))
    again = relative_uris(one, list(LocalFolderSource(str(one)).items()))
    other = relative_uris(two, list(LocalFolderSource(str(two)).items()))
    assert first == again == other
    # Within one folder, names come in sorted order.
    assert first.index("a.png") < first.index("notes.txt") < first.index("z.jpg")
    assert first.index("sub/b.png") < first.index("sub/deeper/c.webp")


def test_unreadable_entries_become_failures_with_a_reason(tmp_path: Path) -> None:
    write_tree(tmp_path, {"good.png": TREE["a.png"]})
    (tmp_path / "broken.jpg").symlink_to(tmp_path / "gone.jpg")  # a dangling link
    results = list(LocalFolderSource(str(tmp_path)).items())
    by_name = {Path(r.source_uri).name: r for r in results}
    assert isinstance(by_name["good.png"], SourceItem)
    failure = by_name["gone.jpg"] if "gone.jpg" in by_name else by_name["broken.jpg"]
    assert isinstance(failure, IngestFailure)
    assert failure.reason.startswith("unreadable")
    assert "No such file" in failure.reason


def test_oversize_files_become_failures_without_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path, {"small.png": image_bytes((4, 4), "PNG"), "big.bin": b"x" * 5000})
    monkeypatch.setattr(sources, "MAX_FILE_BYTES", 1000)
    results = {Path(r.source_uri).name: r for r in LocalFolderSource(str(tmp_path)).items()}
    assert isinstance(results["small.png"], SourceItem)
    big = results["big.bin"]
    assert isinstance(big, IngestFailure)
    assert big.reason == "file too large (5000 bytes)"


def test_a_missing_folder_is_an_error_not_an_empty_source(tmp_path: Path) -> None:
    source = LocalFolderSource(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="source folder does not exist"):
        list(source.items())
    assert "nope" in source.describe()


def test_decode_item_rejects_a_text_file_named_jpg_with_its_reason(tmp_path: Path) -> None:
    write_tree(tmp_path, {"photo.jpg": b"this is not really a photo\n"})
    (item,) = LocalFolderSource(str(tmp_path)).items()  # read by content, not by extension
    assert isinstance(item, SourceItem)
    result = decode_item(item)
    assert isinstance(result, IngestFailure)
    assert result.source_uri == item.source_uri
    assert "not an image" in result.reason


def test_decode_item_gives_a_decoded_image_with_a_thumbnail() -> None:
    data = image_bytes((600, 300), "PNG")
    result = decode_item(SourceItem("/photos/wide.png", data))
    assert isinstance(result, DecodedImage)
    assert result.image_id == hashlib.sha256(data).hexdigest()
    assert result.data == data
    assert result.source_uri == "/photos/wide.png"
    assert (result.width, result.height) == (600, 300)
    assert (result.format, result.media_type) == ("PNG", "image/png")
    thumb = Image.open(io.BytesIO(result.thumbnail))
    assert thumb.format == "JPEG"
    assert thumb.size == (256, 128)


def test_decode_item_judges_by_content_not_extension() -> None:
    result = decode_item(SourceItem("/photos/mislabelled.jpg", image_bytes((20, 10), "PNG")))
    assert isinstance(result, DecodedImage)
    assert result.media_type == "image/png"


def test_decode_item_reports_the_upright_size() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° to display
    data = image_bytes((40, 20), "JPEG", exif=exif)
    result = decode_item(SourceItem("/photos/phone.jpg", data))
    assert isinstance(result, DecodedImage)
    assert (result.width, result.height) == (20, 40)
    assert Image.open(io.BytesIO(result.thumbnail)).size == (20, 40)
