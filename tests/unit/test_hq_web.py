"""The HQ page (hqweb): staff accounts, the wrong-password limit, sign-in with CSRF, language,
formats, bad input and a database that does not answer (a real psql that cannot connect).

The report against the real PostgreSQL, in headless Chromium with axe-core, is the lab test
``tests/lab/test_hq.py::test_hq_page_in_a_browser``.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from hqweb import create_app
from hqweb.limits import LoginLimiter
from hqweb.settings import Settings
from hqweb.staff import StaffError, StaffFile
from hqweb.views import Formatter

PASSWORD = "rahasia-pusat-1"


@pytest.fixture
def staff(tmp_path) -> StaffFile:
    accounts = StaffFile(tmp_path / "staff")
    accounts.add("rina", PASSWORD)
    return accounts


@pytest.fixture
def app(tmp_path, staff):
    settings = Settings(
        db=f"host={tmp_path}/no-such-socket dbname=radius connect_timeout=2", staff_file=staff.path,
        secret_file=tmp_path / "secret", secure_cookies=True, max_failures=3,
    )  # fmt: skip
    return create_app({"HQ": settings, "TESTING": True})


def _token(page: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()


def _sign_in(client, name: str = "rina", password: str = PASSWORD, **extra):
    token = _token(client.get("/login").data)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token, **extra})


def test_settings_from_env_say_what_is_wrong():
    with pytest.raises(ValueError, match="HOTSPOT_HQ_DB"):
        Settings.from_env({})
    with pytest.raises(ValueError, match="time zone"):
        Settings.from_env({"HOTSPOT_HQ_DB": "dbname=radius", "HOTSPOT_HQ_TIMEZONE": "Mars/Olympus"})
    settings = Settings.from_env({"HOTSPOT_HQ_DB": "dbname=radius", "HOTSPOT_HQ_SECURE_COOKIES": "0"})
    assert settings.secure_cookies is False and settings.timezone == "Asia/Jakarta"


def test_staff_file_holds_argon2_hashes_only(staff):
    text = staff.path.read_text()
    assert PASSWORD not in text and "rina:$argon2id$" in text
    assert stat.S_IMODE(staff.path.stat().st_mode) == 0o640
    assert staff.verify("rina", PASSWORD) and not staff.verify("rina", "salah-salah-1")
    assert not staff.verify("nobody", PASSWORD)
    before = staff.fingerprint("rina")
    assert staff.add("rina", "another-password") is False  # a new password: a new fingerprint
    assert staff.fingerprint("rina") != before
    for name, password in (("Rina Bad", PASSWORD), ("rina", "short")):
        with pytest.raises(StaffError):
            staff.add(name, password)
    assert staff.remove("rina") and not staff.remove("rina") and staff.names() == []


def test_limiter_locks_a_key_after_too_many_failures():
    limiter = LoginLimiter(max_failures=3, window=60, lockout=30)
    for at in (0, 1):
        assert limiter.failed(["name:x"], at) == 0
    assert limiter.wait(["name:x"], 2) == 0
    assert limiter.failed(["name:x"], 2) == 30
    assert limiter.wait(["name:x", "addr:y"], 3) == 29 and limiter.wait(["name:x"], 33) == 0
    limiter.failed(["name:z"], 0)
    limiter.succeeded(["name:z"])
    assert limiter.failed(["name:z"], 1) == 0  # a right password forgot the earlier one


def test_formats_follow_the_language():
    assert Formatter("id").number(1234567) == "1.234.567"
    assert Formatter("en").number(1234567) == "1,234,567"
    assert Formatter("id").hours(1.5) == "1,5" and Formatter("id").size(12_300_000) == "12,3 MB"
    assert Formatter("id").period("2026-11") == "November 2026"
    assert Formatter("id").period("2026-11-03") == "3 Nov 2026"
    assert Formatter("en").period("2026-11-03") == "Nov 3, 2026"
    assert Formatter("id").period("(unknown)") == "(unknown)"


def test_sign_in_needs_csrf_and_the_right_password(app):
    client = app.test_client()
    assert client.get("/").headers["Location"].startswith("/login")
    # no CSRF token: refused with a page, nobody signed in
    response = client.post("/login", data={"name": "rina", "password": PASSWORD})
    assert response.status_code == 400 and b"kedaluwarsa" in response.data
    assert client.get("/").status_code == 302
    response = _sign_in(client, password="salah-salah-1")
    assert response.status_code == 200 and "Nama akun atau kata sandi salah." in response.text
    response = _sign_in(client, next="//evil.example/")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    # signed in: the database does not answer -> a clear page (503), never a traceback
    response = client.get("/")
    assert response.status_code == 503 and "basis data kantor pusat tidak menjawab" in response.text
    assert "HQ&#39;s database does not answer" in client.get("/?lang=en").text
    # bad input: a page saying what is wrong
    response = client.get("/?month=2026-13&lang=id")
    assert response.status_code == 400
    assert "2026-13" in response.text and "bukan bulan seperti" in response.text
    assert client.get("/?by=planet").status_code == 400
    assert client.get("/report.csv?kind=passwords").status_code == 400
    # sign out (a form with its token)
    token = _token(client.get("/?month=2026-13").data)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_passwords_lock_the_name_even_for_the_right_one(app):
    client = app.test_client()
    statuses = [_sign_in(client, password=f"wrong-password-{i}").status_code for i in range(3)]
    assert statuses == [200, 200, 429]
    response = _sign_in(client)  # the right password, but locked
    assert response.status_code == 429 and "Terlalu banyak" in response.text


def test_a_removed_account_or_new_password_ends_the_sign_in(app, staff):
    client = app.test_client()
    assert _sign_in(client).status_code == 302
    staff.add("rina", "a-new-password-1")
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_report_page_and_csv_show_the_rows(app, monkeypatch):
    """The page and the CSV from rows as run_report returns them (the query runs for real in the lab)."""
    import hqweb.views as views

    rows = {
        "reach": [{"period": "2026-11", "group": "=HYPERLINK(1)", "sessions": 12345, "devices": 6789,
                   "hours": 1234.5, "bytes": 12_300_000_000, "central_accounts": 3, "voucher_sessions": 400}],
        "vouchers": [{"period": "2026-11", "group": "sukabumi", "plan": "harian", "sessions": 400,
                      "vouchers": 390}],
        "survey": [{"period": "2026-11", "group": "sukabumi", "question": "purpose", "answer": "study",
                    "count": 77}],
        "libraries": [{"id": "sukabumi", "name": "Perpustakaan Daerah Sukabumi"}],
    }  # fmt: skip
    monkeypatch.setattr(views, "run_report", lambda *a, kind, **k: rows[kind])
    client = app.test_client()
    _sign_in(client)
    page = client.get("/?month=2026-11").text
    assert "Jangkauan November 2026" in page and "12.345" in page and "1.234,5" in page and "12,3 GB" in page
    assert "harian" in page and "390" in page and "Pertanyaan: purpose" in page
    assert "Perpustakaan Daerah Sukabumi" in page  # a library's name beside its id
    assert 'hreflang="en"' in page and "month=2026-11" in page
    response = client.get("/report.csv?month=2026-11&kind=reach")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    assert response.text.splitlines() == [
        "period,group,sessions,devices,hours,bytes,central_accounts,voucher_sessions",
        "2026-11,'=HYPERLINK(1),12345,6789,1234.5,12300000000,3,400",  # a formula is never a formula
    ]
    assert client.get("/report.csv?month=2026-11&kind=survey").text.splitlines()[1] == (
        "2026-11,sukabumi,purpose,study,77"
    )


def test_secret_key_is_made_once_and_private(app, tmp_path):
    key = Path(tmp_path / "secret")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_text().strip()) == 64
    assert app.config["SECRET_KEY"] == key.read_bytes().strip()


def test_hotspotctl_hq_account_add_list_remove(tmp_path):
    import json

    from click.testing import CliRunner

    from gateway.cli import cli

    path = str(tmp_path / "staff")
    run = CliRunner().invoke
    result = run(
        cli, ["hq", "account", "add", "Rina", "--staff-file", path, "--password-stdin"], input=PASSWORD
    )
    assert result.exit_code == 0 and "added rina" in result.output
    result = run(
        cli, ["hq", "account", "add", "budi", "--staff-file", path, "--password-stdin"], input="short\n"
    )
    assert result.exit_code == 2 and "10 to 256" in result.output
    result = run(cli, ["hq", "account", "list", "--staff-file", path, "--json"])
    assert json.loads(result.output) == {"accounts": ["rina"]}
    assert StaffFile(Path(path)).verify("rina", PASSWORD)
    assert run(cli, ["hq", "account", "remove", "rina", "--staff-file", path]).exit_code == 0
    assert run(cli, ["hq", "account", "remove", "rina", "--staff-file", path]).exit_code == 1


def test_hotspotctl_hq_web_checks_its_settings_before_starting(tmp_path):
    from click.testing import CliRunner

    from gateway.cli import cli

    result = CliRunner().invoke(
        cli,
        [
            "hq",
            "web",
            "--db",
            "dbname=radius",
            "--timezone",
            "Mars/Olympus",
            "--staff-file",
            str(tmp_path / "s"),
        ],
    )
    assert result.exit_code == 2 and "not a time zone" in result.output
