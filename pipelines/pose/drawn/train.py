"""Train the drawn-figure model on the CPU (or a GPU when one is there), in three stages.

    python -m pipelines.pose.drawn.train --renders 64000 --steps 5500 --seed 7 --out STAGE1
    python -m pipelines.pose.drawn.train --renders 64000 --steps 1500 --seed 7 --lr 1e-3 \
        --weak --init STAGE1 --out STAGE2
    python -m pipelines.pose.drawn.train --renders 64000 --steps 2400 --seed 7 --lr 5e-4 \
        --weak --beans 8000 --children 8000 --init STAGE2 --check 0

(`make drawn-model` runs the three with the committed weights' settings; the last writes
`pipelines/pose/drawn/weights/drawn-v1.pt`.)

Data recipe, all generated or public domain, nothing from the evalset; Open Clip Art
(Debian's `openclipart-png`) folders `animals/`, `food/` and `people/` are split in two by
their file names' hash (`is_training_file`): only the even half is ever trained on, the
other half and all of `people/stickmen` are for testing.
- figures: `--renders` drawings of poses sampled by `pipelines.pose.drawn.figures.sample_figure`
  (seed `--seed`) in the styles of `pipelines.pose.drawn.render` (stick, mannequin, contour);
- drawn people with joints: Open Clip Art's `people/` drawings in which BlazePose reads
  exactly one clear figure, labelled with that reading;
- nobody: `scribbles` (strokes and shapes), and Open Clip Art's folders without people.
Stage one (`FIRST_MIX`): 20 renders, 4 drawn people with joints, 6 drawings without people
(up to 400 per folder), 2 scribbles per batch of 32. Stage two (`--weak`, `WEAK_MIX`) adds
every training-half drawing of `people/` as "a human is drawn here" (its figure output
only: most are not one clear figure) and up to 800 drawings per folder without people,
starting from stage one's weights. Stage three (`--beans` and `--children`, `CHILD_MIX`)
adds bean figures and children's drawings of people (`render`'s `bean` and `child` styles,
seeds of their own) and, as their look-alikes with nobody in them, drawn four-legged animals
(`quadruped`), half of them with a child's-drawing face, to stage two's data, from stage
two's weights. Each image is flipped at random. Loss: heatmap MSE over
the labelled joints, the better of the two left/right assignments, plus the figure output's
binary cross-entropy; AdamW, 200 warm-up steps, cosine decay.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import math
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pipelines.pose.drawn.figures import COCO_OF_JOINT, FLIP, JOINTS, sample_figure
from pipelines.pose.drawn.ink import GRID, INPUT, STRIDE, decode, ink_crop
from pipelines.pose.drawn.model import DrawnPoseNet
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
SIGMA = 1.5  # heatmap Gaussian, in grid cells


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


def _figures_and_animals(
    cache: Path, names: tuple[str, str, str], count: int, seed: int, offset: int
) -> dict[str, np.ndarray]:
    """`count` renders in one style and `count // 2` drawn animals (with faces when the
    animals' key is "faced"), cached as `<key>-<count>-<seed>.npz`."""
    key, style, animals_key = names
    path = cache / f"{key}-{count}-{seed}.npz"
    if not path.is_file():
        seeds = [seed * 10_000_000 + offset + i for i in range(count)]
        animal = functools.partial(_quadruped_one, faces=animals_key == "faced")
        with get_context("spawn").Pool(2) as pool:  # spawned: see `prepare`
            figures = pool.imap(functools.partial(_render_one, style=style), seeds, 256)
            drawn = [r for r in figures if r is not None]
            animals = [q for q in pool.imap(animal, seeds[: count // 2], 256) if q is not None]
            pool.close()
            pool.join()
        np.savez(
            path,
            **{
                key: np.stack([d[0] for d in drawn]),
                f"{key}_joints": np.stack([d[1] for d in drawn]),
                animals_key: np.stack(animals),
            },
        )
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


def heatmaps(joints: torch.Tensor) -> torch.Tensor:
    """(B, 13, 3) joints in input pixels → (B, 13, GRID, GRID) Gaussian targets."""
    centre = (torch.arange(GRID, dtype=torch.float32) + 0.5) * STRIDE - 0.5
    gx = (joints[..., 0:1] - centre) / (SIGMA * STRIDE)
    gy = (joints[..., 1:2] - centre) / (SIGMA * STRIDE)
    return torch.exp(-0.5 * (gy[..., :, None] ** 2 + gx[..., None, :] ** 2))


def loss_of(
    heat: torch.Tensor, logit: torch.Tensor, joints: torch.Tensor, figure: torch.Tensor
) -> torch.Tensor:
    target = heatmaps(joints) * figure[:, None, None, None]
    labelled = torch.where(figure[:, None] > 0, joints[..., 2], torch.ones_like(joints[..., 2]))
    flip = list(FLIP)

    def per_sample(t: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        error = (heat - t).square().mean(dim=(2, 3))
        return (error * w).sum(dim=1) / w.sum(dim=1).clamp(min=1)

    heat_loss = torch.minimum(
        per_sample(target, labelled), per_sample(target[:, flip], labelled[:, flip])
    )
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, figure)
    return 200.0 * heat_loss.mean() + bce


def _flip(x: np.ndarray, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    joints = joints[list(FLIP)].copy()
    joints[:, 0] = INPUT - 1 - joints[:, 0]
    return x[:, ::-1], joints


# Each batch: (data key, how many, figure or not). The first stage's, then the second's.
FIRST_MIX = (("drawn", 20, 1.0), ("people", 4, 1.0), ("nobody", 6, 0.0), ("scribbles", 2, 0.0))
WEAK_MIX = (
    ("drawn", 16, 1.0),
    ("people", 3, 1.0),
    ("humans", 5, 1.0),
    ("nobody", 7, 0.0),
    ("scribbles", 1, 0.0),
)
CHILD_MIX = (
    ("drawn", 10, 1.0),
    ("beans", 3, 1.0),
    ("children", 3, 1.0),
    ("people", 3, 1.0),
    ("humans", 5, 1.0),
    ("nobody", 5, 0.0),
    ("quadrupeds", 1, 0.0),
    ("faced", 1, 0.0),
    ("scribbles", 1, 0.0),
)


def batches(  # type: ignore[no-untyped-def]
    data: dict[str, np.ndarray], rng: np.random.Generator, mix=FIRST_MIX
):
    none = np.zeros((len(JOINTS), 3), np.float32)  # no joints labelled (or none there)
    while True:
        xs, js, fs = [], [], []
        for key, count, figure in mix:
            if len(data[key]) == 0:
                continue
            labelled = f"{key}_joints" in data
            for i in rng.integers(0, len(data[key]), count):
                x, j = data[key][i], data[f"{key}_joints"][i] if labelled else none
                if rng.random() < 0.5:
                    x, j = _flip(x, j)
                xs.append(x)
                js.append(j)
                fs.append(figure)
        yield (
            torch.from_numpy(np.stack(xs)[:, None].astype(np.float32) / 255.0),
            torch.from_numpy(np.stack(js)),
            torch.tensor(fs, dtype=torch.float32),
        )


def validate(net: DrawnPoseNet, count: int = 300, seed: int = 99) -> float:
    """PCK@0.2 of the trunk on held-out renders (another seed), the better side assignment."""
    net.eval()
    rng = np.random.default_rng(seed)
    scores = []
    with torch.no_grad():
        for _ in range(count):
            grey, truth, trunk = render(sample_figure(rng), rng)
            cropped = ink_crop(grey)
            if cropped is None:
                continue
            x, crop = cropped
            heat, _ = net(torch.from_numpy(x)[None, None])
            pred = decode(heat[0].numpy())
            pred[:, :2] = crop.to_drawing(pred[:, :2])
            seen = truth[:, 2] > 0
            best = 0.0
            for order in (list(range(len(JOINTS))), list(FLIP)):
                d = np.linalg.norm(pred[order, :2] - truth[:, :2], axis=1)
                best = max(best, float((d[seen] <= 0.2 * trunk).mean()))
            scores.append(best)
    net.train()
    return float(np.mean(scores))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=64000)
    parser.add_argument("--steps", type=int, default=6500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--width", type=int, default=48)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--clipart", type=Path, default=CLIPART)
    parser.add_argument("--cache", type=Path, default=Path(".poseframer/drawn-train"))
    parser.add_argument("--weak", action="store_true", help="the second stage's data and mix")
    parser.add_argument("--init", type=Path, default=None, help="weights to start from")
    parser.add_argument("--beans", type=int, default=0, help="the third stage's bean figures")
    parser.add_argument("--children", type=int, default=0, help="… and children's drawings")
    parser.add_argument("--check", type=int, default=300, help="held-out renders to score")
    parser.add_argument(
        "--out", type=Path, default=Path("pipelines/pose/drawn/weights/drawn-v1.pt")
    )
    args = parser.parse_args(argv)
    if bool(args.beans) != bool(args.children) or (args.children and not args.weak):
        parser.error("the third stage takes --weak, --beans and --children together")
    torch.manual_seed(args.seed)
    data = prepare(args.cache, args.renders, args.seed, args.clipart)
    if args.weak:
        data.update(prepare_weak(args.cache, args.seed, args.clipart))
    if args.beans:
        data.update(prepare_beans(args.cache, args.beans, args.seed))
    if args.children:
        data.update(prepare_children(args.cache, args.children, args.seed))
    net = DrawnPoseNet(args.width)
    if args.init is not None:
        saved = torch.load(args.init, map_location="cpu", weights_only=True)
        net.load_state_dict({k: v.float() for k, v in saved["state"].items()})
    optimiser = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)

    def rate(step: int) -> float:  # warm up over 200 steps, then cosine decay
        return min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * step / args.steps))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, rate)
    started, running = time.perf_counter(), 0.0
    mix = CHILD_MIX if args.children else WEAK_MIX if args.weak else FIRST_MIX
    stream = batches(data, np.random.default_rng(args.seed), mix)
    for step in range(1, args.steps + 1):
        x, joints, figure = next(stream)
        heat, logit = net(x)
        loss = loss_of(heat, logit, joints, figure)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        value = float(loss.detach())
        running = 0.98 * running + 0.02 * value if step > 1 else value
        if step % 100 == 0:
            print(
                f"step {step}/{args.steps} loss {running:.4f} {time.perf_counter() - started:.0f}s",
                flush=True,
            )
        if step % 1000 == 0 or step == args.steps:
            save(net, args)
            if args.check:
                print(f"  held-out renders PCK@0.2 {validate(net, args.check):.3f}", flush=True)
    return 0


def save(net: DrawnPoseNet, args: argparse.Namespace) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    torch.save({"width": args.width, "state": state}, args.out)


if __name__ == "__main__":
    sys.exit(main())
