"""Small renditions for previews in the Dagster UI (markdown with data: URIs)."""

from __future__ import annotations

import base64
import io

from PIL import Image

PREVIEW_SIDE = 96


def thumbnail_data_uri(thumbnail: bytes, max_side: int = PREVIEW_SIDE) -> str:
    """A `data:image/jpeg;base64,…` URI of a stored thumbnail, shrunk to `max_side` pixels
    so a handful fit in a materialization's metadata."""
    image = Image.open(io.BytesIO(thumbnail)).convert("RGB")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=75)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")
