"""`poseframer`: serve the search API, index a folder of images, or both (`demo`).

Indexing runs in this process, through the same function as `python -m assets.indexing`
(`assets.indexing.run_index`); the service is `serving.app` under uvicorn. One `Settings`
(the environment and the command line's overrides) configures both.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from assets.indexing import run_index
from config.settings import ENV_PREFIX, Settings, describe_settings_error

# The public-domain drawings committed with the project (samples/README.md); present in a
# clone or an editable install, not in a wheel, where `demo --samples DIR` is needed.
DEFAULT_SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "corpus"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
# The file `demo` suggests uploading when the folder has it: a stick figure with both arms up,
# in which the pose model finds the figure.
SUGGESTED_UPLOAD = "stickman-arms-up.png"
# COCO-17 keypoints ([x, y], pixels; score 1) of a standing figure with its arms stretched out
# to the sides: the curl example (on the sample drawings it finds the kid with arms out first).
ARMS_OUT = (
    (60, 20), (63, 17), (57, 17), (66, 19), (54, 19), (72, 40), (48, 40), (94, 40), (26, 40),
    (116, 40), (4, 40), (67, 92), (53, 92), (68, 127), (52, 127), (68, 162), (52, 162),
)  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="poseframer",
        description="Find art reference by pose: index images, then search them by pose or text.",
        epilog=f"Settings come from {ENV_PREFIX}* environment variables "
        f"(e.g. {ENV_PREFIX}HOME, {ENV_PREFIX}CLIP_PRETRAINED); the options below override them.",
    )
    parser.add_argument(
        "--home",
        type=Path,
        help=f"the PoseFramer home directory (default: ${ENV_PREFIX}HOME or ./.poseframer)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the search API (HTTP)")
    serve.add_argument("--host", help=f"interface to listen on (default: ${ENV_PREFIX}HOST)")
    serve.add_argument("--port", type=int, help=f"port to listen on (default: ${ENV_PREFIX}PORT)")

    index = commands.add_parser(
        "index", help="index a folder of images as a new batch (or finish its interrupted one)"
    )
    index.add_argument("folder", type=Path, help="folder of images (searched recursively)")
    index.add_argument("--batch-id", help="name of the ingest batch (default: time + folder)")
    index.add_argument(
        "--new-batch",
        action="store_true",
        help="start a new batch even if an earlier run of the folder stopped before publishing "
        "(by default that batch is resumed)",
    )

    demo = commands.add_parser(
        "demo",
        help="index the sample images (or --samples DIR), then serve search on them",
        description="Index a folder of sample images (as `poseframer index` does; images "
        "already indexed are skipped) and serve search on it (as `poseframer serve`), printing "
        "the address and two things to try. Needs no network.",
    )
    demo.add_argument(
        "--samples",
        type=Path,
        default=DEFAULT_SAMPLES,
        help="folder of images to index (default: the project's public-domain drawings, "
        f"{DEFAULT_SAMPLES})",
    )
    demo.add_argument("--host", help=f"interface to listen on (default: ${ENV_PREFIX}HOST)")
    demo.add_argument("--port", type=int, help=f"port to listen on (default: ${ENV_PREFIX}PORT)")
    return parser


def _settings(args: argparse.Namespace) -> Settings | None:
    """The settings with the command line's overrides; None (and the reason on stderr) when
    they are invalid."""
    overrides = {
        name: getattr(args, name)
        for name in ("home", "host", "port")
        if getattr(args, name, None) is not None
    }
    try:
        return Settings.from_env(**overrides)
    except ValueError as exc:  # pydantic's ValidationError is one
        print(describe_settings_error(exc), file=sys.stderr)
        return None


def _run_server(settings: Settings) -> int:
    import uvicorn

    from serving.app import create_app

    app = create_app(settings)
    uvicorn.run(app, host=settings.service.host, port=settings.service.port)
    return 0


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return 2
    print(f"PoseFramer: serving {settings.storage.home} at {_base_url(settings)}/")
    return _run_server(settings)


def _index(args: argparse.Namespace) -> int:
    folder: Path = args.folder
    if not folder.is_dir():
        print(f"poseframer index: not a folder: {folder}", file=sys.stderr)
        return 2
    settings = _settings(args)
    if settings is None:
        return 2
    return _run_indexer(settings, folder, args.batch_id, args.new_batch)


def _run_indexer(
    settings: Settings, folder: Path, batch_id: str | None = None, new_batch: bool = False
) -> int:
    try:
        return run_index(
            settings,
            folder=folder,
            batch_id=batch_id,
            new_batch=new_batch,
            progress=sys.stderr.isatty(),
        )
    except KeyboardInterrupt:
        return 130


def _base_url(settings: Settings) -> str:
    """Where a browser on this machine reaches the service."""
    host = settings.service.host
    if host in ("0.0.0.0", "::", ""):  # every interface: loopback is one of them
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.service.port}"


def _upload_suggestion(folder: Path) -> Path | None:
    """An image of `folder` to suggest uploading: the stick figure when it is there."""
    if (folder / SUGGESTED_UPLOAD).is_file():
        return folder / SUGGESTED_UPLOAD
    images = sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    return images[0] if images else None


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it is below it (shorter to read)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def demo_instructions(settings: Settings, samples: Path) -> str:
    """What `demo` prints before serving: the address and two things to try."""
    base = _base_url(settings)
    upload = _upload_suggestion(samples)
    first = f"  1. Open {base}/ in a browser and "
    first += (
        f"upload {_shown(upload)} as the pose (or drag the default figure's joints)"
        if upload is not None
        else "drag the default figure's joints into a pose"
    )
    pose = json.dumps(
        {"keypoints": [[x, y, 1] for x, y in ARMS_OUT], "k": 5}, separators=(",", ":")
    )
    second = (
        "  2. Search by pose from a terminal (arms stretched out; text search needs CLIP "
        "weights):\n"
        f"     curl -s {base}/search -H 'content-type: application/json' -d '{pose}'"
    )
    return "\n".join(
        (
            f"PoseFramer demo: {_shown(samples)} is indexed in {settings.storage.home}",
            f"Serving on {base}/ (Ctrl-C stops it). Things to try:",
            first,
            second,
        )
    )


def _demo(args: argparse.Namespace) -> int:
    samples: Path = args.samples
    if not samples.is_dir():
        where = (
            "the sample images that come with a clone of the project are missing"
            if samples.resolve() == DEFAULT_SAMPLES.resolve()
            else "not a folder"
        )
        print(
            f"poseframer demo: {where}: {samples}\nGive a folder of images: "
            "poseframer demo --samples DIR",
            file=sys.stderr,
        )
        return 2
    # Settings first: a bad port or home stops the demo before a long indexing run.
    settings = _settings(args)
    if settings is None:
        return 2
    code = _run_indexer(settings, samples)
    if code != 0:
        print(f"poseframer demo: indexing {samples} failed (exit {code})", file=sys.stderr)
        return code
    print(demo_instructions(settings, samples), flush=True)
    return _run_server(settings)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "demo":
        return _demo(args)
    return _index(args)


if __name__ == "__main__":
    sys.exit(main())
