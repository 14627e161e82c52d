"""Download the openly licensed sample images listed in `samples/openly-licensed.tsv`.

An opt-in extra (`make samples-download`; it needs the network): `make demo` indexes the
drawings committed in `samples/corpus/` and never downloads. A URL that fails is reported and
skipped. The folder gets a `CREDITS.tsv` of every image in it, which the folder source reads,
so each indexed image carries its licence, attribution and page.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import requests

from pipelines.images import ImageDecodeError, decode_image
from pipelines.sources.base import CREDITS_FILE

USER_AGENT = "PoseFramer/0.1 (sample download for a local demo)"
DEFAULT_LIST = Path(__file__).resolve().parents[2] / "samples" / "openly-licensed.tsv"
MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class SampleImage:
    url: str
    licence: str
    attribution: str
    page_url: str


def read_sample_list(path: Path) -> list[SampleImage]:
    samples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        url, licence, attribution, page_url = [*line.split("\t"), "", "", ""][:4]
        samples.append(
            SampleImage(url.strip(), licence.strip(), attribution.strip(), page_url.strip())
        )
    return samples


def file_name(sample: SampleImage) -> str:
    return hashlib.sha256(sample.url.encode()).hexdigest()[:16] + ".jpg"


def title_of(sample: SampleImage) -> str:
    """A readable title from the page address (`…/File:Mona_Lisa.jpg` → `Mona Lisa`)."""
    last = urllib.parse.unquote(urllib.parse.urlsplit(sample.page_url or sample.url).path)
    last = last.rsplit("/", 1)[-1].removeprefix("File:")
    return Path(last).stem.replace("_", " ")


def write_credits(dest: Path, samples: list[SampleImage]) -> None:
    """`dest/CREDITS.tsv` for the listed images that are in `dest` (see LocalFolderSource)."""
    lines = ["file\ttitle\tlicence\tattribution\tsource_url"]
    for sample in samples:
        if (dest / file_name(sample)).exists():
            cells = (
                file_name(sample),
                title_of(sample),
                sample.licence,
                sample.attribution,
                sample.page_url or sample.url,
            )
            lines.append("\t".join(cell.replace("\t", " ") for cell in cells))
    (dest / CREDITS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def download_samples(dest: Path, listing: Path = DEFAULT_LIST, timeout: float = 30.0) -> int:
    """Fetch every listed image into `dest`; returns how many images are there afterwards."""
    dest.mkdir(parents=True, exist_ok=True)
    samples = read_sample_list(listing)
    ok = 0
    for sample in samples:
        target = dest / file_name(sample)
        if target.exists():
            ok += 1
            continue
        try:
            response = requests.get(
                sample.url, timeout=timeout, headers={"User-Agent": USER_AGENT}, stream=True
            )
            response.raise_for_status()
            data = response.raw.read(MAX_BYTES + 1, decode_content=True)
            if len(data) > MAX_BYTES:
                raise ValueError("larger than 20 MB")
            decode_image(data)
        except (requests.RequestException, ValueError, ImageDecodeError) as exc:
            print(f"skipped {sample.url}: {exc}", file=sys.stderr)
            continue
        target.write_bytes(data)
        ok += 1
        print(f"downloaded {sample.page_url or sample.url} ({sample.licence})")
    write_credits(dest, samples)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Download PoseFramer's openly licensed samples")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--list", type=Path, default=DEFAULT_LIST)
    args = parser.parse_args(argv)
    count = download_samples(args.dest, args.list)
    if count == 0:
        print(
            "error: no sample image could be downloaded (no network?); `make demo` needs none: "
            "it indexes the drawings in samples/corpus, or `make demo SAMPLES=DIR` a folder of "
            "your own images",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
