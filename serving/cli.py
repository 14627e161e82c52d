"""`poseframer`: serve the search API, or index a folder of images.

Indexing runs `python -m assets.indexing` as a child process: the service layer must not
import Dagster, and a child process keeps the indexing run's memory (models, Dagster) out of
this one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from serving.settings import ENV_PREFIX, ServingSettings, describe_settings_error


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
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from serving.app import create_app

    overrides = {
        name: value
        for name, value in (("home", args.home), ("host", args.host), ("port", args.port))
        if value is not None
    }
    try:
        settings = ServingSettings(**overrides)
    except ValidationError as exc:
        print(describe_settings_error(exc), file=sys.stderr)
        return 2
    app = create_app(settings)
    print(
        f"PoseFramer: serving {settings.home.resolve()} at http://{settings.host}:{settings.port}/"
    )
    uvicorn.run(app, host=settings.host, port=settings.port)
    return 0


def _index(args: argparse.Namespace) -> int:
    folder: Path = args.folder
    if not folder.is_dir():
        print(f"poseframer index: not a folder: {folder}", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "assets.indexing", str(folder)]
    if args.batch_id:
        command += ["--batch-id", args.batch_id]
    if args.new_batch:
        command.append("--new-batch")
    env = None
    if args.home is not None:
        env = {**os.environ, f"{ENV_PREFIX}HOME": str(args.home)}
    try:
        # Inherited stdio: the indexer's progress and report go straight to the terminal.
        return subprocess.run(command, env=env, check=False).returncode
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _index(args)


if __name__ == "__main__":
    sys.exit(main())
