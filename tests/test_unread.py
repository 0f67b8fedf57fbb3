"""Text lines the page pass left unread (pipeline.unread): found in uncovered ink, read, kept when not junk."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.unread import add_lines, missed_lines
from schemas.ocr import OcrPage, OcrWord

HEIGHT = 40  # word height, pixels


def _page_image() -> tuple[np.ndarray, list[OcrWord]]:
    """A white page with two printed lines the engine read and one (lower right) it did not, plus a ring."""
    image = np.full((1200, 1600), 255, np.uint8)
    words = []
    for line, y in enumerate((200, 300)):
        for x in range(100, 900, 200):
            cv2.putText(image, "chu", (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.3, 0, 3)
            words.append(OcrWord(text="chữ", box=(x, y - HEIGHT, x + 90, y + 5), confidence=0.9, line=line,
                                 block=0))
    cv2.putText(image, "Le Trung Chinh", (900, 800), cv2.FONT_HERSHEY_SIMPLEX, 1.3, 0, 3)  # unread
    cv2.circle(image, (400, 700), 150, 0, 6)  # a seal's ring: no text line
    return image, words


def _page(words: list[OcrWord]) -> OcrPage:
    return OcrPage(number=1, text="", words=words, confidence=0.9, width=1600, height=1200, dpi=300)


def test_a_line_no_word_covers_is_found_and_a_ring_is_not() -> None:
    image, words = _page_image()
    boxes = missed_lines(_page(words), image)
    assert len(boxes) == 1
    x0, y0, x1, y1 = boxes[0]
    assert x0 <= 900 and x1 >= 1180 and y0 <= 770 and y1 >= 800  # the whole unread line, padded
    assert y1 - y0 < 3 * HEIGHT  # one line, not the ring


def test_a_page_whose_ink_is_all_read_has_no_missed_line() -> None:
    image, words = _page_image()
    image[600:900, :] = 255  # neither the ring nor the unread line
    assert missed_lines(_page(words), image) == []


def test_readings_are_added_as_lines_of_their_own_and_junk_is_not() -> None:
    _, words = _page_image()
    boxes = [(880, 740, 1250, 820), (200, 900, 500, 960)]
    name = [OcrWord(text=t, box=(20 + 120 * i, 15, 110 + 120 * i, 55), confidence=0.93)
            for i, t in enumerate(("Lê", "Trung", "Chinh"))]
    junk = [OcrWord(text="~/.", box=(10, 10, 60, 50), confidence=0.2)]
    page, added = add_lines(_page(words), boxes, [name, junk])
    assert added == 1
    new = [w for w in page.words if w.text in ("Lê", "Trung", "Chinh")]
    assert [w.box[:2] for w in new] == [(900, 755), (1020, 755), (1140, 755)]  # page pixels
    assert len({(w.block, w.line) for w in new}) == 1
    assert (new[0].block, new[0].line) not in {(w.block, w.line) for w in words}
    assert "~/." not in [w.text for w in page.words]


def test_odd_pages_find_nothing_and_do_not_fail() -> None:
    big = OcrWord(text="chữ", box=(0, 0, 4000, 900), confidence=0.9)  # a word larger than the image
    outside = OcrWord(text="chữ", box=(-500, -400, -100, -360), confidence=0.9)
    assert missed_lines(_page([big]), np.full((20, 30), 0, np.uint8)) == []
    assert missed_lines(_page([outside]), np.full((200, 300), 255, np.uint8)) == []
    assert missed_lines(_page([]), np.full((200, 300), 0, np.uint8)) == []
