"""Second readings of cut-out lines: each image read as one line (``--psm 7``), all in one engine run.

Used by the page pass's re-reads (doubtful lines, lines under seals) and by the secrecy-stamp reader. The scratch
images are written beside the page's work files and removed; an engine time-out loses only the second reading
(the page pass stands)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from flows.wiring import Services
from ocr_models.engine import OcrTimeout
from schemas.ocr import OcrWord

log = logging.getLogger("sohoa.document")


def read_cut_outs(images: list[np.ndarray], dpi: int, stem: Path, tag: str, services: Services
                  ) -> list[list[OcrWord]]:
    """The words of each image read as one line (an empty list per image when the engine timed out)."""
    paths: list[Path] = []
    try:
        for i, image in enumerate(images):
            path = stem.parent / f"{stem.name}-{tag}{i:02d}.pgm"
            cv2.imwrite(str(path), image)
            paths.append(path)
        return services.engine.read_lines(paths, dpi=dpi)
    except OcrTimeout as exc:
        log.warning("%s: %s", stem.name, exc)
        return [[] for _ in images]
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
