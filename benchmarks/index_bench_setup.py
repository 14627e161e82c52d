"""What `benchmarks.index_bench`'s modes share: the images they index (the evalset's, or
variants of them to reach a count), the settings and the models they load.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from assets.definitions import build_definitions
from benchmarks.paths import TINY_CLIP, evalset_dir
from config.settings import Settings
from pipelines.clip.encoder import ClipEncoder
from pipelines.images import decode_image
from pipelines.pose.embedding import PoseEmbedder
from pipelines.pose.keypoints import KeypointDetector

DEFAULT_SOURCE = evalset_dir() / "images"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
CLIP_CHOICES = {
    # name: (model, pretrained, config)
    "vit-b-32-random": ("ViT-B-32", "random", None),  # the default model's real cost, offline
    "tiny": ("poseframer-tiny-clip", "random", str(TINY_CLIP)),  # the tests' plumbing model
}


def variant(image: Image.Image, round_: int) -> Image.Image:
    """A different but still natural picture of the same scene (so its bytes are new)."""
    out = ImageOps.mirror(image) if round_ % 2 else image
    inset = 0.04 * (1 + round_ // 2)
    w, h = out.size
    box = (round(w * inset), round(h * inset), round(w * (1 - inset)), round(h * (1 - inset)))
    return out.crop(box)


def prepare_images(folder: Path, count: int, source: Path | None) -> str:
    """`count` distinct image files in `folder`; what they are, in words."""
    folder.mkdir(parents=True)
    files = (
        sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if source is not None and source.is_dir()
        else []
    )
    if not files:
        rng = np.random.default_rng(0)
        for i in range(count):
            base = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)
            picture = Image.fromarray(base).resize((640, 480), Image.Resampling.BICUBIC)
            picture.save(folder / f"synthetic-{i:04d}.jpg", quality=90)
        return f"{count} synthetic 640x480 images (no evalset at {source})"
    for i in range(count):
        path = files[i % len(files)]
        if i < len(files):
            os.symlink(path.resolve(), folder / path.name)  # read in place, never copied
        else:
            upright, _ = decode_image(path.read_bytes())
            variant(upright, i // len(files)).save(folder / f"v{i:04d}-{path.stem}.jpg", quality=92)
    return f"{count} images from {source} ({min(count, len(files))} originals, the rest variants)"


def load_models(settings: Settings) -> tuple[KeypointDetector, PoseEmbedder, ClipEncoder]:
    """The instances the indexing resources hand the assets (the registries cache them)."""
    resources: dict[str, Any] = dict(build_definitions(settings).resources or {})
    return (
        resources["keypoint_model"].get(),
        resources["pose_model"].get(),
        resources["clip_model"].get(),
    )


def make_settings(args: argparse.Namespace, home: Path) -> Settings:
    if args.clip == "env":
        env = Settings.from_env().models
        model, pretrained, config = env.clip_model, env.clip_pretrained, env.clip_config
    else:
        model, pretrained, config = CLIP_CHOICES[args.clip]
    return Settings.of(
        home=home,
        clip_model=model,
        clip_pretrained=pretrained,
        clip_config=config,
        device=args.device,
        batch_size=args.batch_size,
    )


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}"
