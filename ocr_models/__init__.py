"""OCR engine adapters (tesseract), the tool probe and hOCR parsing. Implements ``schemas.ocr.OcrEngine``."""
