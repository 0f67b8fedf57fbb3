"""Typed settings in one place. Environment variables use the prefix ``SOHOA_``.

The composition root (``flows.wiring``) builds everything from one ``Settings``; no other module reads sohoa's
configuration from the environment (the web app's settings are here too: ``SOHOA_ADMIN_*``, ``SOHOA_WEB_*``,
``SOHOA_TRUSTED_PROXIES``). Prefect's and Dask's own variables (``PREFECT_*``, ``DASK_*``, ``OMP_THREAD_LIMIT``) are
read and set in one module, ``flows.prefect_env`` (``tests/test_composition_root.py`` checks both).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tempfile
from datetime import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.errors import ConfigError


def _default_workers() -> int:
    return max(1, os.cpu_count() or 1)


_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class NightWindow(BaseModel):
    """The daily hours unattended digitisation may START documents in (``SOHOA_NIGHT_WINDOW="22:00-06:00"``).

    Local wall-clock times in ``Settings.timezone``. ``start > end`` crosses midnight; ``start == end`` means all day.
    The start is inside the window, the end is not.
    """

    model_config = ConfigDict(frozen=True)

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> NightWindow:
        match = _WINDOW.match(text)
        hours_minutes = [int(g) for g in match.groups()] if match else []
        if not match or any(h > 24 or m > 59 or (h == 24 and m) for h, m in zip(hours_minutes[::2],
                                                                                 hours_minutes[1::2], strict=True)):
            raise ValueError(f"khung giờ đêm không hợp lệ: {text!r} (dạng HH:MM-HH:MM, vd. 22:00-06:00)")
        sh, sm, eh, em = (0 if v == 24 else v for v in hours_minutes)  # 24:00 is midnight
        return cls(start=time(sh, sm), end=time(eh, em))

    def contains(self, moment: time) -> bool:
        """Whether the local wall-clock time ``moment`` is inside the window (pure)."""
        moment = moment.replace(tzinfo=None)
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # across midnight

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def _night_window(value: object) -> object:
    return NightWindow.parse(value) if isinstance(value, str) else value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOHOA_", extra="ignore")

    archive: Path = Field(default=Path("archive"), description="Archive root (object store, catalog, index).")
    workers: int = Field(default_factory=_default_workers, ge=1, description="Parallel OCR processes.")

    # OCR
    ocr_engine: Literal["tesseract-cli", "tesserocr"] = Field(
        default="tesseract-cli", description="SOHOA_OCR_ENGINE: tesseract as a command per page (tesseract-cli) or "
                                             "in-process, model loaded once per worker (tesserocr)."
    )
    ocr_lang: str = "vie"
    tesseract_cmd: str = "tesseract"
    tessdata_dir: Path | None = None  # None: tesseract's own default
    psm: int = 3
    oem: int = 1
    page_timeout_s: float = Field(
        default=300.0, gt=0.0, description="SOHOA_PAGE_TIMEOUT_S: OCR time of one page; a page over it is kept as "
                                          "an image without text, with a review reason."
    )
    pdf_dpi: int = 300  # rasterisation resolution of PDF pages
    ocr_reread: bool = Field(
        default=True, description="Read again, one by one, the lines the page pass was unsure of (pipeline.reread)."
    )
    ocr_language_correction: bool = Field(
        default=True,
        description="SOHOA_OCR_LANGUAGE_CORRECTION: put right the tone and vowel marks of OCR words from the "
                    "Vietnamese words around them (a lexicon of words; pipeline.language).",
    )
    ocr_seal_lines: bool = Field(
        default=True,
        description="Read again, cleaned, the lines a black seal covers; settle a signer's name fused with the seal "
                    "by elimination among known names (pipeline.seal_read).",
    )
    name_font: Path | None = Field(
        default=None, description="Bold serif font that names are printed in to be matched (None: Liberation Serif "
                                  "Bold from the system's fonts; without it, names under seals are only re-read)."
    )
    ocr_vocabulary: bool = Field(
        default=True, description="Give tesseract sohoa's administrative words and number-symbol patterns."
    )

    # resource limits of one document (issue 18): breaking one fails that document, never the batch
    max_page_pixels: int = Field(
        default=200_000_000, ge=1, description="SOHOA_MAX_PAGE_PIXELS: pixels of one page image (header, before "
                                               "decoding; PDF pages at pdf_dpi)."
    )
    max_document_pages: int = Field(default=2000, ge=1, description="SOHOA_MAX_DOCUMENT_PAGES: pages per document.")
    max_file_mb: float = Field(default=2048.0, gt=0.0, description="SOHOA_MAX_FILE_MB: size of one input file.")
    decode_timeout_s: float = Field(
        default=120.0, gt=0.0, description="SOHOA_DECODE_TIMEOUT_S: rendering one PDF page (poppler, a subprocess "
                                           "killed at the limit); images decoded in process are bounded by pixels."
    )
    max_memory_mb: int = Field(
        default=4096, ge=64, description="SOHOA_MAX_MEMORY_MB: decoded pages held in memory at once by one process "
                                         "(estimated from header dimensions before decoding; a page that alone "
                                         "needs more fails, others wait)."
    )
    max_working_dpi: int = Field(
        default=300, ge=0, description="SOHOA_MAX_WORKING_DPI: a page scanned above this resolution is area-averaged "
                                       "down to it as it is decoded (OCR image and PDF/A image layer; the original "
                                       "is kept byte for byte): a 600-dpi A3 page needs a quarter of the memory. "
                                       "0: pages are worked on at their scan resolution."
    )
    # testing only: SIGKILL this process at the n-th hit of a named point ("ocr:2", "catalog:1", see flows.faults)
    fault_kill_at: str | None = Field(default=None, description="SOHOA_FAULT_KILL_AT=<point>:<n> (tests only).")

    # derivatives
    image_layer_quality: int = Field(default=80, ge=30, le=100)  # JPEG quality of the PDF/A image layer

    # review thresholds
    review_page_confidence: float = Field(default=0.70, ge=0.0, le=1.0)
    review_doubtful_share: float = Field(
        default=0.015, ge=0.0, le=1.0, description="Flag a page when this share of its characters is doubtful."
    )

    # orchestration: Prefect's local run database (embedded mode); one per user so only a machine's first run
    # pays for creating it. Ignored when PREFECT_API_URL points at a Prefect server.
    prefect_home: Path = Field(default_factory=lambda: Path.home() / ".local" / "share" / "sohoa" / "prefect")
    prefetch_pages_per_worker: int = Field(
        default=20, ge=0, description="At most this many pages per worker are OCR'd while Prefect starts."
    )
    # where document tasks run (flows.digitise.document_tasks): threads of this process sharing one OCR pool, or a
    # Dask cluster — a LocalCluster of `workers` processes started per run (127.0.0.1, no dashboard), or the
    # scheduler at `dask_address` (tcp://host:8786) whose workers may be other machines sharing the stores
    task_runner: Literal["threads", "dask"] = Field(
        default="threads", description="SOHOA_TASK_RUNNER: run document tasks on threads or on Dask."
    )
    dask_address: str | None = Field(
        default=None, description="SOHOA_DASK_ADDRESS: an existing Dask scheduler (task_runner=dask); None: local."
    )

    # backends: embedded defaults, servers for scale
    object_store: Literal["directory", "s3"] = "directory"
    search_index: Literal["sqlite", "elasticsearch"] = "sqlite"
    index_processes: int = Field(
        default=0, ge=0, description="SOHOA_INDEX_PROCESSES: processes that prepare the embedded index's rows "
                                     "while a rebuild (sohoa reindex) writes them; 0: this machine's cores (at "
                                     "most 4); 1: none besides the rebuilding process."
    )

    # shared database (issue 23): None keeps the embedded SQLite files in the archive folder; a
    # postgresql://user@host:port/db URL (SOHOA_DATABASE_URL) puts the catalog, batch registry and work queue,
    # accounts and corrections, and the audit trail in PostgreSQL, so several hosts can share one archive
    database_url: SecretStr | None = Field(
        default=None, description="SOHOA_DATABASE_URL: postgresql://… for a shared PostgreSQL; None: SQLite files."
    )
    # `sohoa backup` with a database_url adds `pg_dump --format=custom` of it to the backup (its major version must be
    # at least the server's); a name looked up on PATH, or a path
    pg_dump: str = Field(default="pg_dump", description="SOHOA_PG_DUMP: the pg_dump program backups run.")

    # Elasticsearch search index (SOHOA_SEARCH_INDEX=elasticsearch)
    es_url: str = "http://localhost:9200"
    es_username: str = "elastic"
    es_password: SecretStr = SecretStr("")
    es_index: str = "sohoa-documents"  # the alias searches go through; reindex swaps the index behind it
    es_ca_file: Path | None = None
    es_timeout_s: float = Field(default=30.0, gt=0.0)

    # S3 object store (MinIO in production; SOHOA_OBJECT_STORE=s3)
    s3_endpoint: str = "localhost:9000"  # host:port, no scheme
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    s3_bucket: str = "sohoa"
    s3_prefix: str = ""  # optional folder inside the bucket
    s3_secure: bool = False  # TLS
    s3_ca_file: Path | None = None  # CA bundle for a private TLS certificate
    s3_region: str | None = None
    s3_retries: int = Field(default=4, ge=0, description="Retries of a failed S3 request, with backoff.")
    s3_backoff_s: float = Field(default=1.0, ge=0.0, description="First retry delay; doubles each retry.")
    s3_timeout_s: float = Field(default=60.0, gt=0.0)

    # scheduled preservation work (`sohoa serve`): TT 05 asks for a check of every document at least every 3 years
    timezone: str = "Asia/Ho_Chi_Minh"
    fixity_cron: str = "0 2 * * 0"  # Sundays 02:00
    fixity_sample: int | None = Field(default=None, ge=1, description="Documents per audit; None: all.")
    # `sohoa serve` with a work pool (SOHOA_WORK_POOL or --work-pool): register the scheduled deployments in this
    # Prefect `process` work pool (created if missing) and exit; `prefect worker start --pool NAME` runs them
    work_pool: str | None = Field(
        default=None, min_length=1, description="SOHOA_WORK_POOL: register `sohoa serve`'s deployments in this pool."
    )

    # intake of classified documents: making a digital copy of a Mật/Tối mật document is itself a copy that needs
    # the competent person's approval, so a document whose batch records none (approval_ref AND approved_by) is
    # held like Tuyệt mật ("quarantine", the lawful default: register entry "chờ phê duyệt", digitised on a re-run
    # once the approval is recorded); "review" (lenient, explicit) digitises it and flags it for review
    secret_without_approval: Literal["review", "quarantine"] = "quarantine"

    # accountability: the audit trail's HMAC key (default ARCHIVE/audit.key; better on another volume)
    audit_key_file: Path | None = None
    # the trail's head is also written to the object store (audit/anchor.json) at least this often, so a rollback
    # of the local audit files is caught against the store (besides every fixity run and backup)
    audit_anchor_every: int = Field(
        default=50, ge=1, description="SOHOA_AUDIT_ANCHOR_EVERY: appends between two store anchors at most."
    )
    audit_anchor_every_s: float = Field(
        default=300.0, gt=0.0, description="SOHOA_AUDIT_ANCHOR_EVERY_S: seconds between two store anchors at most "
                                           "(checked at the next append)."
    )
    # unattended digitisation of queued batches (`sohoa batch add --when tonight|CRON`, `sohoa serve`): no new
    # document is started outside this window
    night_window: Annotated[NightWindow, NoDecode, BeforeValidator(_night_window)] = NightWindow(
        start=time(22, 0), end=time(6, 0))
    # the shared work queue of batch runs (several processes, several hosts): a worker holds a document it claimed
    # (and the batch run it works on) for lease_s seconds, renewed every heartbeat_s (default lease_s / 4); a
    # worker that stops renewing (dead process, lost host) loses them once the lease has run out
    lease_s: float = Field(default=120.0, ge=5.0, description="SOHOA_LEASE_S: seconds a claim lives unrenewed.")
    heartbeat_s: float | None = Field(
        default=None, gt=0.0, description="SOHOA_HEARTBEAT_S: seconds between renewals; None: lease_s / 4.")
    # this host among the workers of the shared queue: the worker ids (``HOST:token``) and the one-nightly-run-per-
    # host lease (``nightly:HOST``) are named after it; two workers on one machine that must act as two hosts (or a
    # container whose hostname changes on every start) set it
    host_id: str = Field(default_factory=socket.gethostname, min_length=1, pattern=r"^[^:\s]+$",
                         description="SOHOA_HOST_ID: this host's name in the work queue; default: the hostname.")

    # backups (`sohoa backup --to s3://bucket/prefix`): another S3 server; unset fields reuse the s3_* values
    backup_s3_endpoint: str | None = None
    backup_s3_access_key: str | None = None
    backup_s3_secret_key: SecretStr | None = None
    backup_s3_secure: bool | None = None

    # batches read from an S3 "inbox" (`sohoa digitise s3://bucket/prefix/`): another S3 server or other keys;
    # unset fields reuse the s3_* values
    inbox_s3_endpoint: str | None = None
    inbox_s3_access_key: str | None = None
    inbox_s3_secret_key: SecretStr | None = None
    inbox_s3_secure: bool | None = None

    # local scratch space of a worker (per-document work files, originals downloaded from an S3 inbox): never the
    # archive folder; None: <system temp dir>/sohoa-scratch. A leftover of a crashed run is removed when its
    # process is gone (same host) or its lease has not been renewed for scratch_lease_s (any host)
    scratch_dir: Path | None = Field(
        default=None, description="SOHOA_SCRATCH_DIR: local folder for per-document work files (None: system temp)."
    )
    scratch_lease_s: float = Field(
        default=6 * 3600.0, gt=0.0, description="SOHOA_SCRATCH_LEASE_S: a work folder not renewed for this long "
                                                "(no page finished in it) is a crash leftover."
    )

    # the web app (`sohoa web`)
    admin_user: str = "admin"
    admin_password: SecretStr | None = Field(
        default=None, description="Creates the first admin account when the archive has no account yet.")
    web_secure_cookies: bool = Field(default=False, description="Mark cookies Secure (the app is served over TLS).")
    web_session_hours: float = Field(default=12.0, gt=0.0, description="A session ends after this long unused.")
    web_login_attempts: int = Field(default=5, ge=1, description="Failed logins per address and account ...")
    web_login_account_attempts: int = Field(default=10, ge=1, description="... per account, from any address ...")
    web_login_address_attempts: int = Field(default=20, ge=1, description="... per address, for any account ...")
    web_login_window_s: float = Field(default=900.0, gt=0.0, description="... within this many seconds.")
    trusted_proxies: str = Field(
        default="", description="Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: IP "
                                "addresses or networks, comma-separated (SOHOA_TRUSTED_PROXIES). Empty: none.")
    web_page_size: int = Field(default=10, ge=1, le=100)
    web_batch_root: Path | None = Field(
        default=None, description="Folder whose sub-folders archivists may register as batches from the web app.")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"SOHOA_TRUSTED_PROXIES: «{item}» không phải địa chỉ IP hay dải mạng "
                                 "(vd. 127.0.0.1, 10.0.0.0/24)") from None
        return ",".join(items)

    @property
    def trusted_proxy_list(self) -> list[str]:
        """The configured proxies (addresses or networks); empty when no proxy is trusted."""
        return [item for item in self.trusted_proxies.split(",") if item]

    @property
    def heartbeat_interval_s(self) -> float:
        """Seconds between two renewals of a worker's leases (at most half a lease, so one missed beat is harmless)."""
        return min(self.heartbeat_s or self.lease_s / 4, self.lease_s / 2)

    def archive_path(self) -> Path:
        return self.archive.expanduser().resolve()

    def scratch_path(self) -> Path:
        """Where per-document work files go: ``scratch_dir``, else a folder of this user's under the system temp dir."""
        if self.scratch_dir is not None:  # not resolved: a symbolic link put at its name is seen, and refused
            root = Path(os.path.abspath(self.scratch_dir.expanduser()))  # (``storage.scratch.private_root``)
            real, archive = root.resolve(), self.archive_path()
            # the start-up clean-up removes old entries there: over the archive it would delete the archive's files
            if real == archive or archive in real.parents or real in archive.parents:
                raise ConfigError(f"SOHOA_SCRATCH_DIR ({root}) trùng, nằm trong hoặc chứa thư mục kho {archive}",
                                  fix="đặt SOHOA_SCRATCH_DIR là một thư mục riêng trên ổ cục bộ, ngoài thư mục kho")
            return root
        return Path(tempfile.gettempdir()).resolve() / f"sohoa-scratch-{os.getuid()}"  # one per user
