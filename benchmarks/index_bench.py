"""Indexing throughput: the whole pipeline against the raw cost of its models, in one run.

    python -m benchmarks.index_bench [--images 100] [--device auto|cpu|cuda] [--clip ...]
    python -m benchmarks.index_bench --clip-throughput --device cuda [--fp16]

Pipeline mode (the default) prepares `--images` distinct images (the evalset's photos, plus
mirrored/cropped re-encodings of them to reach the count, in a temporary folder; synthetic
images without the evalset), loads the models the indexing resources use, then measures in
the same process:

- the raw per-image cost of each model on those images, one after the other: keypoint
  detection, CLIP image embedding (batches of `--batch-size`, preprocessing included) and pose
  embedding (per person found); decoding is timed too, but it is not a model;
- `index_folder` on the same images: the real Dagster job into a temporary home (the models
  are already loaded, so both sides exclude loading).

The models are measured before and after each pipeline run, and each run is compared with
the mean of the two measurements around it, so a change in the machine's load during the
benchmark (other jobs on a shared machine) biases neither side; `--rounds N` repeats the
pipeline run (into a fresh home each time) for a steadier figure.

It prints images/s through the pipeline, each model's cost per image, and the pipeline's
overhead: (pipeline time − sum of model times) / pipeline time. The pipeline runs keypoints
and CLIP side by side in one step (each image decoded once), so part of the work around the
models hides in the time the two models overlap; the step's time is printed beside the two
models' time one after the other. The last line is one JSON object.

`--clip-throughput` measures CLIP alone the way clip-retrieval's figure (about 2,500 images/s
per A100 for ViT-B/32) is measured: batches of preprocessed images through the image tower on
`--device`, in fp32 and (with `--fp16`, CUDA only) fp16, plus preprocessing images/s on one CPU
core, keypoint detection poses/s and pose-embedding vectors/s. Random weights: the figures
are speed, not quality.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
from PIL import Image, ImageOps

from assets.definitions import build_definitions
from assets.indexing import index_folder
from assets.instance import open_instance
from benchmarks.paths import evalset_dir
from config.settings import Settings
from pipelines.clip.encoder import ClipEncoder
from pipelines.images import decode_image
from pipelines.pose.embedding import PoseEmbedder
from pipelines.pose.keypoints import KeypointDetector
from pipelines.records import Pose

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = evalset_dir() / "images"
TINY_CLIP = REPO / "tests" / "fixtures" / "poseframer-tiny-clip.json"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
CLIP_RETRIEVAL_A100 = 2500  # images/s, ViT-B/32, clip-retrieval's README
CLIP_CHOICES = {
    # name: (model, pretrained, config)
    "vit-b-32-random": ("ViT-B-32", "random", None),  # the default model's real cost, offline
    "tiny": ("poseframer-tiny-clip", "random", str(TINY_CLIP)),  # the tests' plumbing model
}


@dataclass(frozen=True)
class ModelCosts:
    images: int
    people: int
    decode_s: float
    keypoints_s: float
    clip_s: float
    pose_s: float

    @property
    def models_s(self) -> float:
        return self.keypoints_s + self.clip_s + self.pose_s


# ---------------------------------------------------------------- images


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


# ---------------------------------------------------------------- models


def load_models(settings: Settings) -> tuple[KeypointDetector, PoseEmbedder, ClipEncoder]:
    """The instances the indexing resources hand the assets (the registries cache them)."""
    resources: dict[str, Any] = dict(build_definitions(settings).resources or {})
    return (
        resources["keypoint_model"].get(),
        resources["pose_model"].get(),
        resources["clip_model"].get(),
    )


def measure_models(
    files: list[Path],
    detector: KeypointDetector,
    embedder: PoseEmbedder,
    encoder: ClipEncoder | None,
    batch_size: int,
) -> ModelCosts:
    started = time.perf_counter()
    images = [decode_image(p.read_bytes())[0] for p in files]
    decode_s = time.perf_counter() - started

    started = time.perf_counter()
    people: list[Pose] = [pose for image in images for pose in detector.detect(image)]
    keypoints_s = time.perf_counter() - started

    started = time.perf_counter()
    for pose in people:
        embedder.embed(pose)
    pose_s = time.perf_counter() - started

    clip_s = 0.0
    if encoder is not None:
        started = time.perf_counter()
        for start in range(0, len(images), batch_size):
            encoder.encode_images(images[start : start + batch_size])
        clip_s = time.perf_counter() - started
    return ModelCosts(len(images), len(people), decode_s, keypoints_s, clip_s, pose_s)


def mean_costs(measured: list[ModelCosts]) -> ModelCosts:
    n = len(measured)
    return ModelCosts(
        images=measured[0].images,
        people=measured[0].people,
        decode_s=sum(c.decode_s for c in measured) / n,
        keypoints_s=sum(c.keypoints_s for c in measured) / n,
        clip_s=sum(c.clip_s for c in measured) / n,
        pose_s=sum(c.pose_s for c in measured) / n,
    )


def warm_up(
    files: list[Path], detector: KeypointDetector, encoder: ClipEncoder | None
) -> tuple[float, str | None]:
    """Load the models (timed) and run each once, so neither side pays for loading."""
    started = time.perf_counter()
    image, _ = decode_image(files[0].read_bytes())
    detector.detect(image)
    problem = None
    if encoder is not None:
        try:
            encoder.load()
            encoder.encode_images([image])
        except Exception as exc:  # no weights: the pipeline indexes without CLIP, so do we
            problem = str(exc)
    return time.perf_counter() - started, problem


# ---------------------------------------------------------------- pipeline mode


def pipeline_mode(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="poseframer-index-bench-"))
    pipeline_times: list[float] = []
    bracketing: list[ModelCosts] = []  # the models' cost around each pipeline run
    steps: dict[str, float] = {}
    try:
        folder = root / "images"
        described = prepare_images(folder, args.images, args.source)
        files = sorted(folder.iterdir())
        settings = make_settings(args, root / "home")
        detector, embedder, encoder = load_models(settings)
        load_s, clip_problem = warm_up(files, detector, encoder)

        def models() -> ModelCosts:
            return measure_models(
                files,
                detector,
                embedder,
                None if clip_problem else encoder,
                settings.models.batch_size,
            )

        measured = [models()]
        for round_ in range(args.rounds):
            settings = make_settings(args, root / f"home-{round_}")
            started = time.perf_counter()
            report = index_folder(folder, settings, batch_id="bench")
            pipeline_times.append(time.perf_counter() - started)
            if not report.success:
                raise SystemExit("the indexing run failed")
            indexed = report.new_images
            for step, seconds in step_seconds(settings.storage.home).items():
                steps[step] = steps.get(step, 0.0) + seconds / args.rounds
            measured.append(models())
            bracketing.append(mean_costs(measured[-2:]))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    costs = mean_costs(measured)
    pipeline_s = sum(pipeline_times)
    models_s = sum(c.models_s for c in bracketing)
    per_image = {
        "decode_ms": 1000 * costs.decode_s / costs.images,
        "keypoints_ms": 1000 * costs.keypoints_s / costs.images,
        "clip_ms": 1000 * costs.clip_s / costs.images,
        "pose_embedding_ms": 1000 * costs.pose_s / costs.images,
    }
    overhead = (pipeline_s - models_s) / pipeline_s
    return {
        "mode": "pipeline",
        "images": indexed,
        "rounds": args.rounds,
        "people": costs.people,
        "source": described,
        "clip_model": encoder.model_id,
        "clip_available": clip_problem is None,
        "device": settings.models.device,
        "batch_size": settings.models.batch_size,
        "pipeline_s": round(pipeline_s / args.rounds, 2),
        "images_per_s": round(indexed * args.rounds / pipeline_s, 2),
        "models_s": round(models_s / args.rounds, 2),
        "model_only_images_per_s": round(costs.images * args.rounds / models_s, 2),
        **{k: round(v, 2) for k, v in per_image.items()},
        "pose_embedding_us_per_person": round(1e6 * costs.pose_s / max(1, costs.people), 1),
        "overhead_pct": round(100 * overhead, 1),
        "pipeline_s_each": [round(t, 2) for t in pipeline_times],
        "models_s_each_measurement": [round(c.models_s, 2) for c in measured],
        "keypoints_and_clip_one_after_the_other_s": round(costs.keypoints_s + costs.clip_s, 2),
        # The pipeline decodes each original twice: in source_images, and once for both
        # keypoints and CLIP.
        "decode_share_of_pipeline_pct": round(
            100 * 2 * costs.decode_s * args.rounds / pipeline_s, 1
        ),
        "model_load_s": round(load_s, 2),
        "step_s": {k: round(v, 2) for k, v in steps.items()},
        "outside_steps_s": round(pipeline_s / args.rounds - sum(steps.values()), 2),
        "machine": machine(),
    }


def step_seconds(home: Path) -> dict[str, float]:
    """Each step's duration in the run just made, from the home's Dagster event log."""
    instance = open_instance(home)
    (run,) = instance.get_runs(limit=1)
    starts: dict[str, float] = {}
    durations: dict[str, float] = {}
    for record in instance.all_logs(run.run_id):
        event = record.dagster_event
        if event is None or record.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[record.step_key] = record.timestamp
        elif event.event_type in (
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
        ):
            durations[record.step_key] = round(record.timestamp - starts[record.step_key], 2)
    return durations


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


def print_pipeline(result: dict[str, Any]) -> None:
    print(f"{result['source']}; CLIP {result['clip_model']} on {result['device']}")
    if not result["clip_available"]:
        print("CLIP weights unavailable: the pipeline indexed without CLIP vectors")
    rows = [
        ("pipeline (index_folder)", f"{result['images_per_s']} images/s",
         f"{result['pipeline_s']} s for {result['images']} images"),
        ("models alone", f"{result['model_only_images_per_s']} images/s",
         f"{result['models_s']} s"),
        ("  keypoints", f"{result['keypoints_ms']} ms/image", f"{result['people']} people"),
        ("  CLIP image", f"{result['clip_ms']} ms/image", f"batch {result['batch_size']}"),
        ("  pose embedding", f"{result['pose_embedding_ms']} ms/image",
         f"{result['pose_embedding_us_per_person']} µs/person"),
        ("decode (not a model)", f"{result['decode_ms']} ms/image",
         f"≈ {result['decode_share_of_pipeline_pct']}% of the pipeline (2 decodes/image)"),
        ("overhead", f"{result['overhead_pct']}%", "(pipeline − models) / pipeline; goal ≤ 20%"),
        ("keypoints + CLIP step", f"{result['step_s'].get('image_models', '?')} s",
         f"side by side, vs {result['keypoints_and_clip_one_after_the_other_s']} s for the two "
         "models one after the other"),
        ("measurements", f"{result['rounds']} pipeline run(s)",
         f"pipeline {result['pipeline_s_each']} s; models around them "
         f"{result['models_s_each_measurement']} s"),
    ]  # fmt: skip
    for name, value, note in rows:
        print(f"{name:<26}{value:<22}{note}")
    steps = ", ".join(
        f"{k} {v} s" for k, v in sorted(result["step_s"].items(), key=lambda kv: -kv[1])
    )
    print(f"{'steps':<26}{steps}; outside the steps {result['outside_steps_s']} s")


# ---------------------------------------------------------------- CLIP throughput mode


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


# ---------------------------------------------------------------- main


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.index_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--images", type=int, default=100, help="how many images (default 100)")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder of photos")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (CLIP)")
    parser.add_argument(
        "--clip",
        choices=[*CLIP_CHOICES, "env"],
        default="vit-b-32-random",
        help="CLIP to index with: ViT-B-32 with random weights (its real cost, offline; the "
        "default), the tests' tiny model, or POSEFRAMER_CLIP_* from the environment",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="CLIP batch when indexing")
    parser.add_argument(
        "--rounds", type=int, default=1, help="pipeline runs, each between two model measurements"
    )
    parser.add_argument(
        "--clip-throughput", action="store_true", help="measure CLIP alone (GPU mode)"
    )
    parser.add_argument("--fp16", action="store_true", help="also measure CLIP at fp16 (CUDA)")
    parser.add_argument("--throughput-batch", type=int, default=256)
    parser.add_argument("--throughput-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    if args.images < 1 or args.batch_size < 1 or args.rounds < 1:
        parser.error("--images, --batch-size and --rounds must be at least 1")

    if args.clip_throughput:
        result = clip_throughput_mode(args)
        print_throughput(result)
    else:
        result = pipeline_mode(args)
        print_pipeline(result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
