import hashlib
from pathlib import Path

import pytest

from storage.objects import ChecksumMismatch, DirectoryObjectStore


def test_put_is_verified_idempotent_and_listed(tmp_path: Path) -> None:
    store = DirectoryObjectStore(tmp_path / "objects")
    src = tmp_path / "scan.tif"
    src.write_bytes(b"original bytes \x00\x01")
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    store.put_file("documents/abc/original/scan.tif", src, sha)
    target = Path(store.locate("documents/abc/original/scan.tif"))
    mtime = target.stat().st_mtime_ns
    store.put_file("documents/abc/original/scan.tif", src, sha)  # same content: untouched
    assert target.stat().st_mtime_ns == mtime
    assert store.get_bytes("documents/abc/original/scan.tif") == src.read_bytes()
    store.put_bytes("documents/abc/document.json", b"{}")
    assert list(store.list("documents/abc")) == ["documents/abc/document.json", "documents/abc/original/scan.tif"]
    assert not list((tmp_path / "objects" / ".incoming").iterdir())


def test_wrong_checksum_leaves_nothing_visible(tmp_path: Path) -> None:
    store = DirectoryObjectStore(tmp_path / "objects")
    src = tmp_path / "a.bin"
    src.write_bytes(b"abc")
    with pytest.raises(ChecksumMismatch):
        store.put_file("documents/x/a.bin", src, "0" * 64)
    assert not store.exists("documents/x/a.bin")
    assert not list((tmp_path / "objects" / ".incoming").iterdir())


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "a/./b", ""])
def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    store = DirectoryObjectStore(tmp_path / "objects")
    with pytest.raises(ValueError):
        store.put_bytes(key, b"x")
