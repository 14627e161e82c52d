"""`benchmarks.index_bench --clip-throughput`: how many images per second the CLIP image tower
takes on this machine's device (random weights: speed only), and what feeds it.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.index_bench_setup import (
    CLIP_CHOICES,
    load_models,
    machine,
    make_settings,
    prepare_images,
)
from pipelines.images import decode_image

CLIP_RETRIEVAL_A100 = 2500  # images/s, ViT-B/32, clip-retrieval's README


def clip_throughput_mode(args: argparse.Namespace) -> dict[str, Any]:
    import open_clip
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.fp16 and not device.startswith("cuda"):
        raise SystemExit("--fp16 needs a CUDA device")
    model_name = CLIP_CHOICES["vit-b-32-random"][0] if args.clip != "tiny" else "ViT-B-32"
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, device=device)
    model.eval()
    result: dict[str, Any] = {
        "mode": "clip-throughput",
        "clip_model": f"{model_name} (random weights: speed only)",
        "device": device,
        "gpu": torch.cuda.get_device_name(device) if device.startswith("cuda") else None,
        "batch_size": args.throughput_batch,
        "clip_retrieval_a100_images_per_s": CLIP_RETRIEVAL_A100,
    }
    dtypes = [("fp32", torch.float32)] + ([("fp16", torch.float16)] if args.fp16 else [])
    for label, dtype in dtypes:
        tower = model.to(dtype)
        batch = torch.randn(args.throughput_batch, 3, 224, 224, device=device, dtype=dtype)
        with torch.inference_mode():
            for _ in range(3):
                tower.encode_image(batch)
            synchronize(device)
            done, started = 0, time.perf_counter()
            while time.perf_counter() - started < args.throughput_seconds:
                tower.encode_image(batch)
                done += len(batch)
            synchronize(device)
        result[f"clip_images_per_s_{label}"] = round(done / (time.perf_counter() - started), 1)

    # What feeds the tower: decode + preprocess of real images on one CPU core.
    root = Path(tempfile.mkdtemp(prefix="poseframer-clip-bench-"))
    try:
        prepare_images(root / "images", args.images, args.source)
        files = sorted((root / "images").iterdir())
        started = time.perf_counter()
        images = [decode_image(p.read_bytes())[0] for p in files]
        decode_s = time.perf_counter() - started
        started = time.perf_counter()
        for image in images:
            preprocess(image)
        preprocess_s = time.perf_counter() - started

        settings = make_settings(args, root / "home")
        detector, embedder, _ = load_models(settings)
        detector.detect(images[0])
        started = time.perf_counter()
        poses = [pose for image in images for pose in detector.detect(image)]
        keypoints_s = time.perf_counter() - started
        started = time.perf_counter()
        for pose in poses * max(1, 2000 // max(1, len(poses))):
            embedder.embed(pose)
        embed_n = len(poses) * max(1, 2000 // max(1, len(poses)))
        embed_s = time.perf_counter() - started
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result.update(
        decode_images_per_s_one_core=round(len(images) / decode_s, 1),
        preprocess_images_per_s_one_core=round(len(images) / preprocess_s, 1),
        keypoint_images_per_s=round(len(images) / keypoints_s, 2),
        poses_per_s=round(len(poses) / keypoints_s, 2),
        pose_embeddings_per_s=round(embed_n / embed_s, 1),
        machine=machine(),
    )
    return result


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def print_throughput(result: dict[str, Any]) -> None:
    print(f"CLIP {result['clip_model']} on {result['device']} {result['gpu'] or ''}")
    for key in ("clip_images_per_s_fp32", "clip_images_per_s_fp16"):
        if key in result:
            share = 100 * result[key] / CLIP_RETRIEVAL_A100
            print(f"{key:<36}{result[key]:>10}  ({share:.0f}% of clip-retrieval's A100 figure)")
    for key in (
        "decode_images_per_s_one_core",
        "preprocess_images_per_s_one_core",
        "keypoint_images_per_s",
        "poses_per_s",
        "pose_embeddings_per_s",
    ):
        print(f"{key:<36}{result[key]:>10}")
