"""Drawings with nobody in them that no model here trained on: Tux Paint's stamps on paper.

The drawn-figure model trained against the even half of Open Clip Art's `animals/` and
`food/` (`pipelines.pose.drawn.training_data`), and its odd half is where issue 12's goals for
drawn animals and food are measured. Debian's `tuxpaint-stamps-default` (GPL-2, Tux Paint
project) holds about 800 more stamps in other hands' styles: drawn and photographed animals,
food, letters, symbols, chess pieces, hats and clothes, tools, houses, vehicles, plants.
`build` lays every stamp without a person in it on white paper (its transparency filled,
at most `SIDE` pixels, a margin around it) and writes a PNG per stamp into `animals`, `food`
or `things` and there into `dev` or `held_out` by the stamp name's hash (as
`benchmarks.photo_negatives`). Left out: the `people/` and `sports/` folders, and the stamps
elsewhere that show a human figure (`FIGURES`: a pedestrian sign, the toilets' pictograms, an
astronaut, a fireman, Santa's head, a statue, ...). Nothing here is committed.

    python -m benchmarks.drawn_negatives [--out .poseframer/drawn-negatives]

prints the folders it wrote, for `python -m benchmarks.pose_eval --extra-negatives DIR`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from benchmarks.paths import REPO
from benchmarks.photo_negatives import STAMPS, half_of

SIDE = 480
MARGIN = 20
KINDS = ("animals", "food")  # every other folder's stamps are `things`
PEOPLE_FOLDERS = ("people", "sports")
# Stamps outside PEOPLE_FOLDERS that show a human figure or a person's head.
FIGURES = frozenset(
    {
        "German_Christmas_toy", "Santa", "fireman240a", "inukshuk-outline", "inukshuk-photo",
        "paratrooper", "spacewalk", "statue", "toilets", "xing_ped", "xing_school",
        "xing_school_mirror",
    }
)  # fmt: skip
DEFAULT_OUT = REPO / ".poseframer" / "drawn-negatives"


def stamps_without_people(root: Path = STAMPS) -> list[tuple[str, Path]]:
    """(kind, stamp) for every stamp without a person: kind is `animals`, `food` or
    `things`."""
    out = []
    for path in sorted(root.rglob("*.png")):
        top = path.relative_to(root).parts[0]
        if top in PEOPLE_FOLDERS or path.stem in FIGURES:
            continue
        out.append((top if top in KINDS else "things", path))
    return out


def on_paper(stamp: Path) -> Image.Image:
    """The stamp on white, at most `SIDE` pixels, `MARGIN` pixels of paper around it."""
    with Image.open(stamp) as opened:
        cutout = opened.convert("RGBA")
    scale = SIDE / max(cutout.size)
    if scale < 1:
        cutout = cutout.resize(
            (max(1, round(cutout.width * scale)), max(1, round(cutout.height * scale))),
            Image.Resampling.LANCZOS,
        )
    paper = Image.new("RGB", (cutout.width + 2 * MARGIN, cutout.height + 2 * MARGIN), "white")
    paper.paste(cutout, (MARGIN, MARGIN), cutout)
    return paper


def build(out: Path = DEFAULT_OUT) -> list[Path]:
    """Write every stamp under `out/KIND/{dev,held_out}`; the folders written."""
    found = stamps_without_people()
    if not found:
        raise SystemExit(
            "needs Debian's tuxpaint-stamps-default "
            "(apt-get install --no-install-recommends tuxpaint-stamps-default)"
        )
    folders: set[Path] = set()
    for kind, stamp in found:
        folder = out / kind / half_of(stamp)
        folder.mkdir(parents=True, exist_ok=True)
        # Stamps of one name in two folders (a photo and its cartoon) keep both.
        name = "_".join(stamp.relative_to(STAMPS).with_suffix("").parts[1:]) or stamp.stem
        on_paper(stamp).save(folder / f"{name}.png")
        folders.add(folder)
    return sorted(folders)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    for folder in build(args.out):
        print(f"{folder}  ({sum(1 for _ in folder.glob('*.png'))} images)")


if __name__ == "__main__":
    main()
