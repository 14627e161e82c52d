"""Dark and low-contrast photos, brightened for a second reading.

BlazePose's detector rarely fires on an underexposed photo, though the people are there to
be seen once the image is brightened. A dim photo (dark on average, or with little spread
of brightness) is therefore also read from a brightened copy. A dark one is lifted as an
exposure correction lifts it: one gamma curve on the red, green and blue channels, taking
the median luminance to a mid-grey; colours keep their hue and the sensor's noise is not
sharpened. (The first version lifted the lightness of CIELAB, which greys the colours out,
then equalised it locally with CLAHE, which makes the noise of a dark frame into texture;
on the darkened evalset it found hardly more people than the dark frame itself:
`benchmarks.dim_eval`.) A flat one that is light already (a pale pencil page, a hazy
photo) keeps the local equalisation (CLAHE on the lightness), which brings out its
strokes and edges. The copy has the original's geometry, so its poses are already in the
original's pixels.

A dark frame holds few grey levels and, where the light itself was short, the sensor's shot
noise; a steep gamma curve stretches both into grain and banding. The reader therefore lifts
a lightly smoothed copy (`LIFT_SMOOTHING`: a Gaussian of that many pixels on the colour
channels, in floating point, before the curve), as a camera's noise reduction works before
its tone curve. Its width was chosen leave-one-source-out on the evalset darkened three
ways (`python -m benchmarks.loso --grid lift --darken gamma --darken exposure:0.02
--darken exposure:0.005`). The medium decision looks at the copy lifted without it: a
smoothed copy is flatter, and flat is what a drawing is.
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
LIFT_SMOOTHING = 0.6  # pixels: the Gaussian the reader's dark copy is smoothed by before lifting


def is_dark(image: Image.Image) -> bool:
    """Dark on average (a page of ink on paper is not, however little ink it holds)."""
    return bool(luminance(image).mean() < DIM_LUMINANCE)


def is_dim(image: Image.Image) -> bool:
    """Dark on average, or flat: worth a second, brightened reading."""
    lum = luminance(image)
    return bool(lum.mean() < DIM_LUMINANCE or lum.std() < DIM_CONTRAST)


def brightened(image: Image.Image, smoothing: float = 0.0) -> Image.Image | None:
    """A dark copy lifted by one gamma curve on its colour channels that takes the median
    luminance to `TARGET_MEDIAN` (smoothed first by a Gaussian of `smoothing` pixels, if
    any); a flat but light one with its lightness equalised locally (CLAHE: a pale,
    low-contrast page or a hazy photo); None where neither applies."""
    import cv2

    if smoothing < 0:
        raise ValueError("smoothing must be zero or more pixels")

    lum = luminance(image)
    median = float(np.median(lum))
    if 0.0 < median < TARGET_MEDIAN:
        gamma = math.log(TARGET_MEDIAN) / math.log(median)
        rgb: np.ndarray = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
        if smoothing > 0:
            rgb = cv2.GaussianBlur(rgb, (0, 0), smoothing)
        lifted = np.clip(np.power(rgb, gamma) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(lifted)
    if lum.std() >= DIM_CONTRAST:
        return None
    lab = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=(CLAHE_TILES, CLAHE_TILES))
    lab[..., 0] = clahe.apply(lab[..., 0])
    return Image.fromarray(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))
