"""Web hardening (issue 16, findings 8, 12 and 14), through the real app, the real accounts database and, for the
proxy headers, the ASGI stack uvicorn builds from ``run_web``'s arguments.

* 8: ``X-Forwarded-For`` is believed only from a configured proxy (``SOHOA_TRUSTED_PROXIES``); failed logins are
  counted per address and account, per account from any address and per address for any account.
* 12: out-of-range numbers in the search API and the search page are a 4xx, never a 500.
* 14: passwords of at least 12 characters, not common, not the user name (CLI and admin forms); page images and
  every document response are ``no-store``; ``/docs`` and ``/openapi.json`` need a login.

Most tests use a tiny archive (an empty catalog and index, no OCR); the cache test uses the digitised sample.
"""

from __future__ import annotations

import io
import re
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette's note about httpx2, printed at import
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from flows.accounts import AccountError, check_password_rules
from flows.audit import open_audit
from flows.wiring import build_search_index
from interfaces.cli import main
from interfaces.web import add_user, create_app
from interfaces.web.config import WebSettings
from schemas.errors import ConfigError
from schemas.settings import Settings
from tests.conftest import DigitisedArchive

PASSWORD = "mat-khau-kiem-thu"
ADMIN_PASSWORD = "quan-tri-he-thong-so"
WRONG = "doan-sai-mat-khau"


@dataclass
class Tiny:
    settings: Settings
    token: str  # the staff account's API token


@pytest.fixture
def tiny(tmp_path: Path) -> Tiny:
    """An archive with an empty catalog and search index (searches reach the index) and two accounts."""
    settings = Settings(archive=tmp_path / "archive")
    build_search_index(settings).close()
    staff = add_user(settings, "staff", PASSWORD, "staff", api_token=True)
    add_user(settings, "admin", ADMIN_PASSWORD, "admin")
    assert staff.token
    return Tiny(settings=settings, token=staff.token)


def _browser(app: Any, ip: str = "198.51.100.20") -> TestClient:
    """A browser connecting from ``ip`` (the peer address of the TCP connection)."""
    return TestClient(app, client=(ip, 50000))


def _try_login(client: TestClient, username: str, password: str,
               headers: dict[str, str] | None = None) -> Any:
    page = client.get("/login", headers=headers)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return client.post("/login", data={"username": username, "password": password, "csrf_token": match.group(1),
                                       "next": "/search"}, headers=headers, follow_redirects=False)


def _login(client: TestClient, username: str, password: str) -> TestClient:
    response = _try_login(client, username, password)
    assert response.status_code == 303, response.text
    return client


def _last_source(settings: Settings) -> str:
    entry = next(open_audit(settings).entries(newest_first=True, limit=1))
    return entry.source


def _served_app(tiny: Tiny, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The ASGI app exactly as ``sohoa web`` serves it: ``run_web``'s arguments given to uvicorn's ``Config``
    (which wraps the app in uvicorn's proxy-header middleware when asked to), without opening a socket."""
    import uvicorn

    from interfaces.web.server import run_web

    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: captured.update(app=app, **kwargs))
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)  # uvicorn's own default: 127.0.0.1 and ::1
    run_web(tiny.settings, host="127.0.0.1", port=8000)
    config = uvicorn.Config(captured.pop("app"), **captured)
    config.load()
    return config.loaded_app


# --- finding 8: X-Forwarded-For and login throttling ----------------------------------------------------------


