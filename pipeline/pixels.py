"""A decoded PIL page as the uint8 BGR array the pipeline works on, reduced band by band when it is too fine.

A page scanned above the working resolution is area-averaged (PIL's box filter) into one preallocated BGR array,
a band of output rows at a time: neither the reduced page as a second PIL image (4 bytes a pixel) nor PIL's
full-height intermediate pass ever exists, so reducing a 600-dpi A3 scan needs its decode plus about one working
page, not twice that (issue 21, part 3). Each band is reduced from a crop of the source rows under it, its box
given relative to the crop: the same box average as one ``Image.resize`` of the whole page (identical on the 600-dpi
A3 test page), except that float rounding of a band's box can move which edge row an output row averages.
"""

from __future__ import annotations

from math import ceil

import cv2
import numpy as np
from PIL import Image

BAND_PIXELS = 1 << 20  # output pixels per band (~1 MP: a few MB of band buffers)


def reduced_bgr(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """An ``L`` or ``RGB`` image area-averaged to ``size`` (PIL's ``BOX`` filter) as uint8 BGR, band by band: each
    band of output rows is reduced from a crop of the source rows under it (its box relative to the crop)."""
    width, height = img.size
    out = np.empty((size[1], size[0], 3), np.uint8)
    code = cv2.COLOR_GRAY2BGR if img.mode == "L" else cv2.COLOR_RGB2BGR
    step = max(1, BAND_PIXELS // size[0])
    scale = height / size[1]
    for top in range(0, size[1], step):
        bottom = min(size[1], top + step)
        y0, y1 = top * scale, bottom * scale
        first, last = int(y0), min(height, ceil(y1))
        band = img.crop((0, first, width, last)).resize(
            (size[0], bottom - top), Image.Resampling.BOX, box=(0, y0 - first, width, y1 - first))
        cv2.cvtColor(np.asarray(band), code, dst=out[top:bottom])
    return out


def pil_to_bgr(img: Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
    """Any PIL mode (1, L, P, RGB, RGBA, CMYK, LAB, I;16, I, F, ...) as uint8 BGR; ``size``: area-averaged to it
    (a PIL box filter, on the 8-bit grey or RGB image, ``reduced_bgr``), else converted in place of one copy."""
    if img.mode == "1":  # bilevel: its grey twin, so a reduction averages strokes instead of dropping them
        img = img.convert("L")
    elif img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        img = img.point(lambda v: v / 256).convert("L")
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.asarray(img), 0, 255).astype(np.uint8))
    elif img.mode == "LAB":
        img = img.getchannel("L")
    elif img.mode not in ("L", "RGB"):
        try:
            img = img.convert("RGB")
        except ValueError:
            img = img.convert("L")
    if size is not None and size != img.size:
        return reduced_bgr(img, size)
    if img.mode == "L":
        return cv2.cvtColor(np.asarray(img), cv2.COLOR_GRAY2BGR)
    rgb = np.array(img)  # writable: RGB becomes BGR in place, no second page-sized buffer
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR, dst=rgb)
