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
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from assets.indexing import index_folder
from assets.instance import open_instance
from benchmarks.clip_throughput import clip_throughput_mode, print_throughput
from benchmarks.index_bench_setup import (
    CLIP_CHOICES,
    DEFAULT_SOURCE,
    load_models,
    machine,
    make_settings,
    prepare_images,
)
from pipelines.clip.encoder import ClipEncoder
from pipelines.images import decode_image
from pipelines.pose.embedding import PoseEmbedder
from pipelines.pose.keypoints import KeypointDetector
from pipelines.records import Pose


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


# ---------------------------------------------------------------- models


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


# ---------------------------------------------------------------- main


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
