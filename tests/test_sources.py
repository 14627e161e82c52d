"""Source readers: a local folder, URL lists and Pinterest boards, and validating what they
yield (with provenance)."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

import pipelines.sources.base as sources
from pipelines.records import DecodedImage, IngestFailure
from pipelines.sources.base import (
    LocalFolderSource,
    SourceConfigError,
    SourceItem,
    SourceUnavailableError,
    decode_item,
    open_source,
)
from pipelines.sources.fetcher import FetchPolicy
from pipelines.sources.pinterest import Pin, PinterestBoardSource
from pipelines.sources.url_list import UrlListSource
from tests.local_http import Reply, png_reply, serve, textured_image
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


# ---------------------------------------------------------------- provenance and kinds


def test_decode_item_keeps_the_provenance_and_a_perceptual_hash() -> None:
    when = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    item = SourceItem(
        "https://example.org/a.png",
        textured_image(7),
        page_url="https://example.org/gallery.html",
        licence="CC BY 4.0",
        attribution="Ada",
        fetched_at=when,
    )
    result = decode_item(item)
    assert isinstance(result, DecodedImage)
    assert (result.page_url, result.licence, result.attribution, result.fetched_at) == (
        "https://example.org/gallery.html",
        "CC BY 4.0",
        "Ada",
        when,
    )
    assert result.phash is not None and len(result.phash) == 16


def test_a_folder_source_stamps_when_it_read_each_file(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.png": TREE["a.png"]})
    (item,) = LocalFolderSource(str(tmp_path)).items()
    assert isinstance(item, SourceItem)
    assert item.fetched_at is not None and item.fetched_at.tzinfo is not None
    assert item.page_url is item.licence is item.attribution is None


def test_open_source_builds_each_kind_and_names_the_valid_ones(tmp_path: Path) -> None:
    folder = open_source("folder", {"folder": str(tmp_path)})
    assert isinstance(folder, LocalFolderSource) and folder.kind == "folder"
    inbox = open_source("inbox", {"folder": str(tmp_path)})
    assert isinstance(inbox, LocalFolderSource) and inbox.kind == "inbox"
    with pytest.raises(SourceConfigError, match="unknown source kind 'ftp'; valid kinds: crawl"):
        open_source("ftp", {})
    with pytest.raises(SourceConfigError, match="valid options: folder"):
        open_source("folder", {"path": "x"})
    with pytest.raises(SourceConfigError, match="fetch"):
        open_source("urls", {"path": "a.txt", "fetch": {"speed": 3}})


# ---------------------------------------------------------------- URL lists

URL_POLICY = {"min_interval_s": 0.0, "backoff_s": 0.01, "max_attempts": 2}


def _url_site() -> dict[str, object]:
    return {
        "/a.png": png_reply(textured_image(1)),
        "/b.png": png_reply(textured_image(2)),
        "/page.html": Reply(200, b"<html></html>"),
    }


def test_url_lists_in_txt_csv_and_jsonl_give_the_same_images_with_provenance(
    tmp_path: Path,
) -> None:
    with serve(_url_site()) as site:  # type: ignore[arg-type]
        a, b = site.url("/a.png"), site.url("/b.png")
        (tmp_path / "list.txt").write_text(f"# reference\n{a}\n\n{b}\n{a}\n")
        (tmp_path / "list.csv").write_text(
            f"url,page_url,license,attribution\n{a},https://example.org/a,CC BY 4.0,Ada\n{b},,,\n"
        )
        (tmp_path / "list.jsonl").write_text(
            json.dumps({"url": a, "page_url": "https://example.org/a", "licence": "CC BY 4.0"})
            + "\n"
            + json.dumps({"url": b, "attribution": "Bob"})
            + "\n"
        )
        found = {}
        for name in ("list.txt", "list.csv", "list.jsonl"):
            source = open_source("urls", {"path": str(tmp_path / name), "fetch": URL_POLICY})
            assert isinstance(source, UrlListSource)
            found[name] = list(source.items())
        assert site.count("/a.png") == 3  # once per list: the txt list's repeat is skipped
    for results in found.values():
        assert [r.source_uri for r in results] == [a, b]
        assert all(isinstance(r, SourceItem) for r in results)
    csv_a, csv_b = found["list.csv"]
    assert isinstance(csv_a, SourceItem) and isinstance(csv_b, SourceItem)
    assert (csv_a.page_url, csv_a.licence, csv_a.attribution) == (
        "https://example.org/a",
        "CC BY 4.0",
        "Ada",
    )
    assert (csv_b.page_url, csv_b.licence, csv_b.attribution) == (None, None, None)
    jsonl_b = found["list.jsonl"][1]
    assert isinstance(jsonl_b, SourceItem) and jsonl_b.attribution == "Bob"


def test_url_list_failures_carry_their_reasons(tmp_path: Path) -> None:
    with serve(_url_site()) as site:  # type: ignore[arg-type]
        lines = [
            json.dumps({"url": site.url("/a.png")}),
            "{not json",
            json.dumps({"page_url": "https://example.org/"}),
            json.dumps({"url": site.url("/missing.png")}),
            json.dumps({"url": site.url("/page.html")}),
            json.dumps({"url": "file:///etc/passwd"}),
        ]
        path = tmp_path / "list.jsonl"
        path.write_text("\n".join(lines) + "\n")
        results = list(UrlListSource(str(path), fetch=FetchPolicy(**URL_POLICY)).items())
    reasons = {r.source_uri: r.reason for r in results if isinstance(r, IngestFailure)}
    assert reasons[f"{path}:2"].startswith("bad line: ")
    assert reasons[f"{path}:3"] == "bad line: no url"
    assert reasons[site.url("/missing.png")] == "HTTP 404"
    assert reasons[site.url("/page.html")] == "not an image: content type text/html"
    assert reasons["file:///etc/passwd"] == "unsupported URL scheme 'file'"
    assert [r.source_uri for r in results if isinstance(r, SourceItem)] == [site.url("/a.png")]


def test_a_csv_url_list_needs_a_url_column(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("link\nhttps://example.org/a.png\n")
    with pytest.raises(ValueError, match="`url` column"):
        list(UrlListSource(str(path)).entries())
    with pytest.raises(ValueError, match=r"\.txt, \.csv or \.jsonl"):
        UrlListSource(str(tmp_path / "list.xlsx"))


# ---------------------------------------------------------------- Pinterest


class _FakeMedia:
    """The attributes of pinterest-dl's PinterestMedia that the source reads."""

    def __init__(self, id: int, src: str, alt: str | None, origin: str | None) -> None:
        self.id, self.src, self.alt, self.origin = id, src, alt, origin


