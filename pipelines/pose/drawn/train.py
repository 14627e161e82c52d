"""Train the drawn-figure model on the CPU (or a GPU when one is there), in three stages.

    python -m pipelines.pose.drawn.train --renders 64000 --steps 5500 --seed 7 --out STAGE1
    python -m pipelines.pose.drawn.train --renders 64000 --steps 1500 --seed 7 --lr 1e-3 \
        --weak --init STAGE1 --out STAGE2
    python -m pipelines.pose.drawn.train --renders 64000 --steps 2400 --seed 7 --lr 5e-4 \
        --weak --beans 8000 --children 8000 --init STAGE2 --check 0

(`make drawn-model` runs the three with the committed weights' settings; the last writes
`pipelines/pose/drawn/weights/drawn-v1.pt`.) A fourth stage was tried and not kept (the
README's drawn-figures section says why); it is rebuilt from the committed weights by

    python -m pipelines.pose.drawn.train --renders 64000 --steps 1200 --seed 7 --lr 3e-4 \
        --weak --beans 8000 --children 8000 --traced 8000 \
        --init pipelines/pose/drawn/weights/drawn-v1.pt --check 0 --out STAGE4

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
two's weights. The tried stage four (`--traced`, `TRACED_MIX`) adds line drawings traced
from painted bodies (`render`'s `traced` style) and the line versions of the clip art
(`line_versions`: the drawn people's edges with their joints, the drawings without people as
nobody), to stage three's data, from stage three's weights. Each image is flipped at random. Loss:
heatmap MSE over the labelled joints, the better of the two left/right assignments, plus the
figure output's binary cross-entropy; AdamW, 200 warm-up steps, cosine decay.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pipelines.pose.drawn.figures import FLIP, JOINTS, sample_figure
from pipelines.pose.drawn.ink import GRID, INPUT, STRIDE, decode, ink_crop
from pipelines.pose.drawn.model import DrawnPoseNet
from pipelines.pose.drawn.render import render
from pipelines.pose.drawn.training_data import (
    CLIPART,
    line_versions,
    prepare,
    prepare_beans,
    prepare_children,
    prepare_traced,
    prepare_weak,
)
from pipelines.pose.figure_geometry import pck_either_side

SIGMA = 1.5  # heatmap Gaussian, in grid cells


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
TRACED_MIX = (
    ("drawn", 8, 1.0),
    ("beans", 2, 1.0),
    ("children", 2, 1.0),
    ("traced", 4, 1.0),
    ("people", 2, 1.0),
    ("people_lines", 1, 1.0),
    ("humans", 3, 1.0),
    ("nobody", 6, 0.0),
    ("nobody_lines", 1, 0.0),
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
            scores.append(pck_either_side(pred, truth, FLIP, 0.2 * trunk, truth[:, 2] > 0))
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
    parser.add_argument(
        "--traced", type=int, default=0, help="the fourth stage's tracings (with the third's data)"
    )
    parser.add_argument("--check", type=int, default=300, help="held-out renders to score")
    parser.add_argument(
        "--out", type=Path, default=Path("pipelines/pose/drawn/weights/drawn-v1.pt")
    )
    args = parser.parse_args(argv)
    if bool(args.beans) != bool(args.children) or (args.children and not args.weak):
        parser.error("the third stage takes --weak, --beans and --children together")
    if args.traced and not args.children:
        parser.error("the fourth stage (--traced) takes the third stage's data too")
    torch.manual_seed(args.seed)
    data = prepare(args.cache, args.renders, args.seed, args.clipart)
    if args.weak:
        data.update(prepare_weak(args.cache, args.seed, args.clipart))
    if args.beans:
        data.update(prepare_beans(args.cache, args.beans, args.seed))
    if args.children:
        data.update(prepare_children(args.cache, args.children, args.seed))
    if args.traced:
        data.update(prepare_traced(args.cache, args.traced, args.seed))
        data["people_lines"] = line_versions(data["people"])
        data["people_lines_joints"] = data["people_joints"]
        data["nobody_lines"] = line_versions(data["nobody"])
    net = DrawnPoseNet(args.width)
    if args.init is not None:
        saved = torch.load(args.init, map_location="cpu", weights_only=True)
        net.load_state_dict({k: v.float() for k, v in saved["state"].items()})
    optimiser = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)

    def rate(step: int) -> float:  # warm up over 200 steps, then cosine decay
        return min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * step / args.steps))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, rate)
    started, running = time.perf_counter(), 0.0
    mix = (
        TRACED_MIX
        if args.traced
        else CHILD_MIX
        if args.children
        else WEAK_MIX
        if args.weak
        else FIRST_MIX
    )
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
