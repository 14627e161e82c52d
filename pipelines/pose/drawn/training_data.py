"""The drawn-figure model's training data (the recipe is `pipelines.pose.drawn.train`'s doc):
renders of sampled poses, Open Clip Art's drawn people labelled by BlazePose, and drawings
with nobody in them, each prepared once into a cache of `.npz` files.

Open Clip Art (Debian's `openclipart-png`) folders `animals/`, `food/` and `people/` are
split in two by their file names' hash (`is_training_file`): only the even half is ever
trained on, the other half and all of `people/stickmen` are for testing.
"""

from __future__ import annotations

import functools
import hashlib
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.pose.drawn.figures import COCO_OF_JOINT, JOINTS, sample_figure
from pipelines.pose.drawn.ink import INPUT, ink_crop
from pipelines.pose.drawn.render import quadruped, render, scribbles

CLIPART = Path("/usr/share/openclipart/png")
NOBODY = (
    "animals",
    "food",
    "buildings",
    "computer",
    "containers",
    "decorations",
    "electronics",
    "geography",
    "office",
    "plants",
    "shapes",
    "tools",
    "transportation",
)
HELD_OUT_HALF = ("animals", "food", "people")


def is_training_file(path: Path) -> bool:
    """The fixed half of a held-out folder used for training (its name's hash is even)."""
    return hashlib.sha1(path.name.encode()).digest()[0] % 2 == 0


