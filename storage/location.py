"""Where the LanceDB tables live: a local directory, or object storage such as `s3://bucket/prefix`.

LanceDB takes an object-store URI plus *storage options* (its object_store keys: `endpoint`,
`region`, `allow_http`, `aws_access_key_id`, ...). Files PoseFramer keeps beside the tables
(ANN index sidecars) go through a `pyarrow.fs` filesystem built from the same options, so
the tables and those files always reach the same bucket with the same endpoint and
credentials. Keys left out of the options come from the standard AWS chain
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `~/.aws`, an instance
role), which LanceDB and pyarrow both read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import pyarrow.fs as pafs

# Object stores LanceDB opens; `s3+ddb` is S3 with a DynamoDB commit lock.
OBJECT_STORE_SCHEMES = frozenset({"s3", "s3+ddb", "gs", "az"})
_S3_SCHEMES = frozenset({"s3", "s3+ddb"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$")

# object_store's names (and aliases) for the settings pyarrow's S3FileSystem takes.
_S3_ALIASES: dict[str, tuple[str, ...]] = {
    "access_key": ("aws_access_key_id", "access_key_id"),
    "secret_key": ("aws_secret_access_key", "secret_access_key"),
    "session_token": ("aws_session_token", "session_token", "token"),
    "region": ("aws_region", "region"),
    "endpoint": ("aws_endpoint", "aws_endpoint_url", "endpoint", "endpoint_url"),
    "allow_http": ("aws_allow_http", "allow_http"),
    "virtual_hosted": ("aws_virtual_hosted_style_request", "virtual_hosted_style_request"),
}


def scheme_of(uri: str) -> str | None:
    """The URI's scheme in lower case, or None for a local path."""
    match = _SCHEME.match(uri)
    return match.group(1).lower() if match else None


def parse_db_uri(text: str, variable: str = "db uri") -> str:
    """A LanceDB location: `scheme://bucket/prefix` for object storage, or an absolute path.

    Raises ValueError naming `variable` for an unsupported scheme or a URI without a bucket.
    """
    text = text.strip()
    match = _SCHEME.match(text)
    if match is None:
        return str(Path(text).expanduser().resolve())
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "file":
        return str(Path(rest).expanduser().resolve())
    if scheme not in OBJECT_STORE_SCHEMES:
        known = ", ".join(f"{s}://" for s in sorted(OBJECT_STORE_SCHEMES))
        raise ValueError(
            f"{variable}: unsupported scheme {scheme}:// in {text!r}; use a local path or {known}"
        )
    bucket = rest.split("/", 1)[0]
    if not bucket:
        raise ValueError(f"{variable}: {text!r} names no bucket (use {scheme}://bucket/prefix)")
    return f"{scheme}://{rest.rstrip('/')}"


def parse_storage_options(text: str | Mapping[str, object], variable: str) -> dict[str, str]:
    """Storage options from a JSON object (or a mapping): every value becomes a string, as
    LanceDB wants them (`true`/`false` for booleans). Raises ValueError naming `variable`."""
    if isinstance(text, str):
        if not text.strip():
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{variable} must be a JSON object: {exc}") from None
    else:
        value = dict(text)
    if not isinstance(value, dict):
        raise ValueError(f"{variable} must be a JSON object, not {type(value).__name__}")
    options: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            options[str(key)] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            options[str(key)] = str(item)
        else:
            raise ValueError(f"{variable}: the value of {key!r} must be a string, number or bool")
    return options


def _option(options: Mapping[str, str], name: str) -> str | None:
    lowered = {k.lower(): v for k, v in options.items()}
    for alias in _S3_ALIASES[name]:
        if alias in lowered:
            return lowered[alias]
    return None


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


def s3_filesystem(options: Mapping[str, str]) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem with the endpoint, region and keys of LanceDB storage options."""
    kwargs: dict[str, object] = {}
    endpoint = _option(options, "endpoint")
    if endpoint:
        scheme = scheme_of(endpoint)
        if scheme is None:
            scheme = "http" if _truthy(_option(options, "allow_http")) else "https"
        kwargs["endpoint_override"] = endpoint
        kwargs["scheme"] = scheme
    for name in ("access_key", "secret_key", "session_token", "region"):
        value = _option(options, name)
        if value:
            kwargs[name] = value
    if _truthy(_option(options, "virtual_hosted")):
        kwargs["force_virtual_addressing"] = True
    return pafs.S3FileSystem(**kwargs)


def filesystem_for(
    db_uri: str, options: Mapping[str, str] | None = None
) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding `db_uri` and the database's root path in it.

    Local paths and S3 (`s3://`, `s3+ddb://`) are supported; other object stores raise
    ValueError (LanceDB itself opens them, only files beside the tables are not supported).
    """
    scheme = scheme_of(db_uri)
    if scheme is None or scheme == "file":
        path = db_uri.split("://", 1)[1] if scheme == "file" else db_uri
        return pafs.LocalFileSystem(), str(Path(path).expanduser().resolve())
    if scheme in _S3_SCHEMES:
        root = db_uri.split("://", 1)[1].rstrip("/")
        return s3_filesystem(options or {}), root
    raise ValueError(
        f"files beside the tables are supported on local paths and s3:// only, not {scheme}://"
    )
