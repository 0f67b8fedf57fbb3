"""OCR engines behind one port (``ocr_models.engine.OcrEngine``): the tesseract command (``tesseract``), tesseract
in-process (``tesserocr_engine``), the one subprocess helper and tesseract's warnings (``tools``), hOCR read and
written (``hocr``), and the vocabulary files (``vocabulary/``)."""