def grey_of(path: Path, max_side: int = 320) -> np.ndarray | None:
    from pipelines.images import decode_image

    try:
        image, _ = decode_image(path.read_bytes())
    except Exception:
        return None
    image.thumbnail((max_side, max_side))
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def _render_one(seed: int, style: str | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    rng = np.random.default_rng(seed)
    grey, truth, _ = render(sample_figure(rng), rng, style)
    cropped = ink_crop(grey)
    if cropped is None:
        return None
    x, crop = cropped
    joints = truth.copy()
    joints[:, :2] = (truth[:, :2] - crop.origin) / crop.scale
    return (x * 255).astype(np.uint8), joints.astype(np.float32)


def _scribble_one(seed: int) -> np.ndarray | None:
    cropped = ink_crop(scribbles(np.random.default_rng(seed)))
    return None if cropped is None else (cropped[0] * 255).astype(np.uint8)


def prepare(cache: Path, renders: int, seed: int, clipart: Path) -> dict[str, np.ndarray]:
    """Render and read the training data once; later runs load it from `cache`."""
    cache.mkdir(parents=True, exist_ok=True)
    rendered = cache / f"renders-{renders}-{seed}.npz"
    if not rendered.is_file():
        seeds = [seed * 10_000_000 + i for i in range(renders)]
        # Spawned, not forked: a fork of a process running MediaPipe or torch threads (a test
        # session) can hang; and the workers leave by close and join, not by a SIGTERM that
        # a signal handler installed in the parent may swallow.
        with get_context("spawn").Pool(2) as pool:
            drawn = [r for r in pool.imap(_render_one, seeds, chunksize=256) if r is not None]
            scribbled = [
                s
                for s in pool.imap(
                    _scribble_one, [s + 5_000_000 for s in seeds[: renders // 8]], 256
                )
                if s is not None
            ]
            pool.close()
            pool.join()
        print(f"{len(drawn)} renders, {len(scribbled)} scribbles", flush=True)
        np.savez(
            rendered,
            drawn=np.stack([d[0] for d in drawn]),
            drawn_joints=np.stack([d[1] for d in drawn]),
            scribbles=np.stack(scribbled),
        )
    real = cache / f"clipart-{seed}.npz"
    if not real.is_file():
        nobody = _nobody(clipart, np.random.default_rng(seed), per_folder=400)
        people, people_joints = _drawn_people(clipart)
        print(f"{len(nobody)} clip-art images without people, {len(people)} drawn people")
        empty = np.zeros((0, INPUT, INPUT), np.uint8)
        np.savez(
            real,
            nobody=np.stack(nobody) if nobody else empty,
            people=np.stack(people) if people else empty,
            people_joints=np.stack(people_joints)
            if people
            else np.zeros((0, len(JOINTS), 3), np.float32),
        )
    return {**dict(np.load(rendered)), **dict(np.load(real))}


def _crops(files: list[Path]) -> list[np.ndarray]:
    """The model's input (as bytes) for each drawing that decodes and holds ink."""
    out = []
    for f in files:
        grey = grey_of(f)
        cropped = None if grey is None else ink_crop(grey)
        if cropped is not None:
            out.append((cropped[0] * 255).astype(np.uint8))
    return out


def _nobody(clipart: Path, rng: np.random.Generator, per_folder: int) -> list[np.ndarray]:
    """Up to `per_folder` drawings of each folder without people (held-out halves left out)."""
    nobody: list[np.ndarray] = []
    for folder in NOBODY:
        files = sorted((clipart / folder).rglob("*.png"))
        if folder in HELD_OUT_HALF:
            files = [f for f in files if is_training_file(f)]
        chosen = rng.permutation(np.array(files, dtype=object))[:per_folder]
        nobody += _crops([Path(f) for f in chosen])
    return nobody


def prepare_weak(cache: Path, seed: int, clipart: Path) -> dict[str, np.ndarray]:
    """The second stage's real drawings, each folder's held-out half left out: every drawing
    of `people/` (but the stick men) as "a human is drawn here" (no joints), those where
    BlazePose reads one clear figure with its joints too, and up to 800 drawings of each
    folder without people."""
    cache.mkdir(parents=True, exist_ok=True)
    done = cache / f"clipart-weak-{seed}.npz"
    if done.is_file():
        return dict(np.load(done))
    humans = _crops(
        [
            f
            for f in sorted((clipart / "people").rglob("*.png"))
            if "stickmen" not in f.parts and is_training_file(f)
        ]
    )
    nobody = _nobody(clipart, np.random.default_rng(seed), per_folder=800)
    people, joints = _drawn_people(clipart, training_half=True)
    print(f"{len(humans)} drawn humans, {len(people)} with joints, {len(nobody)} without people")
    empty = np.zeros((0, INPUT, INPUT), np.uint8)
    data = {
        "humans": np.stack(humans) if humans else empty,
        "nobody": np.stack(nobody) if nobody else empty,
        "people": np.stack(people) if people else empty,
        "people_joints": np.stack(joints) if people else np.zeros((0, len(JOINTS), 3), np.float32),
    }
    np.savez(done, **data)
    return data


def prepare_beans(cache: Path, count: int, seed: int) -> dict[str, np.ndarray]:
    """`count` bean figures and half as many drawn four-legged animals (their look-alikes
    with nobody in them), seeds apart from the other renders', rendered once."""
    return _figures_and_animals(cache, ("beans", "bean", "quadrupeds"), count, seed, 8_000_000)


def prepare_children(cache: Path, count: int, seed: int) -> dict[str, np.ndarray]:
    """`count` children's drawings of people and half as many drawn four-legged animals with
    faces (their look-alikes with nobody in them), seeds apart from the others', rendered once."""
    return _figures_and_animals(cache, ("children", "child", "faced"), count, seed, 9_000_000)


def prepare_traced(cache: Path, count: int, seed: int) -> dict[str, np.ndarray]:
    """`count` line drawings traced from painted bodies (`render`'s `traced` style), seeds
    apart from the others', rendered once; no look-alikes of their own (the fourth stage's
    are the line versions of the drawings without people, `line_versions`)."""
    return _figures_and_animals(cache, ("traced", "traced", None), count, seed, 11_000_000)


def line_versions(images: np.ndarray) -> np.ndarray:
    """Each model input (ink as bytes) traced: the edges of its shapes as thin lines. Clip
    art's filled drawings become line art with the same joints (people) or nobody."""
    import cv2

    out = np.zeros_like(images)
    for i, image in enumerate(images):
        out[i] = np.where(cv2.Canny(cv2.GaussianBlur(image, (3, 3), 0.8), 40, 100) > 0, 255, 0)
    return out


def _figures_and_animals(
    cache: Path, names: tuple[str, str, str | None], count: int, seed: int, offset: int
) -> dict[str, np.ndarray]:
    """`count` renders in one style and `count // 2` drawn animals (with faces when the
    animals' key is "faced"; none without a key), cached as `<key>-<count>-<seed>.npz`."""
    key, style, animals_key = names
    path = cache / f"{key}-{count}-{seed}.npz"
    if not path.is_file():
        seeds = [seed * 10_000_000 + offset + i for i in range(count)]
        animal = functools.partial(_quadruped_one, faces=animals_key == "faced")
        with get_context("spawn").Pool(2) as pool:  # spawned: see `prepare`
            figures = pool.imap(functools.partial(_render_one, style=style), seeds, 256)
            drawn = [r for r in figures if r is not None]
            wanted = seeds[: count // 2] if animals_key else []
            animals = [q for q in pool.imap(animal, wanted, 256) if q is not None]
            pool.close()
            pool.join()
        arrays = {
            key: np.stack([d[0] for d in drawn]),
            f"{key}_joints": np.stack([d[1] for d in drawn]),
        }
        if animals_key:
            arrays[animals_key] = np.stack(animals)
        np.savez(path, **arrays)
    with np.load(path) as saved:
        return {name: saved[name] for name in saved.files}


def _quadruped_one(seed: int, faces: bool = False) -> np.ndarray | None:
    cropped = ink_crop(quadruped(np.random.default_rng(seed), faces))
    return None if cropped is None else (cropped[0] * 255).astype(np.uint8)


def _drawn_people(
    clipart: Path, training_half: bool = False
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Open Clip Art's people (not the stick men), labelled by BlazePose's reading."""
    from pipelines.catalog import keypoint_models

    detector = keypoint_models.load(
        "mediapipe", hands=False, stick_figures=False, drawn_model=False
    )
    images, labels = [], []
    for path in sorted((clipart / "people").glob("*.png")):
        if training_half and not is_training_file(path):
            continue
        grey = grey_of(path, max_side=640)
        if grey is None:
            continue
        people = detector.detect(Image.fromarray((grey * 255).astype(np.uint8)).convert("RGB"))
        if len(people) != 1:
            continue
        pose = people[0].array()[list(COCO_OF_JOINT)]
        if float(pose[:, 2].mean()) < 0.5:
            continue
        cropped = ink_crop(grey)
        if cropped is None:
            continue
        x, crop = cropped
        joints = np.zeros((len(JOINTS), 3), np.float32)
        joints[:, :2] = (pose[:, :2] - crop.origin) / crop.scale
        joints[:, 2] = pose[:, 2] >= 0.5
        images.append((x * 255).astype(np.uint8))
        labels.append(joints)
    return images, labels