def test_forwarded_for_is_not_trusted_by_default(tiny: Tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOHOA_TRUSTED_PROXIES", raising=False)
    app = _served_app(tiny, monkeypatch)
    local = _browser(app, "127.0.0.1")  # even a peer on this machine (uvicorn's default trusted address)
    for n in range(5):
        response = _try_login(local, "staff", WRONG, headers={"X-Forwarded-For": f"203.0.113.{n + 1}"})
        assert response.status_code == 401
        assert _last_source(tiny.settings) == "web:127.0.0.1"  # the audit records the real peer
    blocked = _try_login(local, "staff", PASSWORD, headers={"X-Forwarded-For": "203.0.113.99"})
    assert blocked.status_code == 429  # rotating the header did not reset the per-address count
    assert int(blocked.headers["retry-after"]) > 0


def test_forwarded_for_trusted_only_from_a_configured_proxy(tiny: Tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOHOA_TRUSTED_PROXIES", "192.0.2.10, 192.0.2.128/25")
    app = _served_app(tiny, monkeypatch)
    proxy = _browser(app, "192.0.2.10")
    # the proxy appends the address it saw; anything to the left of it came from the client and is not believed
    assert _try_login(proxy, "staff", WRONG, headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.5"}
                      ).status_code == 401
    assert _last_source(tiny.settings) == "web:203.0.113.5"
    chained = _browser(app, "192.0.2.200")  # a second trusted proxy (network) in front of the first
    _try_login(chained, "staff", WRONG, headers={"X-Forwarded-For": "203.0.113.6, 192.0.2.10"})
    assert _last_source(tiny.settings) == "web:203.0.113.6"
    stranger = _browser(app, "198.51.100.30")  # not a configured proxy: its header is ignored
    _try_login(stranger, "staff", WRONG, headers={"X-Forwarded-For": "203.0.113.5"})
    assert _last_source(tiny.settings) == "web:198.51.100.30"


def test_trusted_proxies_setting_is_checked() -> None:
    assert WebSettings(trusted_proxies=" 192.0.2.1 ,2001:db8::/32").trusted_proxy_list == ["192.0.2.1",
                                                                                           "2001:db8::/32"]
    assert WebSettings().trusted_proxy_list == []
    for bad in ("*", "proxy.example", "192.0.2.1/99"):
        with pytest.raises(ValueError, match="SOHOA_TRUSTED_PROXIES"):
            WebSettings(trusted_proxies=bad)


def test_failures_of_one_account_from_many_addresses_are_throttled(tiny: Tiny) -> None:
    web = WebSettings(web_login_attempts=5, web_login_account_attempts=3, web_login_address_attempts=50)
    app = create_app(tiny.settings, web)
    for n in range(3):
        assert _try_login(_browser(app, f"203.0.113.{n + 1}"), "staff", WRONG).status_code == 401
    blocked = _try_login(_browser(app, "203.0.113.50"), "staff", PASSWORD)  # a new address, the right password
    assert blocked.status_code == 429
    assert "quá nhiều lần" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0
    _login(_browser(app, "203.0.113.50"), "admin", ADMIN_PASSWORD)  # other accounts are not affected


def test_failures_from_one_address_over_many_accounts_are_throttled(tiny: Tiny) -> None:
    web = WebSettings(web_login_attempts=5, web_login_account_attempts=50, web_login_address_attempts=3)
    app = create_app(tiny.settings, web)
    sprayer = _browser(app, "203.0.113.9")
    for name in ("an", "binh", "chi"):  # password spraying: one guess per account
        assert _try_login(sprayer, name, WRONG).status_code == 401
    assert _try_login(sprayer, "staff", PASSWORD).status_code == 429
    _login(_browser(app, "203.0.113.10"), "staff", PASSWORD)  # other addresses are not affected


def test_ipv6_addresses_of_one_network_count_together(tiny: Tiny) -> None:
    web = WebSettings(web_login_attempts=3, web_login_account_attempts=50, web_login_address_attempts=50)
    app = create_app(tiny.settings, web)
    for n in range(3):  # one /64 holds 2^64 addresses: rotating inside it is not a new address
        assert _try_login(_browser(app, f"2001:db8:0:1::{n + 1}"), "staff", WRONG).status_code == 401
    assert _try_login(_browser(app, "2001:db8:0:1::ffff"), "staff", PASSWORD).status_code == 429
    assert _try_login(_browser(app, "::ffff:198.51.100.44"), "staff", WRONG).status_code == 401
    assert _last_source(tiny.settings) == "web:198.51.100.44"  # an IPv4-mapped address is the IPv4 address
    _login(_browser(app, "2001:db8:0:2::1"), "staff", PASSWORD)


# --- finding 12: out-of-range numbers -------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    {"year_from": "99999999999999999999"}, {"year_to": "-99999999999999999999"}, {"year_from": "10000"},
    {"year_to": "0"}, {"date_from": "99999-01-01"}, {"date_to": "2024-13-01"}, {"limit": "99999999999999999999"},
    {"offset": "-1"},
])
def test_api_search_rejects_out_of_range_numbers(tiny: Tiny, query: dict[str, str]) -> None:
    client = TestClient(create_app(tiny.settings, WebSettings()), raise_server_exceptions=False)
    response = client.get("/api/search", params={"q": "nghi quyet", **query},
                          headers={"Authorization": f"Bearer {tiny.token}"})
    assert response.status_code == 422, response.text
    name = next(iter(query))
    assert any(error["loc"] == ["query", name] for error in response.json()["detail"])


