# sohoa — one-command set-up on a fresh Debian/Ubuntu machine.
#   make demo    install everything, digitise the bundled sample batch into ./archive, search it
#   make test    install everything, run the test suite (what CI runs)
#   make check   ruff + mypy + import boundaries + module/function sizes
#   make bench   end-to-end pages/min vs raw tesseract on the same pages, peak memory per worker process,
#                start-up to the first page in OCR and an 8-page batch vs its pages' OCR alone

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLE := tests/fixtures/sample_batch
ARCHIVE ?= archive
BENCH_BATCH ?= $(firstword $(wildcard ../shared/corpus/dev/batch) $(SAMPLE))
APT_PACKAGES := tesseract-ocr tesseract-ocr-vie tesseract-ocr-osd poppler-utils ghostscript qpdf unpaper pngquant \
	fonts-liberation2 fonts-dejavu-core chromium postgresql
export OMP_THREAD_LIMIT := 1

.PHONY: demo test check bench sample deps venv clean fuzz

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Cài đặt gói hệ thống:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi
	@# docker-compose (v1, Python) validates docker-compose.yml in the tests; no Docker engine (its recommendation)
	@dpkg -s docker-compose >/dev/null 2>&1 || { SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	  $$SUDO apt-get install -y -q --no-install-recommends docker-compose; }

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo: deps venv
	$(BIN)/sohoa digitise $(SAMPLE) --archive $(ARCHIVE) --report $(ARCHIVE)/sample-report.json
	$(BIN)/sohoa search "ke hoach chuyen doi so" --archive $(ARCHIVE)

test: deps venv
	$(BIN)/python -m pytest -q

check: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python tests/tools/check_imports.py
	$(BIN)/python tests/tools/check_sizes.py

bench: deps venv
	$(BIN)/python tests/bench/bench_digitise.py $(BENCH_BATCH) --repeat 3 --s3
	$(BIN)/python tests/bench/bench_digitise.py $(BENCH_BATCH) --copies 5
	$(BIN)/python tests/bench/bench_memory.py $(BENCH_BATCH) --a3 --workers 1,2
	$(BIN)/python tests/bench/bench_startup.py --repeat 5
	$(BIN)/python tests/bench/bench_dask.py --copies 2

# fuzzed intake (issue 18): 320 hostile entries in batches of 40 through sohoa digitise, then sohoa verify
FUZZ_ARGS ?= --cases 320 --batch-size 40 --memory-probe
fuzz: deps venv
	$(BIN)/python tests/fuzz/run_fuzz.py $(FUZZ_ARGS)

sample: venv
	$(BIN)/python tests/fixtures/generate_sample.py $(SAMPLE)

clean:
	rm -rf $(ARCHIVE) .pytest_cache .mypy_cache .ruff_cache

.PHONY: eval-metadata
# metadata accuracy on ../shared/corpus/dev (EVAL_ARGS="--archive A --report R" reuses an archive: no OCR)
eval-metadata: deps venv
	$(BIN)/python tests/eval/eval_metadata.py $(EVAL_ARGS)

.PHONY: eval-secrecy
# secrecy marks on the generated hard-stamp set (in a temp dir): missed / under-classified / exact / decoys held
eval-secrecy: deps venv
	$(BIN)/python tests/eval/eval_secrecy.py $(EVAL_SECRECY_ARGS)

.PHONY: eval-ocr
# OCR per configuration (shipped, no re-read, no vocabulary, raw tesseract): page/body CER, diacritics share, s/page per class, review flag
eval-ocr: deps venv
	$(BIN)/python tests/eval/eval_ocr.py --configs all $(EVAL_OCR_ARGS)

.PHONY: eval-search bench-search
SEARCH_ARCHIVE ?= /tmp/sohoa-dev-search
# search relevance on ../shared/corpus/dev: recall@5 and MRR per query kind, accent twins (digitises the dev batch once)
eval-search: deps venv
	@[ -f $(SEARCH_ARCHIVE).json ] || $(BIN)/sohoa digitise ../shared/corpus/dev/batch --archive $(SEARCH_ARCHIVE) --report $(SEARCH_ARCHIVE).json || [ $$? -eq 3 ]
	$(BIN)/python tests/eval/eval_search.py $(SEARCH_ARCHIVE) $(SEARCH_ARCHIVE).json

# search load: index 100,000 synthetic pages, p50/p95/p99 per query kind with 4 concurrent clients, indexing pages/s
bench-search: venv
	$(BIN)/python tests/bench/bench_search.py --pages 100000 --clients 4 $(BENCH_SEARCH_ARGS)

.PHONY: bench-search-1m
# search at archive scale: 1,000,000 pages indexed in bulk (several GB in /tmp, removed after), every query kind
# with and without facets on 1 and 4 clients (wall and CPU ms), the web search page's server time; ~1 h on 2 cores
bench-search-1m: venv
	$(BIN)/python tests/bench/bench_search_scale.py --pages 1000000 --clients 4 $(BENCH_SEARCH_1M_ARGS)

.PHONY: bench-web
# web latency on the dev corpus: search page p50/p95/p99 per query kind and document page, server time (3 rounds);
# reuses $(SEARCH_ARCHIVE) (a copy of it) once eval-search has digitised it, else digitises the dev batch (~2 min)
bench-web: deps venv
	$(BIN)/python tests/bench/bench_web.py $(if $(wildcard $(SEARCH_ARCHIVE)/catalog.sqlite),--archive $(SEARCH_ARCHIVE)) $(BENCH_WEB_ARGS)
