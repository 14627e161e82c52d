"""Download the openly licensed sample images listed in `samples/openly-licensed.tsv`.

Used by `make demo` on machines without the evalset. Each image is saved with a hidden JSON
sidecar of its licence and attribution; a URL that fails is reported and skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from pipelines.images import ImageDecodeError, decode_image

USER_AGENT = "PoseFramer/0.1 (sample download for a local demo)"
DEFAULT_LIST = Path(__file__).resolve().parents[1] / "samples" / "openly-licensed.tsv"
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


def download_samples(dest: Path, listing: Path = DEFAULT_LIST, timeout: float = 30.0) -> int:
    """Fetch every listed image into `dest`; returns how many images are there afterwards."""
    dest.mkdir(parents=True, exist_ok=True)
    ok = 0
    for sample in read_sample_list(listing):
        name = hashlib.sha256(sample.url.encode()).hexdigest()[:16] + ".jpg"
        target = dest / name
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
        # A hidden sidecar: the folder source skips hidden files, so it is not "a failed image".
        (dest / f".{name}.licence.json").write_text(json.dumps(sample.__dict__, indent=2))
        ok += 1
        print(f"downloaded {sample.page_url or sample.url} ({sample.licence})")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Download PoseFramer's openly licensed samples")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--list", type=Path, default=DEFAULT_LIST)
    args = parser.parse_args(argv)
    count = download_samples(args.dest, args.list)
    if count == 0:
        print(
            "error: no sample image could be downloaded; run `make demo SAMPLES=DIR` with a "
            "folder of your own images",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
