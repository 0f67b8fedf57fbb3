"""Pure processing stages: load pages, preprocess, recognise (through an engine port), extract metadata,
judge quality, assemble the PDF/A. No orchestration, no storage SDKs, no environment reads."""