def test_api_search_accepts_four_digit_years(tiny: Tiny) -> None:
    client = TestClient(create_app(tiny.settings, WebSettings()))
    response = client.get("/api/search", params={"q": "x", "year_from": "1", "year_to": "9999"},
                          headers={"Authorization": f"Bearer {tiny.token}"})
    assert response.status_code == 200 and response.json()["total"] == 0


def test_search_page_survives_odd_numbers(tiny: Tiny) -> None:
    client = _login(TestClient(create_app(tiny.settings, WebSettings()), raise_server_exceptions=False),
                    "staff", PASSWORD)
    for params in ({"year": "²²²²"}, {"year": "١٩٩٠"}, {"year": "99999999999999999999"}, {"year": "-1"},
                   {"page": "99999999999999999999"}, {"page": "-5"}, {"page": "²"}, {"page": "9" * 5000}):
        assert client.get("/search", params=params).status_code == 200, params


def test_bad_page_parameter_is_a_page_not_json(tiny: Tiny) -> None:
    client = _login(TestClient(create_app(tiny.settings, WebSettings())), "staff", PASSWORD)
    response = client.get("/documents/abc", params={"page": "x"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "không hợp lệ" in response.text


# --- finding 14: passwords ------------------------------------------------------------------------------------


@pytest.mark.parametrize("password", [
    "12345678", "mat-khau-1", "123456789012", "aaaaaaaaaaaa", "abcabcabcabc", "qwertyuiop12", "1qaz2wsx3edc",
    "password1234", "Password1234!", "P@ssw0rd2024!", "matkhau@2024", "Mat-Khau-123456", "iloveyou2024!",
    "anhyeuem12345", "passwordpassword", "987654321098", "abcdefghijkl", "mat-khau-moi-1", "sohoa-thanh-uy-2024",
])
def test_weak_or_common_passwords_refused(password: str) -> None:
    with pytest.raises(AccountError):
        check_password_rules(password, "lan")


@pytest.mark.parametrize("password", ["mat-khau-kiem-thu", "cay bang truoc ngo", "Sông Hàn về đêm 2024",
                                      "tra-cuu-ho-so-luu-tru", "mat-khau-can-bo"])
def test_long_uncommon_passwords_accepted(password: str) -> None:
    check_password_rules(password, "lan")


def test_password_may_not_be_or_contain_the_user_name() -> None:
    with pytest.raises(AccountError, match="tên đăng nhập"):
        check_password_rules("Hoa.Nguyen-1975!", "hoa.nguyen")
    with pytest.raises(AccountError, match="tên đăng nhập"):
        check_password_rules("nguyenvana12", "nguyenvana12")
    check_password_rules("Hoa.Nguyen-1975!", "lan")


def _user_add(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, archive: Path, name: str,
              password: str) -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    capsys.readouterr()
    code = main(["user", "add", name, "--role", "staff", "--password-stdin", "--archive", str(archive)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_user_add_refuses_weak_passwords(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "archive"
    for password, message in (("12345678", "ít nhất 12"), ("password1234", "phổ biến"),
                              ("thu.tran-1980!", "tên đăng nhập")):
        code, output = _user_add(capsys, monkeypatch, archive, "thu.tran", password)
        assert code == 4, output
        assert message in output, output
    code, output = _user_add(capsys, monkeypatch, archive, "thu.tran", "hoa phuong do san truong")
    assert code == 0, output


def test_weak_first_admin_password_stops_the_start(tmp_path: Path) -> None:
    web = WebSettings(admin_password="change-me-admin-password")  # type: ignore[arg-type]  # .env.example's
    with pytest.raises(ConfigError, match="SOHOA_ADMIN_PASSWORD"):
        create_app(Settings(archive=tmp_path / "archive"), web)


def test_admin_forms_refuse_weak_passwords(tiny: Tiny) -> None:
    admin = _login(TestClient(create_app(tiny.settings, WebSettings())), "admin", ADMIN_PASSWORD)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', admin.get("/admin").text)
    assert csrf
    form = {"csrf_token": csrf.group(1), "role": "staff", "clearance": "0"}
    for password in ("12345678", "qwerty123456", "ngoc.anh-2000"):
        created = admin.post("/admin/users", data={**form, "username": "ngoc.anh", "password": password})
        assert created.status_code == 400, password
    reset = admin.post("/admin/users/staff/password", data={"csrf_token": csrf.group(1), "password": "iloveyou1234"})
    assert reset.status_code == 400 and "phổ biến" in reset.text
    assert admin.post("/admin/users", data={**form, "username": "ngoc.anh", "password": "hoa sua nong nan"},
                      follow_redirects=False).status_code == 303


# --- finding 14: nothing of a document stays in the browser's cache; the API docs need a login ----------------


@pytest.fixture(scope="module")
def classified(digitised: DigitisedArchive, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[TestClient, str]]:
    """A copy of the digitised sample with an archivist cleared for Mật, logged in; and the Mật document's id."""
    root = tmp_path_factory.mktemp("hardening") / "archive"
    shutil.copytree(digitised.archive, root, ignore=shutil.ignore_patterns("web.sqlite3*"))
    settings = Settings(archive=root)
    add_user(settings, "mat", PASSWORD, "archivist", clearance=1)
    report = digitised.report["documents"]
    assert isinstance(report, list)
    secret = next(str(d["id"]) for d in report if d["source"] == "bc_03.pdf")
    with TestClient(create_app(settings, WebSettings())) as client:
        yield _login(client, "mat", PASSWORD), secret


def test_classified_page_images_and_files_are_not_stored(classified: tuple[TestClient, str]) -> None:
    client, secret = classified
    for path in (f"/documents/{secret}/pages/1/image", f"/documents/{secret}/pdf", f"/documents/{secret}/original/1",
                 f"/documents/{secret}", f"/api/documents/{secret}", "/search?q=quy+hoach+can+bo+nu",
                 "/api/search?q=quy+hoach+can+bo+nu"):
        response = client.get(path)
        assert response.status_code == 200, path
        cache = response.headers["cache-control"]
        assert "no-store" in cache and "max-age" not in cache, (path, cache)


def test_api_docs_need_a_login(tiny: Tiny) -> None:
    app = create_app(tiny.settings, WebSettings())
    anonymous = TestClient(app)
    docs = anonymous.get("/docs", follow_redirects=False)
    assert docs.status_code == 303 and docs.headers["location"] == "/login?next=%2Fdocs"
    spec = anonymous.get("/openapi.json")
    assert spec.status_code == 401 and "paths" not in spec.text
    assert anonymous.get("/openapi.json", headers={"Authorization": "Bearer sohoa_sai"}).status_code == 401

    with_token = TestClient(app).get("/openapi.json", headers={"Authorization": f"Bearer {tiny.token}"})
    assert with_token.status_code == 200 and "/api/search" in with_token.json()["paths"]
    browser = _login(TestClient(app), "staff", PASSWORD)
    assert browser.get("/docs").status_code == 200
    assert "/api/search" in browser.get("/openapi.json").json()["paths"]
