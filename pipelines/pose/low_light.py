"""Dark and low-contrast photos, brightened for a second reading.

BlazePose's detector rarely fires on an underexposed photo, though the people are there to
be seen once the image is brightened. A dim photo (dark on average, or with little spread
of brightness) is therefore also read from a copy whose luminance is lifted by a gamma curve
to a mid-grey median, then locally equalised (CLAHE); colours keep their hue. The copy has
the original's geometry, so its poses are already in the original's pixels.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from pipelines.images import luminance

# Dim: a mean luminance below this (0–1), or a standard deviation below DIM_CONTRAST.
DIM_LUMINANCE = 0.3
DIM_CONTRAST = 0.12
TARGET_MEDIAN = 0.45  # where the gamma curve puts the median luminance
CLAHE_CLIP = 2.0
CLAHE_TILES = 8


def is_dark(image: Image.Image) -> bool:
    """Dark on average (a page of ink on paper is not, however little ink it holds)."""
    return bool(luminance(image).mean() < DIM_LUMINANCE)


def is_dim(image: Image.Image) -> bool:
    """Dark on average, or flat: worth a second, brightened reading."""
    lum = luminance(image)
    return bool(lum.mean() < DIM_LUMINANCE or lum.std() < DIM_CONTRAST)


def brightened(image: Image.Image) -> Image.Image:
    """A copy with the luminance lifted (gamma to a mid-grey median, then CLAHE)."""
    import cv2

    rgb = np.asarray(image.convert("RGB"))
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    lightness = lab[..., 0].astype(np.float64) / 255.0
    median = float(np.median(lightness))
    if 0.0 < median < TARGET_MEDIAN:
        gamma = math.log(TARGET_MEDIAN) / math.log(median)
        lightness = np.power(lightness, gamma)
    lifted = np.clip(lightness * 255.0 + 0.5, 0, 255).astype(np.uint8)
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=(CLAHE_TILES, CLAHE_TILES))
    lab[..., 0] = clahe.apply(lifted)
    return Image.fromarray(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))
