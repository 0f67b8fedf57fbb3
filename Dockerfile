# sohoa image (docker-compose services deploy, worker, web; and the CLI): tesseract with the Vietnamese model,
# poppler, ghostscript, qpdf, PostgreSQL's client tools (pg_dump for `sohoa backup`; bookworm's 15, the server's
# major), and the project with its runtime dependencies only (the web app's FastAPI/uvicorn/
# Jinja2 are among them; its templates and static files are package data). No browser: Chromium and Playwright are
# test tools (the `dev` extra) and are not installed here.
FROM python:3.11.11-slim-bookworm

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    OMP_THREAD_LIMIT=1 \
    DO_NOT_TRACK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    SOHOA_ARCHIVE=/archive

RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends tesseract-ocr tesseract-ocr-vie poppler-utils ghostscript \
      qpdf unpaper pngquant fonts-dejavu-core postgresql-client \
 && rm -rf /var/lib/apt/lists/*

# installed from a throw-away copy: at run time every import comes from site-packages, whatever the directory
COPY pyproject.toml README.md /src/
COPY pipeline /src/pipeline
COPY flows /src/flows
COPY ocr_models /src/ocr_models
COPY schemas /src/schemas
COPY storage /src/storage
WORKDIR /app
RUN pip install --no-cache-dir /src \
 && rm -rf /src \
 && sohoa --help >/dev/null \
 && python -c "import interfaces.web.app, flows.scheduled; from importlib.resources import files; \
assert files('interfaces.web').joinpath('templates/base.html').is_file(); \
assert files('interfaces.web').joinpath('static/style.css').is_file()" \
 && ! python -c "import playwright" 2>/dev/null

VOLUME ["/archive", "/batches"]
EXPOSE 8000
ENTRYPOINT []
CMD ["sohoa", "--help"]
