# sohoa worker/CLI image: tesseract with the Vietnamese model, poppler, ghostscript, qpdf, and the project.
FROM python:3.11.11-slim-bookworm

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    OMP_THREAD_LIMIT=1 \
    DO_NOT_TRACK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    SOHOA_ARCHIVE=/archive

RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends tesseract-ocr tesseract-ocr-vie poppler-utils ghostscript \
      qpdf unpaper pngquant fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline pipeline
COPY flows flows
COPY ocr_models ocr_models
COPY schemas schemas
COPY storage storage
RUN pip install --no-cache-dir .

VOLUME ["/archive", "/batches"]
ENTRYPOINT []
CMD ["sohoa", "--help"]
