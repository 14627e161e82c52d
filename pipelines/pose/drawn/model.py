"""The drawn-figure model: a compact heatmap network that reads a drawing's figure.

The network reads a drawing's ink as `pipelines.pose.drawn.ink` prepares it: a small residual
encoder over three scales and an upsampling path back to 32 × 32 give one heatmap per joint of
`pipelines.pose.drawn.figures.JOINTS` and one figure logit: whether the drawing shows a human
figure at all (trained against animals, food, objects and scribbles).

Left and right cannot be told in a drawing: training scores the better of the two side
assignments, so the model keeps one convention of its own; drawn queries search
mirror-invariantly.
"""

from __future__ import annotations

import torch
from torch import nn

from pipelines.pose.drawn.figures import JOINTS


class _Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class DrawnPoseNet(nn.Module):
    """128 × 128 ink → (13 heatmaps at 32 × 32, figure logit)."""

    def __init__(self, width: int = 48) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(_down(1, w // 2), _down(w // 2, w), _Block(w), _Block(w))
        self.mid = nn.Sequential(_down(w, 2 * w), _Block(2 * w), _Block(2 * w))
        self.deep = nn.Sequential(_down(2 * w, 3 * w), _Block(3 * w), _Block(3 * w), _Block(3 * w))
        self.lift_deep = nn.Conv2d(3 * w, 2 * w, 1)
        self.lift_mid = nn.Conv2d(2 * w, w, 1)
        self.fuse_mid = _Block(2 * w)
        self.fuse = _Block(w)
        self.heads = nn.Conv2d(w, len(JOINTS), 3, padding=1)
        self.figure = nn.Linear(3 * w, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fine = self.stem(x)
        mid = self.mid(fine)
        deep = self.deep(mid)
        up = nn.functional.interpolate(self.lift_deep(deep), scale_factor=2.0, mode="nearest")
        mid = self.fuse_mid(mid + up)
        up = nn.functional.interpolate(self.lift_mid(mid), scale_factor=2.0, mode="nearest")
        heat = self.heads(self.fuse(fine + up))
        figure = self.figure(deep.mean(dim=(2, 3))).squeeze(1)
        return heat, figure
