"""Second reading of doubtful lines: which lines are picked, how readings merge, and real tesseract reading them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ocr_models.tesseract import USER_PATTERNS, USER_WORDS, TesseractEngine
from pipeline.reread import MAX_LINES, DoubtfulLine, doubtful_lines, merge_rereads
from schemas.ocr import OcrPage, OcrWord
from tests.fixtures.generate_sample import font

WIDTH, HEIGHT = 2480, 3508


def _word(text: str, x: int, y: int, conf: float, line: int = 0, block: int = 0) -> OcrWord:
    return OcrWord(text=text, box=(x, y, x + 30 * len(text), y + 45), confidence=conf, line=line, block=block)


def _page(words: list[OcrWord]) -> OcrPage:
    return OcrPage(number=1, text=" ".join(w.text for w in words), words=words, confidence=0.8,
                   width=WIDTH, height=HEIGHT, dpi=300)


def test_only_doubtful_text_lines_are_picked_least_confident_first() -> None:
    words = [
        _word("THÀNH", 500, 240, 0.96), _word("ỦY", 700, 240, 0.96),  # sure: not re-read
        _word("50", 560, 456, 0.80, line=1), _word("I131B(,VPIL]", 640, 456, 0.04, line=1),  # doubtful text
        _word("ĐÁẢNG", 1330, 240, 0.45, line=2), _word("CỘNG", 1530, 240, 0.93, line=2),  # doubtful, less so
        _word("~⁄", 900, 1500, 0.0, line=3), _word("—", 960, 1500, 0.1, line=3),  # seal rim/rule: not text
    ]
    lines = doubtful_lines(_page(words))
    assert [[w.text for w in line.words] for line in lines] == [["50", "I131B(,VPIL]"], ["ĐÁẢNG", "CỘNG"]]
    x0, y0, x1, y1 = lines[0].box
    assert x0 < 560 and y0 < 456 and x1 > 640 + 30 * 12 and y1 > 456 + 45  # padded around the words


def test_at_most_max_lines_per_page() -> None:
    words = [_word("ĐÁẢNG", 100, 100 + 80 * i, 0.3 + i / 1000, line=i) for i in range(MAX_LINES + 5)]
    lines = doubtful_lines(_page(words))
    assert len(lines) == MAX_LINES
    assert lines[0].words[0].confidence == min(w.confidence for w in words)


def test_merge_keeps_the_more_confident_reading_word_by_word() -> None:
    number = [_word("50", 560, 456, 0.80, line=1, block=1), _word("I131B(,VPIL]", 640, 456, 0.04, line=1, block=1)]
    other = _word("Đà", 1316, 457, 0.94, line=1, block=1)
    page = _page([*number, other])
    line = DoubtfulLine(tuple(number), (550, 440, 1030, 515))
    reread = [OcrWord(text="Số", box=(10, 16, 66, 59), confidence=0.75),
              OcrWord(text="1134-BC/VPTU", box=(88, 19, 460, 59), confidence=0.90)]
    merged, changed = merge_rereads(page, [line], [reread])
    assert changed == 1
    assert [w.text for w in merged.words] == ["50", "1134-BC/VPTU", "Đà"]  # "50" (0.80) beat "Số" (0.75)
    placed = merged.words[1]
    assert placed.box == (638, 459, 1010, 499)  # crop pixels moved back to page pixels
    assert (placed.line, placed.block) == (1, 1)


def test_merge_replaces_a_differently_split_line_only_when_clearly_better() -> None:
    old = (_word("ĐÁẢNGCỘNG", 1330, 240, 0.45),)
    page = _page(list(old))
    line = DoubtfulLine(old, (1310, 220, 1700, 310))
    better = [OcrWord(text="ĐẢNG", box=(20, 20, 200, 70), confidence=0.9),
              OcrWord(text="CỘNG", box=(220, 20, 360, 70), confidence=0.9)]
    slightly = [OcrWord(text="ĐẢNG", box=(20, 20, 200, 70), confidence=0.5),
                OcrWord(text="CỘNG", box=(220, 20, 360, 70), confidence=0.5)]
    assert [w.text for w in merge_rereads(page, [line], [better])[0].words] == ["ĐẢNG", "CỘNG"]
    assert merge_rereads(page, [line], [slightly]) == (page, 0)
    assert merge_rereads(page, [line], [[]]) == (page, 0)


def _line_image(path: Path, text: str) -> Path:
    face = font("b", 44)
    image = Image.new("L", (60 + round(face.getlength(text)), 90), 255)
    ImageDraw.Draw(image).text((30, 18), text, font=face, fill=0)
    image.save(path)
    return path


@pytest.mark.slow
def test_tesseract_reads_cut_out_lines_in_one_run(tmp_path: Path) -> None:
    engine = TesseractEngine(user_words=USER_WORDS, user_patterns=USER_PATTERNS)
    lines = ["Số 1134-BC/VPTU", "ĐẢNG CỘNG SẢN VIỆT NAM"]
    images = [_line_image(tmp_path / f"l{i}.png", text) for i, text in enumerate(lines)]
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((90, 400), 255, np.uint8)).save(blank)
    read = engine.read_lines([*images, blank], dpi=300)
    assert [" ".join(w.text for w in words) for words in read[:2]] == lines
    assert all(w.confidence > 0.5 for words in read[:2] for w in words)
    assert len(read) == 3 and all(w.confidence < 0.5 for w in read[2])  # nothing to read: nothing trusted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blank.png", "l0.png", "l1.png"]  # no scratch left
    params = engine.provenance()["parameters"]
    assert isinstance(params, dict) and params["user_words"]["file"] == "vie.user-words"
