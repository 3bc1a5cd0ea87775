"""Central logins through the real FreeRADIUS at the lab's HQ: a code that is not a local voucher."""

from __future__ import annotations

import re
import time

import pytest

from gateway.lab.probe import online_from, wait_for
from gateway.model.sessions import session_for_mac
from gateway.model.vouchers import issue_batch

pytestmark = pytest.mark.lab

PORTAL = "http://10.42.0.1:8080"


def _curl(lab, ns: str, url: str, *args: str) -> tuple[int, str]:
    out = lab.exec(ns, "curl", "-s", "-i", "-m", "15", *args, url, timeout=25).stdout
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    return (int(lines[0].split()[1]) if lines else 0), body


def _login(lab, ns: str, code: str, lang: str = "id") -> tuple[int, str]:
    page = _curl(lab, ns, f"{PORTAL}/?lang={lang}")[1]
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    return _curl(lab, ns, f"{PORTAL}/login?lang={lang}", "-d", f"code={code}&token={token}")


def test_central_code_logs_in_with_hqs_limits(hq_lab, gw):
    hq_lab.hq.add_user(
        "PUSAT-0001", "PUSAT-0001",
        {"Session-Timeout": "1800", "WISPr-Bandwidth-Max-Down": "3000000",
         "WISPr-Bandwidth-Max-Up": "1000000", "ChilliSpot-Max-Total-Octets": "50000000",
         "Idle-Timeout": "600",
         "Reply-Message": "Selamat datang di jaringan PerpuSeru"},
    )  # fmt: skip
    ns = hq_lab.spec.client(1)
    status, _ = _login(hq_lab, ns, "PUSAT-0001")
    assert status == 303
    session = session_for_mac(gw, hq_lab.client_mac(1))
    assert session is not None and session.kind == "central"
    assert (session.down, session.up, session.quota, session.idle_timeout) == (
        3_000_000,
        1_000_000,
        50_000_000,
        600,
    )
    assert 1790 <= session.expires_at - session.started_at <= 1800
    assert "PUSAT-0001" not in session.voucher_id  # the code itself is never the public id
    wait_for(lambda: online_from(hq_lab, 1), 10, "the central session to let the phone out")
    page = _curl(hq_lab, ns, f"{PORTAL}/online?lang=id")[1]
    assert "Selamat datang di jaringan PerpuSeru" in page
    assert "Akun program" in _curl(hq_lab, ns, f"{PORTAL}/status?lang=id")[1]


def test_wrong_central_code_is_refused(hq_lab, gw):
    ns = hq_lab.spec.client(2)
    status, page = _login(hq_lab, ns, "PUSAT-TIDAK-ADA", lang="en")
    assert status == 400
    assert "We could not find that code" in page
    assert session_for_mac(gw, hq_lab.client_mac(2)) is None


def test_absurd_reply_lets_nobody_in(hq_lab, gw):
    # -1 as RADIUS sends it (unsigned 32 bits), and 4 Gbit/s (100 Gbit/s does not even fit)
    hq_lab.hq.add_user("PUSAT-ANEH-1", "PUSAT-ANEH-1", {"Session-Timeout": "4294967295"})
    hq_lab.hq.add_user("PUSAT-ANEH-2", "PUSAT-ANEH-2", {"WISPr-Bandwidth-Max-Down": "4000000000"})
    ns = hq_lab.spec.client(3)
    for code in ("PUSAT-ANEH-1", "PUSAT-ANEH-2"):
        status, _ = _login(hq_lab, ns, code)
        assert status == 400
        assert session_for_mac(gw, hq_lab.client_mac(3)) is None
    assert not online_from(hq_lab, 3)
    log = (hq_lab.log_dir / "portal.log").read_text()
    assert "central_reply_absurd" in log


def test_hq_down_local_vouchers_work_central_codes_get_a_clear_message(hq_lab, gw):
    config = hq_lab.config()
    hq_lab.hq.add_user("PUSAT-0002", "PUSAT-0002")
    [voucher] = issue_batch(gw, config.plans["harian"], 1, now=time.time(), issued_by="test_central")
    hq_lab.stop("freeradius")
    try:
        ns = hq_lab.spec.client(4)
        started = time.monotonic()
        status, page = _login(hq_lab, ns, "PUSAT-0002")
        waited = time.monotonic() - started
        assert status == 503
        assert "kantor pusat program" in page  # Indonesian by default
        status, page = _login(hq_lab, ns, "PUSAT-0002", lang="en")
        assert status == 503 and "program's central office" in page.replace("&#39;", "'")
        assert session_for_mac(gw, hq_lab.client_mac(4)) is None
        # the stated bound (timeout x retries x servers), plus the page loads around it
        assert waited < config.radius.auth_bound + 3, waited
        status, _ = _login(hq_lab, ns, voucher.code)
        assert status == 303
        assert session_for_mac(gw, hq_lab.client_mac(4)).kind == "voucher"
    finally:
        hq_lab.start("freeradius")


def test_hq_limits_a_central_code_to_one_device_at_a_time(hq_lab, gw):
    hq_lab.hq.add_user("PUSAT-SATU", "PUSAT-SATU", check={"Simultaneous-Use": "1"})
    first, other = hq_lab.spec.client(1), hq_lab.spec.client(2)
    assert _login(hq_lab, first, "PUSAT-SATU")[0] == 303
    session = session_for_mac(gw, hq_lab.client_mac(1))

    def open_at_hq() -> bool:
        out = hq_lab.hq.sql(
            f"SELECT count(*) FROM radacct WHERE acctsessionid = '{session.sid}' AND acctstoptime IS NULL"
        )
        return out.strip() == "1"

    wait_for(open_at_hq, 15, "the Start at HQ")
    status, _ = _login(hq_lab, other, "PUSAT-SATU")
    assert status == 400
    assert session_for_mac(gw, hq_lab.client_mac(2)) is None