def test_pinterest_media_map_to_pins_and_images_with_the_pin_page(tmp_path: Path) -> None:
    with serve(_url_site()) as site:  # type: ignore[arg-type]
        calls: list[tuple[str, int, float]] = []

        def fake_scrape(url: str, limit: int, timeout: float) -> list[object]:
            calls.append((url, limit, timeout))
            return [
                _FakeMedia(1, site.url("/a.png"), "a dancer", "https://www.pinterest.com/pin/1/"),
                {"id": 2, "src": site.url("/b.png"), "alt": "", "origin": None},  # to_dict() form
                _FakeMedia(3, "", None, "https://www.pinterest.com/pin/3/"),
                _FakeMedia(4, site.url("/missing.png"), None, "https://www.pinterest.com/pin/4/"),
            ]

        source = PinterestBoardSource(
            "https://www.pinterest.com/someone/poses/",
            max_images=10,
            fetch=FetchPolicy(**URL_POLICY),
            scrape=fake_scrape,
        )
        pins = source.pins()
        results = list(source.items())
    assert calls == [("https://www.pinterest.com/someone/poses/", 10, 30.0)] * 2  # pins(), items()
    assert pins[0] == Pin(site.url("/a.png"), "https://www.pinterest.com/pin/1/", "a dancer")
    assert pins[1] == Pin(site.url("/b.png"), None, None)
    items = [r for r in results if isinstance(r, SourceItem)]
    failures = {r.source_uri: r.reason for r in results if isinstance(r, IngestFailure)}
    assert [i.source_uri for i in items] == [site.url("/a.png"), site.url("/b.png")]
    assert items[0].page_url == "https://www.pinterest.com/pin/1/"
    assert items[0].licence is None  # pins carry no licence
    assert items[0].attribution == "saved on Pinterest: https://www.pinterest.com/pin/1/"
    assert failures == {
        "https://www.pinterest.com/pin/3/": "pin without an image URL",
        site.url("/missing.png"): "HTTP 404",
    }


def test_pinterest_without_the_optional_package_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pinterest_dl", None)  # an import of it fails
    source = open_source("pinterest", {"board_url": "https://www.pinterest.com/someone/poses/"})
    with pytest.raises(SourceUnavailableError, match=r"poseframer\[pinterest\]"):
        list(source.items())
    with pytest.raises(SourceConfigError, match="not a Pinterest URL"):
        open_source("pinterest", {"board_url": "https://example.org/board"})
