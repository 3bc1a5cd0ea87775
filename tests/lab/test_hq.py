"""The program's headquarters in the lab: real FreeRADIUS 3.2 + PostgreSQL 15 in ``<prefix>hq``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gateway.lab.probe import admit, online_from
from gateway.lab.topology import HQ_IP

pytestmark = pytest.mark.lab


def _radclient(lab, ns: str, secret: str, attributes: str, *, kind: str = "auth", port: int = 1812):
    return lab.exec(
        ns,
        "radclient",
        "-x",
        "-r",
        "1",
        "-t",
        "2",
        f"{HQ_IP}:{port}",
        kind,
        secret,
        input=attributes,
        timeout=15,
    )


def test_router_gets_access_accept_for_a_radcheck_user(hq_lab):
    hq = hq_lab.hq
    hq.add_user("ANGGOTA-T1", "rahasia-1", {"Session-Timeout": "3600", "WISPr-Bandwidth-Max-Down": "2000000"})
    ok = _radclient(
        hq_lab, hq_lab.spec.gw, hq.secret(), 'User-Name = "ANGGOTA-T1"\nUser-Password = "rahasia-1"\n'
    )
    assert "Received Access-Accept" in ok.stdout, ok.stdout + ok.stderr
    assert "Session-Timeout = 3600" in ok.stdout
    bad = _radclient(
        hq_lab, hq_lab.spec.gw, hq.secret(), 'User-Name = "ANGGOTA-T1"\nUser-Password = "salah"\n'
    )
    assert "Received Access-Reject" in bad.stdout, bad.stdout + bad.stderr


def test_hq_listens_on_its_lab_address_only(hq_lab):
    out = hq_lab.exec(hq_lab.spec.hq_ns, "ss", "-Htuln", check=True).stdout
    listeners = sorted(line.split()[4] for line in out.splitlines())
    # FreeRADIUS on the HQ address, PostgreSQL on no TCP address at all (unix socket only)
    assert listeners == [f"{HQ_IP}:1812", f"{HQ_IP}:1813"], out


def test_wrong_secret_gets_no_answer(hq_lab):
    hq_lab.hq.add_user("ANGGOTA-T2", "rahasia-2")
    out = _radclient(
        hq_lab, hq_lab.spec.gw, "not-the-secret", 'User-Name = "ANGGOTA-T2"\nUser-Password = "rahasia-2"\n'
    )
    assert "Access-Accept" not in out.stdout, out.stdout


def test_phones_never_reach_hq_logged_in_or_not(hq_lab, gw):
    # phone 2 is logged in (the internet works for it), phone 1 is not
    _, ack = admit(gw, hq_lab, 2)
    assert ack and ack["ok"]
    assert online_from(hq_lab, 2)
    for index in (1, 2):
        phone = hq_lab.spec.client(index)
        # with the secret, even: the packet would leave as the router's address, which HQ trusts
        # (without the router's hq4 rule, phone 2 gets an Access-Accept here)
        out = _radclient(
            hq_lab, phone, hq_lab.hq.secret(), 'User-Name = "ANGGOTA-T1"\nUser-Password = "rahasia-1"\n'
        )
        assert "Received" not in out.stdout, out.stdout


def test_reach_report_from_hq_database(hq_lab):
    """Accounting through the real FreeRADIUS, then `hotspotctl hq report` over radacct at HQ."""
    hq = hq_lab.hq
    hq.add_library("lab", "Perpustakaan Lab", district="Kota Lab", province="Jawa Lab")
    base = 1741996800  # 2025-03-15 00:00 UTC: a month no other test writes to
    packets = []
    for i, (device, octets) in enumerate((("dev-a", 1000), ("dev-a", 2000), ("dev-b", 4000))):
        for status in ("Start", "Stop"):
            lines = [
                f'Acct-Status-Type = {status}', f'Acct-Session-Id = "reach-{i}"',
                f'User-Name = "{"voucher" if i < 2 else "free"}:v{i}"',
                f'Class = "{"voucher:harian" if i < 2 else "free:gratis"}"',
                f'Calling-Station-Id = "{device}"', 'NAS-Identifier = "lab"', "Acct-Authentic = Local",
                f"Event-Timestamp = {base + i * 3600 + (1800 if status == 'Stop' else 0)}",
            ]  # fmt: skip
            if status == "Stop":
                lines += [
                    "Acct-Session-Time = 1800",
                    f"Acct-Output-Octets = {octets}",
                    "Acct-Input-Octets = 0",
                ]
            packets.append("\n".join(lines) + "\n")
    out = hq_lab.exec(
        hq_lab.spec.gw, "radclient", "-r", "2", "-t", "2", f"{HQ_IP}:1813", "acct", hq.secret(),
        input="\n".join(packets), timeout=30,
    )  # fmt: skip
    assert out.stdout.count("Received Accounting-Response") == 6, out.stdout + out.stderr
    hotspotctl = str(Path(sys.executable).parent / "hotspotctl")
    result = hq_lab.exec(
        hq_lab.spec.hq_ns, hotspotctl, "hq", "report", "--db", hq.conninfo, "--month", "2025-03",
        "--by", "province", "--json", timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)["rows"]
    assert row == {
        "period": "2025-03", "group": "Jawa Lab", "sessions": 3, "devices": 2, "hours": 1.5,
        "bytes": 7000, "central_accounts": 0, "voucher_sessions": 2,
    }  # fmt: skip
    result = hq_lab.exec(
        hq_lab.spec.hq_ns, hotspotctl, "hq", "report", "--db", hq.conninfo, "--month", "2025-03",
        "--per", "day", "--csv", timeout=60,
    )  # fmt: skip
    assert result.stdout.splitlines() == [
        "period,group,sessions,devices,hours,bytes,central_accounts,voucher_sessions",
        "2025-03-15,lab,3,2,1.5,7000,0,2",
    ]
    # local vouchers used per plan: the plan from the Class the router sent (radacct.class)
    result = hq_lab.exec(
        hq_lab.spec.hq_ns, hotspotctl, "hq", "report", "--db", hq.conninfo, "--month", "2025-03",
        "--vouchers", "--json", timeout=60,
    )  # fmt: skip
    assert json.loads(result.stdout)["rows"] == [
        {"period": "2025-03", "group": "lab", "plan": "harian", "sessions": 2, "vouchers": 2}
    ]
    # the survey's anonymous day counts, as a router sends them (radclient with HQ's dictionary)
    counts = {"study": 4, "work": 2}
    for answer, n in counts.items():
        survey = (
            'Acct-Status-Type = Interim-Update\nNAS-Identifier = "lab"\n'
            f'Acct-Session-Id = "survey-2025-03-15-{answer}"\nPerpuSeru-Survey-Day = "2025-03-15"\n'
            f'PerpuSeru-Survey-Question = "purpose"\nPerpuSeru-Survey-Answer = "{answer}"\n'
            f"PerpuSeru-Survey-Count = {n}\n"
        )
        out = hq_lab.exec(
            hq_lab.spec.gw, "radclient", "-d", str(hq.raddb), "-r", "2", "-t", "2", f"{HQ_IP}:1813", "acct",
            hq.secret(), input=survey, timeout=30,
        )  # fmt: skip
        assert "Received Accounting-Response" in out.stdout, out.stdout + out.stderr
    result = hq_lab.exec(
        hq_lab.spec.hq_ns, hotspotctl, "hq", "report", "--db", hq.conninfo, "--month", "2025-03",
        "--by", "district", "--survey", "--json", timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == [
        {"period": "2025-03", "group": "Kota Lab", "question": "purpose", "answer": answer, "count": n}
        for answer, n in sorted(counts.items())
    ]


def test_a_voucher_login_is_a_voucher_used_at_hq(hq_lab, gw):
    """A phone logs in at the library with a local voucher: HQ counts it as a voucher of its plan."""
    import re
    import time
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from gateway.lab.probe import wait_for
    from gateway.model.sessions import session_for_mac
    from gateway.model.vouchers import issue_batch

    hq = hq_lab.hq
    config = hq_lab.config()
    [voucher] = issue_batch(gw, config.plans["harian"], 1, now=time.time(), issued_by="test_hq")
    ns = hq_lab.spec.client(3)
    portal = "http://10.42.0.1:8080"
    page = hq_lab.exec(ns, "curl", "-s", "-m", "15", f"{portal}/", timeout=25).stdout
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    hq_lab.exec(
        ns,
        "curl",
        "-s",
        "-m",
        "15",
        "-d",
        f"code={voucher.code}&token={token}",
        f"{portal}/login",
        timeout=25,
    )
    session = session_for_mac(gw, hq_lab.client_mac(3))
    assert session is not None and session.kind == "voucher", session

    def at_hq() -> str:
        return hq.sql(f"SELECT username, class FROM radacct WHERE acctsessionid = '{session.sid}'").strip()

    wait_for(at_hq, 20, "the voucher session's Start at HQ")
    username, klass = at_hq().split("|")
    assert username == f"voucher:{voucher.id}"  # the public voucher id, never the code
    assert bytes.fromhex(klass.removeprefix("0x")) == b"voucher:harian", klass
    day = datetime.fromtimestamp(session.started_at, ZoneInfo(config.library.timezone)).date().isoformat()
    hotspotctl = str(Path(sys.executable).parent / "hotspotctl")
    result = hq_lab.exec(
        hq_lab.spec.hq_ns, hotspotctl, "hq", "report", "--db", hq.conninfo, "--day", day, "--vouchers",
        "--timezone", config.library.timezone, "--json", timeout=60,
    )  # fmt: skip
    rows = {(row["group"], row["plan"]): row for row in json.loads(result.stdout)["rows"]}
    assert rows[("lab", "harian")]["vouchers"] >= 1, rows
    result = hq_lab.exec(
        hq_lab.spec.hq_ns, hotspotctl, "hq", "report", "--db", hq.conninfo, "--day", day,
        "--timezone", config.library.timezone, "--json", timeout=60,
    )  # fmt: skip
    [row] = [row for row in json.loads(result.stdout)["rows"] if row["group"] == "lab"]
    assert row["voucher_sessions"] >= 1


def _seed_april(lab, hq) -> None:
    """April 2025 at HQ: two sessions on "harian" vouchers, one central account, survey answers."""
    base = 1744243200  # 2025-04-10 00:00 UTC (07:00 in Jakarta)
    sessions = (
        ("april-0", "voucher:va", "voucher:harian", "Local", 3_000_000_000),
        ("april-1", "voucher:vb", "voucher:harian", "Local", 1_500_000),
        ("april-2", "ANGGOTA-APR", "", "RADIUS", 2_000_000),
    )
    packets = []
    for i, (sid, user, klass, authentic, octets) in enumerate(sessions):
        for status in ("Start", "Stop"):
            lines = [
                f"Acct-Status-Type = {status}", f'Acct-Session-Id = "{sid}"', f'User-Name = "{user}"',
                f'Calling-Station-Id = "dev-{i}"', 'NAS-Identifier = "lab"', f"Acct-Authentic = {authentic}",
                f"Event-Timestamp = {base + i * 3600 + (3600 if status == 'Stop' else 0)}",
            ]  # fmt: skip
            if klass:
                lines.append(f'Class = "{klass}"')
            if status == "Stop":
                lines += [
                    "Acct-Session-Time = 3600",
                    f"Acct-Output-Octets = {octets}",
                    "Acct-Input-Octets = 0",
                ]
            packets.append("\n".join(lines) + "\n")
    for answer, n in (("study", 5), ("work", 3)):
        packets.append(
            'Acct-Status-Type = Interim-Update\nNAS-Identifier = "lab"\n'
            f'Acct-Session-Id = "survey-2025-04-10-{answer}"\nPerpuSeru-Survey-Day = "2025-04-10"\n'
            f'PerpuSeru-Survey-Question = "purpose"\nPerpuSeru-Survey-Answer = "{answer}"\n'
            f"PerpuSeru-Survey-Count = {n}\n"
        )
    out = lab.exec(
        lab.spec.gw, "radclient", "-d", str(hq.raddb), "-r", "2", "-t", "2", f"{HQ_IP}:1813", "acct",
        hq.secret(), input="\n".join(packets), timeout=30,
    )  # fmt: skip
    assert out.stdout.count("Received Accounting-Response") == len(packets), out.stdout + out.stderr


def test_hq_page_in_a_browser(hq_lab, artifacts):
    """The HQ page under gunicorn at HQ (its namespace's loopback), real PostgreSQL, headless Chromium:
    sign in, the month by library and by province in Indonesian and English at phone, tablet and
    desk widths, axe-core finds nothing, nothing scrolls sideways, and the CSV is the CLI's."""
    import signal
    import subprocess

    from gateway.lab.probe import wait_for

    hq = hq_lab.hq
    hq.add_library("lab", "Perpustakaan Lab", district="Kota Lab", province="Jawa Lab")
    _seed_april(hq_lab, hq)
    hotspotctl = str(Path(sys.executable).parent / "hotspotctl")
    staff = hq.dir / "web" / "staff"
    added = hq_lab.exec(
        hq_lab.spec.hq_ns, hotspotctl, "hq", "account", "add", "rina", "--staff-file", str(staff),
        "--password-stdin", input="rahasia-pusat-1\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    log = (hq.dir / "web" / "gunicorn.log").open("w")
    web = subprocess.Popen(
        ["ip", "netns", "exec", hq_lab.spec.hq_ns, hotspotctl, "hq", "web", "--db", hq.conninfo,
         "--bind", "127.0.0.1:8090", "--staff-file", str(staff),
         "--secret-file", str(hq.dir / "web" / "secret"), "--insecure-cookies"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def listening() -> bool:
            out = hq_lab.exec(hq_lab.spec.hq_ns, "ss", "-Hltn", "sport = :8090").stdout
            return "127.0.0.1:8090" in out

        wait_for(listening, 30, "the HQ page listening")
        pages = [
            ["/?month=2025-04&lang=id", 360], ["/?month=2025-04&by=province&lang=id", 800],
            ["/?month=2025-04&per=day&lang=en", 1280], ["/?day=2025-04-10&lang=en", 360],
            ["/?month=2025-13", 360],
        ]  # fmt: skip
        plan = {
            "base": "http://127.0.0.1:8090", "name": "rina", "password": "rahasia-pusat-1", "pages": pages,
            "csv": "/report.csv?month=2025-04&by=province&kind=reach", "shots": str(artifacts),
            "user_data_dir": str(hq.dir / "web" / "chromium"),
        }  # fmt: skip
        out = hq_lab.exec(
            hq_lab.spec.hq_ns, sys.executable, str(Path(__file__).parent / "hq_browser.py"),
            input=json.dumps(plan), timeout=240,
        )  # fmt: skip
        result = json.loads(out.stdout or "{}")
        assert result.get("ok"), (result, out.stderr[-2000:])
        assert result["login_axe"] == [] and "Masuk" in result["login_title"]
        by_path = {page["path"]: page for page in result["pages"]}
        for page in result["pages"]:
            assert page["axe"] == [], (page["path"], page["width"], page["axe"])
            assert page["scroll_width"] <= page["width"], (page["path"], page["width"], page["scroll_width"])
        month = by_path["/?month=2025-04&lang=id"]["text"]
        # Indonesian conventions: the month's name, a decimal comma, sizes in decimal units
        assert "Jangkauan April 2025" in month and "3,0" in month and "3 GB" in month, month
        assert "harian" in month and "Pertanyaan: purpose" in month and "study" in month
        assert "Perpustakaan Lab (lab)" in month  # the library's name from HQ's library table
        assert "Jawa Lab" in by_path["/?month=2025-04&by=province&lang=id"]["text"]
        english = by_path["/?month=2025-04&per=day&lang=en"]["text"]
        assert "Reach in April 2025" in english and "Apr 10, 2025" in english
        assert "Reach on Apr 10, 2025" in by_path["/?day=2025-04-10&lang=en"]["text"]
        assert "is not a month like" in by_path["/?month=2025-13"]["text"]
        cli = hq_lab.exec(
            hq_lab.spec.hq_ns, hotspotctl, "hq", "report", "--db", hq.conninfo, "--month", "2025-04",
            "--by", "province", "--csv", timeout=60,
        )  # fmt: skip
        assert result["csv"].replace("\r\n", "\n") == cli.stdout, (result["csv"], cli.stdout)
        assert cli.stdout.splitlines()[1] == "2025-04,Jawa Lab,3,3,3.0,3003500000,1,2"
    finally:
        web.send_signal(signal.SIGTERM)
        try:
            web.wait(20)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait(5)
        log.close()
