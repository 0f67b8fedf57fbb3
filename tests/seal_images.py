"""Synthetic crops of a Vietnamese signature block with a round black seal stamped over the signer's name.

Test helper for seal detection and name reading: the title line, a hand signature, the signer's name and a Party
seal whose bottom lettering (upside down, as on real seals) and rings cross the first word of the name, optionally
degraded like a black-and-white photocopy. Deterministic for a given seed. Needs fonts-liberation2.
"""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

_FONT_DIR = Path("/usr/share/fonts/truetype/liberation2")  # Liberation 1.x lacks Vietnamese glyphs
NAME_FONT: Path = _FONT_DIR / "LiberationSerif-Bold.ttf"
SEAL_FONT: Path = _FONT_DIR / "LiberationSans-Bold.ttf"


def _font(path: Path, px: float) -> ImageFont.FreeTypeFont:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: install fonts-liberation2 (Liberation 2.x, with Vietnamese glyphs)")
    return ImageFont.truetype(str(path), max(1, round(px)), layout_engine=ImageFont.Layout.BASIC)


def _star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Vertices of a five-pointed star pointing up (inner radius = r * 0.382)."""
    pts = []
    for k in range(10):
        rad, a = (r if k % 2 == 0 else r * 0.382), math.radians(-90 + 36 * k)
        pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    return pts


def _signature(draw: ImageDraw.ImageDraw, rng: np.random.RandomState, cx: float, cy: float, mm: float) -> None:
    """A few thick cubic-Bezier scribbles around (cx, cy), about 35 x 12 mm."""
    t = np.linspace(0.0, 1.0, 60)[:, None]
    x = cx - 17 * mm
    for _ in range(3):
        p = np.array([[x, cy], [x + 8 * mm, cy - 9 * mm], [x + 6 * mm, cy + 8 * mm], [x + 14 * mm, cy]])
        p += rng.uniform(-2.5 * mm, 2.5 * mm, size=p.shape)
        curve = (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]
        draw.line([(float(a), float(b)) for a, b in curve], fill=255, width=max(2, round(0.55 * mm)), joint="curve")
        x += 10 * mm
    tail = [(cx - 18 * mm, cy + 5 * mm), (cx + 18 * mm, cy + 3 * mm + float(rng.uniform(-1, 1)) * mm)]
    draw.line(tail, fill=255, width=max(2, round(0.45 * mm)))


def _seal(ink: Image.Image, cx: float, cy: float, r: float, text: str, mm: float, dpi: int) -> None:
    """Outer thick ring, thin inner ring, lettering all round (tops outward), inner circle and a centre star."""
    draw = ImageDraw.Draw(ink)

    def ring(radius: float, width: float) -> None:  # stroke centred on `radius`
        w = max(1, round(width))
        o = radius + w / 2
        draw.ellipse((cx - o, cy - o, cx + o, cy + o), outline=255, width=w)

    ring(r - 0.55 * mm, 1.1 * mm)
    r_ring2 = r - 1.1 * mm - 1.0 * mm - 0.175 * mm
    ring(r_ring2, 0.35 * mm)
    r_inner = 0.6 * r
    ring(r_inner, 0.3 * mm)
    draw.polygon(_star(cx, cy, 0.3 * r), fill=255)
    # Lettering between the thin ring and the inner circle, starting at 9 o'clock, clockwise over the top.
    r_text = (r_ring2 + r_inner) / 2
    size = 9 * dpi / 72
    font = _font(SEAL_FONT, size)
    total = sum(font.getlength(ch) for ch in text)
    if total > 0.97 * 2 * math.pi * r_text:  # shrink the lettering a little if it would not fit round the circle
        font = _font(SEAL_FONT, size * 0.97 * 2 * math.pi * r_text / total)
        total = sum(font.getlength(ch) for ch in text)
    step = 2 * math.pi * r_text / total  # spread the glyphs evenly over the whole circle
    box = round(font.size * 2)
    pos = 0.0
    for ch in text:
        adv = font.getlength(ch)
        theta = math.pi + (pos + adv / 2) * step / r_text  # image angle (y down): increasing = clockwise
        pos += adv
        if ch.isspace():
            continue
        glyph = Image.new("L", (box, box), 0)
        ImageDraw.Draw(glyph).text((box / 2, box / 2), ch, font=font, fill=255, anchor="mm")
        glyph = glyph.rotate(270 - math.degrees(theta), resample=Image.Resampling.BICUBIC)  # top points outward
        gx, gy = cx + r_text * math.cos(theta), cy + r_text * math.sin(theta)
        ink.paste(255, (round(gx - box / 2), round(gy - box / 2)), glyph)


def signature_with_seal_and_box(
    name: str, *, title: str = "PHÓ BÍ THƯ", seal_text: str = "ĐẢNG CỘNG SẢN VIỆT NAM * THÀNH ỦY ĐÀ NẴNG *",
    dpi: int = 300, seed: int = 0, seal_dx_mm: float = -10.0, photocopy: bool = True, with_seal: bool = True,
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Render the block; return (uint8 grayscale image, white 255 / ink 0) and the name's ink box (x0, y0, x1, y1)."""
    name, title, seal_text = (unicodedata.normalize("NFC", s) for s in (name, title, seal_text))
    mm = dpi / 25.4
    w, h = round(90 * mm), round(70 * mm)
    rng = np.random.RandomState(seed)
    font = _font(NAME_FONT, 14 * dpi / 72)
    xc = 0.6 * w
    title_base, name_base = 12 * mm, 52 * mm  # baselines, 40 mm apart

    ink = Image.new("L", (w, h), 0)  # ink coverage: 255 = black
    draw = ImageDraw.Draw(ink)
    draw.text((xc, title_base), title, font=font, fill=255, anchor="ms")
    _signature(draw, rng, xc, (title_base + name_base) / 2, mm)
    name_layer = Image.new("L", (w, h), 0)
    ImageDraw.Draw(name_layer).text((xc, name_base), name, font=font, fill=255, anchor="ms")
    ys, xs = np.nonzero(np.asarray(name_layer) > 127)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    ink = Image.fromarray(np.maximum(np.asarray(ink), np.asarray(name_layer)))

    if with_seal:
        r = 19 * mm
        first = name.split()[0] if name.split() else name
        name_left = xc - font.getlength(name) / 2
        cx = name_left + font.getlength(first) / 2 + seal_dx_mm * mm
        x_height = -font.getbbox("x", anchor="ls")[1]
        r_text = (r - 2.275 * mm + 0.6 * r) / 2
        cy = name_base - 0.6 * x_height - r_text  # bottom lettering over the upper x-height; outer ring near baseline
        _seal(ink, cx, cy, r, seal_text, mm, dpi)

    img: np.ndarray = 255.0 - np.asarray(ink, dtype=np.float32)
    if photocopy:
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=0.5 * dpi / 300)
        img = img + rng.normal(0.0, 30.0, img.shape)
        img = np.where(img > 128, 255, 0).astype(np.float32)
        for _ in range(int(rng.randint(8, 20))):  # toner speckles
            sx, sy, sr = rng.randint(0, w), rng.randint(0, h), rng.uniform(0.5, 2.0) * dpi / 300
            cv2.circle(img, (int(sx), int(sy)), max(1, round(sr)), 0.0, -1)
    return np.clip(img, 0, 255).astype(np.uint8), box


def signature_with_seal(
    name: str, *, title: str = "PHÓ BÍ THƯ", seal_text: str = "ĐẢNG CỘNG SẢN VIỆT NAM * THÀNH ỦY ĐÀ NẴNG *",
    dpi: int = 300, seed: int = 0, seal_dx_mm: float = -10.0, photocopy: bool = True, with_seal: bool = True,
) -> np.ndarray:
    """The image of `signature_with_seal_and_box` alone."""
    return signature_with_seal_and_box(
        name, title=title, seal_text=seal_text, dpi=dpi, seed=seed, seal_dx_mm=seal_dx_mm, photocopy=photocopy,
        with_seal=with_seal,
    )[0]
