"""An image's medium, photo or drawing: one decision for the stored medium, the keypoint
reader's routing and a query's mirror.

Flat images, and pages of one grey whose grain a median smooths away, are drawings by their
statistics (`pipelines.pose.human_evidence.looks_drawn`). A page of one grey that stays
grainy (pencil on textured paper, a phone's photo of a sketch, its light evened out first:
the light falls off across a photographed page, `pipelines.pose.drawn.ink.evenly_lit`) is a
drawing when the drawn-figure model sees a human figure on it: the statistics alone would
take it for a photo, and a looser statistic would take photos on plain backgrounds for
drawings. Anything else is a photo, and so is a dark grainy page (the model learnt ink on
paper, so it is not asked). A dark image flat enough to be a drawing by its statistics is
one here only if its brightened copy (`pipelines.pose.low_light.brightened`, what the
keypoint reader reads it from a second time) still looks drawn or is a page of one grey (chalk
on a board lifted is a grey board): a dark photo is flat because its pixels crowd into a few
grey levels, and lifted it is a photo again (`benchmarks.dim_eval`'s
`photos_taken_for_drawings`). A dark drawing's people that BlazePose finds are held to the
photo test of a person.
"""

from __future__ import annotations

from PIL import Image

from pipelines.pose.drawn.reader import (
    DrawnFigureReader,
    DrawnReading,
    committed_reader,
    sheet_box,
)
from pipelines.pose.human_evidence import looks_drawn, looks_like_a_page
from pipelines.pose.low_light import brightened, is_dark


def read_medium(
    image: Image.Image, reader: DrawnFigureReader | None, lifted: Image.Image | None = None
) -> tuple[bool, DrawnReading | None]:
    """Whether `image` is a drawing, and the model's reading where it was asked (None: not
    asked; without a `reader`, the statistics alone decide). `lifted`: its brightened copy
    where the caller has made one (the keypoint reader reads a dim image twice), else it is
    made here when needed."""
    if looks_drawn(image):
        # A dark photo is flat too: a drawing only if it still looks drawn brightened.
        return not (is_dark(image) and looks_photographed_brightened(image, lifted)), None
    if reader is None or is_dark(image):
        return False, None
    if not looks_like_a_page(image):
        sheet = sheet_box(image)  # a drawing photographed lying on a desk
        if sheet is None or not looks_like_a_page(image.crop(sheet)):
            return False, None
    reading = reader.read(image)
    return reading.shows_figure, reading


def looks_photographed_brightened(image: Image.Image, lifted: Image.Image | None = None) -> bool:
    """Whether a copy of `image` brightened for a second reading (`brightened`, or the given
    `lifted` copy) is no longer flat enough to be a drawing: a dim photo, not a dark
    drawing."""
    lifted = lifted if lifted is not None else brightened(image)
    return lifted is not None and not looks_drawn(lifted) and not looks_like_a_page(lifted)


def is_drawing(image: Image.Image) -> bool:
    """Whether `image` is a drawing, as the default keypoint reader decides it."""
    return read_medium(image, committed_reader())[0]


def medium_of(image: Image.Image) -> str:
    """`drawing` or `photo`: what the image is (see the module's text)."""
    return "drawing" if is_drawing(image) else "photo"
