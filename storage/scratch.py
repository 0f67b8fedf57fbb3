"""Local scratch space of a worker: one private folder per document being digitised (``Settings.scratch_path``).

A worker needs no disk shared with other hosts: page images, hOCR, the PDF/A being assembled and originals
downloaded from an S3 inbox live here only while their document is processed, and are removed after it. The
folder holds classified material, so it is created private (0700) and refused when it is a symbolic link or
belongs to another user.

A work folder is ``<name>.<UTC stamp>.<random>`` with a ``.lease`` file naming its host and process. Its owner
renews the lease (the file's mtime) as pages finish. A crashed run's leftovers are removed at the next start
(``remove_expired``): at once when the owner is a process of this host that no longer runs, else when the lease has
not been renewed for ``lease_s`` seconds (an owner on another host, should the folder be shared, is never judged by
its process id).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from schemas.errors import ConfigError
from storage.objects import _pid_alive

LEASE = ".lease"


def private_root(root: Path) -> Path:
    """``root`` created when missing, private to this user; ``ConfigError`` when it is not safe to write in."""
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = root.lstat()
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            raise ConfigError(f"Thư mục tạm {root} không an toàn (liên kết, hoặc thuộc người dùng khác)",
                              fix="đặt SOHOA_SCRATCH_DIR là một thư mục riêng của tài khoản chạy sohoa")
        if stat.S_IMODE(st.st_mode) & 0o077:
            root.chmod(0o700)
    except OSError as exc:
        raise ConfigError(f"Không tạo được thư mục tạm {root}: {exc}",
                          fix="đặt SOHOA_SCRATCH_DIR là một thư mục ghi được trên ổ cục bộ") from exc
    return root


def new_work_dir(root: Path, name: str) -> Path:
    """A new private work folder under ``root`` for ``name`` (a document id), its lease taken."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
    work = private_root(root) / f"{name}.{stamp}.{uuid.uuid4().hex[:8]}"
    work.mkdir(mode=0o700)
    (work / LEASE).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}), encoding="utf-8")
    return work


def renew(work: Path) -> None:
    """Renew the folder's lease (its owner is still working in it)."""
    with contextlib.suppress(OSError):
        os.utime(work / LEASE)


def _expired(entry: Path, lease_s: float, now: float) -> bool:
    lease = entry / LEASE
    try:
        owner = json.loads(lease.read_text(encoding="utf-8"))
        renewed = lease.stat().st_mtime
    except (OSError, ValueError):  # no lease (a file, a folder being created): judged by its own age
        try:
            return now - entry.lstat().st_mtime > lease_s
        except OSError:
            return False
    owner = owner if isinstance(owner, dict) else {}
    host, pid = owner.get("host"), owner.get("pid")
    if host == socket.gethostname() and isinstance(pid, int) and pid != os.getpid() and not _pid_alive(pid):
        return True
    return now - renewed > lease_s


def remove_expired(root: Path, *, lease_s: float, now: float | None = None) -> int:
    """Remove the crash leftovers under ``root`` (see the module); returns how many went."""
    now = time.time() if now is None else now
    removed = 0
    for entry in root.iterdir() if root.is_dir() else []:
        if not _expired(entry, lease_s, now):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed
