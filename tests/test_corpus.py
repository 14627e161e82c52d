"""Folder credits (CREDITS.tsv) and the demo corpus committed in samples/corpus."""

from __future__ import annotations

import csv
import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pipelines.images import decode_image
from pipelines.records import IngestFailure
from pipelines.sources.base import CREDITS_FILE, LocalFolderSource, SourceItem, read_credits
from tests.synthetic import image_bytes

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "samples" / "corpus"
HEADER = "file\ttitle\tlicence\tattribution\tsource_url\n"
PNG = image_bytes((20, 20), "PNG")


def items_by_name(folder: Path) -> dict[str, SourceItem | IngestFailure]:
    base = folder.resolve()
    return {
        Path(r.source_uri).relative_to(base).as_posix(): r
        for r in LocalFolderSource(str(folder)).items()
    }


def test_credits_are_attached_to_the_files_they_list(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("a.png", "b.png", "unlisted.png", "sub/c.png", "sub/d.png"):
        (tmp_path / name).write_bytes(image_bytes((20, 20), "PNG", color=(len(name), 0, 0)))
    (tmp_path / CREDITS_FILE).write_text(
        HEADER
        + "a.png\tA\tCC0-1.0\tAnn Artist\thttps://example.org/a\n"
        + "b.png\tB\tCC-BY-4.0\t\t\n"  # empty cells are "unknown", not ""
        + "sub/c.png\tC\tCC0-1.0\tParent's view\thttps://example.org/c\n"
        + "sub/d.png\tD\tCC0-1.0\tParent's view\t\n",
        encoding="utf-8",
    )
    # The nearest CREDITS.tsv wins; its columns may come in another order.
    (tmp_path / "sub" / CREDITS_FILE).write_text(
        "attribution\tfile\tlicense\tpage_url\nCarl\tc.png\tPDM-1.0\thttps://example.org/c2\n",
        encoding="utf-8",
    )
    items = items_by_name(tmp_path)
    assert set(items) == {"a.png", "b.png", "unlisted.png", "sub/c.png", "sub/d.png"}
    a, b, unlisted, c, d = (
        items[n] for n in ("a.png", "b.png", "unlisted.png", "sub/c.png", "sub/d.png")
    )
    assert isinstance(a, SourceItem)
    assert (a.licence, a.attribution, a.page_url) == (
        "CC0-1.0",
        "Ann Artist",
        "https://example.org/a",
    )
    assert isinstance(b, SourceItem)
    assert (b.licence, b.attribution, b.page_url) == ("CC-BY-4.0", None, None)
    assert isinstance(unlisted, SourceItem)
    assert (unlisted.licence, unlisted.attribution, unlisted.page_url) == (None, None, None)
    assert isinstance(c, SourceItem)
    assert (c.licence, c.attribution, c.page_url) == ("PDM-1.0", "Carl", "https://example.org/c2")
    assert isinstance(d, SourceItem)
    assert (d.licence, d.attribution) == ("CC0-1.0", "Parent's view")


def test_credits_file_is_not_an_image_nor_a_failure(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / CREDITS_FILE).write_text(HEADER + "a.png\tA\tCC0-1.0\tAnn\t\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("still tried: only CREDITS.tsv is special")
    items = items_by_name(tmp_path)
    assert set(items) == {"a.png", "notes.txt"}
    assert all(isinstance(item, SourceItem) for item in items.values())


def test_bad_credit_lines_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "b.png").write_bytes(image_bytes((20, 20), "PNG", color=(0, 0, 9)))
    (tmp_path / CREDITS_FILE).write_text(
        HEADER
        + "a.png only spaces, no tabs\n"  # line 2
        + "\tno name\tCC0-1.0\tX\t\n"  # line 3
        + "../outside.png\tT\tCC0-1.0\tX\t\n"  # line 4: outside the folder
        + "/etc/passwd\tT\tCC0-1.0\tX\t\n"  # line 5
        + "# a comment\n"
        + "\n"
        + "b.png\tB\tCC0-1.0\tBea\n",  # fewer columns than the header: still usable
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING, logger="pipelines.sources.base"):
        items = items_by_name(tmp_path)
    assert set(items) == {"a.png", "b.png"}
    a, b = items["a.png"], items["b.png"]
    assert isinstance(a, SourceItem) and a.licence is None
    assert isinstance(b, SourceItem) and (b.licence, b.attribution) == ("CC0-1.0", "Bea")
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert CREDITS_FILE in warning
    assert "4 line(s) skipped" in warning and "line 2, 3, 4, 5" in warning


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"a.png\tCC0-1.0\tAnn\n", "first line must name the columns"),  # no header
        (b"file\tlicence\n\xff\xfe\x00bad bytes\n", "unreadable"),  # not UTF-8
    ],
)
def test_an_unusable_credits_file_does_not_stop_the_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, says: str
) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / CREDITS_FILE).write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="pipelines.sources.base"):
        items = items_by_name(tmp_path)
    assert set(items) == {"a.png"}
    item = items["a.png"]
    assert isinstance(item, SourceItem) and item.licence is None
    assert any(says in r.getMessage() for r in caplog.records)


def test_a_credits_file_with_only_a_header_lists_nothing(tmp_path: Path) -> None:
    (tmp_path / CREDITS_FILE).write_text(HEADER, encoding="utf-8")
    assert read_credits(tmp_path / CREDITS_FILE) == {}


def corpus_credits() -> dict[str, dict[str, str]]:
    with (CORPUS / CREDITS_FILE).open(encoding="utf-8", newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}


def test_every_corpus_image_is_credited_and_decodes() -> None:
    credits = corpus_credits()
    images = sorted(p.name for p in CORPUS.iterdir() if p.name != CREDITS_FILE)
    assert 40 <= len(images) <= 70
    assert sorted(credits) == images, "CREDITS.tsv and the folder list different files"
    for name, row in credits.items():
        assert row["licence"].strip(), f"{name}: no licence"
        assert row["attribution"].strip(), f"{name}: no attribution"
        assert row["source_url"].strip(), f"{name}: no source"
        image, _ = decode_image((CORPUS / name).read_bytes())
        assert max(image.size) <= 640, f"{name}: {image.size} is larger than the corpus allows"


def test_corpus_stays_small() -> None:
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert total <= 5 * 1024 * 1024, f"samples/corpus is {total / 1e6:.1f} MB (limit 5 MB)"


def test_the_folder_source_reads_the_corpus_credits() -> None:
    items = list(LocalFolderSource(str(CORPUS)).items())
    assert len(items) == len(corpus_credits())
    for item in items:
        assert isinstance(item, SourceItem)
        assert item.licence is not None and "CC0" in item.licence
        assert item.attribution and item.page_url


def load_curate(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """samples/curate.py is a script, not a package module: load it from its path (listed in
    sys.modules while the test runs, as its dataclass needs)."""
    spec = importlib.util.spec_from_file_location("curate", REPO / "samples" / "curate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "curate", module)
    spec.loader.exec_module(module)
    return module


def test_the_curation_script_lists_exactly_the_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    curate = load_curate(monkeypatch)
    names = [choice.name + ".png" for choice in curate.CHOICES]
    assert len(names) == len(set(names)), "two choices share a file name"
    assert sorted(names) == sorted(corpus_credits())
    paths = [choice.path for choice in curate.CHOICES]
    assert len(paths) == len(set(paths)), "a drawing is chosen twice"
