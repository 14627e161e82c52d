"""Photos with nobody in them: real animal and food photos set into real scenes.

The evalset holds 11 images with nobody, and its animal photos were studied when the human-
evidence rules were chosen, so they say little about animals nobody tuned for. Debian's Tux
Paint packages carry more real photographs (GPL-2, Tux Paint project): `tuxpaint-stamps-default`
has photographic cut-outs of animals (apes, bears, cattle, deer, horses, zebras, birds,
insects, fish, ...) and food, and `tuxpaint-data` has 19 photos of scenes (woods, rocks,
sea, a field) to stand them in. `build` pastes each stamp (its `cartoon` and `toys` folders
left out: those are drawn) at a seeded size (40–85 % of the scene's shorter side) and place
into a seeded scene, 640 pixels across, and writes a JPEG per stamp into a `dev` or
`held_out` folder by the stamp name's hash: choose settings on `dev`, report `held_out`.
Nothing here is committed; the images are made from the installed packages.

    python -m benchmarks.photo_negatives [--out .poseframer/photo-negatives]

prints the folders it wrote, for `python -m benchmarks.pose_eval --extra-negatives DIR`.
The Debian packages install with
`apt-get install --no-install-recommends tuxpaint-stamps-default tuxpaint-data`.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image

from benchmarks.paths import REPO
from pipelines.pose.drawn.training_data import is_training_file

STAMPS = Path("/usr/share/tuxpaint/stamps")
SCENES = Path("/usr/share/tuxpaint/templates")
KINDS = ("animals", "food")
DRAWN_FOLDERS = ("cartoon", "toys")
SEED = 5
SCENE_WIDTH = 640
STAMP_SHARE = (0.4, 0.85)
DEFAULT_OUT = REPO / ".poseframer" / "photo-negatives"


def half_of(path: Path) -> str:
    """`dev` or `held_out`, fixed by the hash of the file's name (the split of the clip art's
    held-out folders, `is_training_file`)."""
    return "dev" if is_training_file(path) else "held_out"


def stamps(kind: str, root: Path = STAMPS) -> list[Path]:
    """The photographic stamps of one Tux Paint folder (drawn sub-folders left out)."""
    return sorted(
        p
        for p in (root / kind).rglob("*.png")
        if not any(part in DRAWN_FOLDERS for part in p.relative_to(root).parts)
    )


def scene_with(stamp: Path, scenes: list[Path], rng: random.Random) -> Image.Image:
    """One stamp pasted into a scene, both drawn by `rng`."""
    with Image.open(rng.choice(scenes)) as opened:
        scene = opened.convert("RGB")
    scale = SCENE_WIDTH / max(scene.size)
    scene = scene.resize((round(scene.width * scale), round(scene.height * scale)))
    with Image.open(stamp) as opened:
        cutout = opened.convert("RGBA")
    side = min(scene.size) * rng.uniform(*STAMP_SHARE)
    k = side / max(cutout.size)
    cutout = cutout.resize(
        (max(1, round(cutout.width * k)), max(1, round(cutout.height * k))),
        Image.Resampling.LANCZOS,
    )
    x = rng.randint(0, max(0, scene.width - cutout.width))
    y = rng.randint(0, max(0, scene.height - cutout.height))
    scene.paste(cutout, (x, y), cutout)
    return scene


def build(out: Path = DEFAULT_OUT, kinds: tuple[str, ...] = KINDS, seed: int = SEED) -> list[Path]:
    """Write every kind's scenes under `out/KIND/{dev,held_out}`; the folders written."""
    scenes = sorted(SCENES.glob("*.jpg"))
    if not scenes or not STAMPS.is_dir():
        raise SystemExit(
            "needs Debian's tuxpaint-stamps-default and tuxpaint-data "
            "(apt-get install --no-install-recommends tuxpaint-stamps-default tuxpaint-data)"
        )
    rng = random.Random(seed)
    folders = []
    for kind in kinds:
        for stamp in stamps(kind):
            folder = out / kind / half_of(stamp)
            folder.mkdir(parents=True, exist_ok=True)
            scene_with(stamp, scenes, rng).save(folder / f"{stamp.stem}.jpg", quality=90)
        folders += [out / kind / half for half in ("dev", "held_out")]
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    for folder in build(args.out, seed=args.seed):
        print(f"{folder}  ({sum(1 for _ in folder.glob('*.jpg'))} images)")


if __name__ == "__main__":
    main()
