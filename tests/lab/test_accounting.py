"""Accounting to the real FreeRADIUS + PostgreSQL at the lab's HQ, through a day-long outage and a
router power cut: ``radacct`` must match the router's session log exactly."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from gateway.daemon.sessionlog import SessionLog
from gateway.lab.probe import admit, wait_for
from gateway.model import keys, survey
from gateway.model.sessions import end_session, new_session, start_session
from gateway.radius.accounting import OUTBOX
from tests.lab.test_desk_lab import desk_pc  # noqa: F401  (the librarian's PC, signed in at the desk)

pytestmark = pytest.mark.lab

REASONS = ("logout", "expired", "idle", "quota", "kicked", "replaced")
CAUSES = {
    "logout": "User-Request", "expired": "Session-Timeout", "idle": "Idle-Timeout",
    "quota": "Session-Timeout", "kicked": "Admin-Reset", "replaced": "NAS-Request",
}  # fmt: skip


def _rows(hq, sids: list[str]) -> dict[str, tuple]:
    wanted = ",".join(f"'{sid}'" for sid in sids)
    out = hq.sql(
        "SELECT acctsessionid, acctinputoctets, acctoutputoctets, acctsessiontime, acctterminatecause, "
        "extract(epoch FROM acctstarttime)::bigint, extract(epoch FROM acctstoptime)::bigint, realm "
        f"FROM radacct WHERE acctsessionid IN ({wanted}) ORDER BY acctsessionid"
    )
    rows = [line.split("|") for line in out.splitlines() if line]
    assert len(rows) == len({row[0] for row in rows}), "a session doubled in radacct"
    return {row[0]: tuple(row[1:]) for row in rows}


def test_a_live_session_is_accounted_start_interim_stop(hq_lab, gw):
    session, ack = admit(gw, hq_lab, 1)
    assert ack and ack["ok"]
    hq = hq_lab.hq
    wait_for(lambda: _rows(hq, [session.sid]), 15, "the Start at HQ")
    interval = hq_lab.config().radius.interim_interval
    gw.hset(keys.session(session.sid), mapping={"bytes_up": 1234, "bytes_down": 56789})
    # an Interim-Update carries the counters while the session runs
    wait_for(lambda: _rows(hq, [session.sid])[session.sid][1] == "56789", interval + 15, "an Interim-Update")
    end_session(gw, session.sid, "logout", time.time())
    wait_for(lambda: _rows(hq, [session.sid])[session.sid][3] == "User-Request", 15, "the Stop")
    row = _rows(hq, [session.sid])[session.sid]
    assert row[6] == "lab"  # the library, as HQ knows its client


def test_hq_down_for_a_day_and_a_power_cut_lose_and_double_nothing(hq_lab, gw):
    r, hq = gw, hq_lab.hq
    wait_for(lambda: r.xlen(OUTBOX) == 0, 30, "the outbox to be empty before the outage")
    hq_lab.stop("freeradius")
    try:
        hq_lab.stop("gateway", signal.SIGKILL)
        # a simulated day while HQ is away: one session an hour, each with its own end reason
        day = time.time() - 86400
        sids = []
        for i in range(24):
            t0 = day + i * 3600
            session = new_session(
                mac=f"02:00:00:00:99:{i:02x}", ip=f"10.42.0.{120 + i}", kind="admin", plan="harian",
                now=t0, expires_at=t0 + 3600, down=4_000_000, up=2_000_000,
            )  # fmt: skip
            start_session(r, session, t0)
            down = 5 * 2**32 + 12345 if i == 7 else 1_000_000 * i + 17  # one past 4 GiB: Gigawords
            r.hset(keys.session(session.sid), mapping={"bytes_up": 1000 * i + 3, "bytes_down": down})
            end_session(r, session.sid, REASONS[i % len(REASONS)], t0 + 600 + i)
            sids.append(session.sid)
        hq_lab.start("gateway")  # spools the day; HQ does not answer, so everything waits
        wait_for(lambda: r.xlen(OUTBOX) >= 48, 30, "the day's Start and Stop records in the outbox")
        hq_lab.stop("gateway", signal.SIGKILL)  # the power cut, with every record still waiting
        assert r.xlen(OUTBOX) >= 48
        assert not _rows(hq, sids)
        hq_lab.start("gateway")
    finally:
        hq_lab.start("freeradius")
    wait_for(lambda: r.xlen(OUTBOX) == 0, 90, "the outbox to drain once HQ is back")
    rows = _rows(hq, sids)
    session_log = SessionLog.from_config(hq_lab.config())
    ends = wait_for(
        lambda: (
            found
            if len(
                found := {
                    rec["sid"]: rec
                    for rec in session_log.records()
                    if rec["sid"] in sids and rec["event"] == "end"
                }
            )
            == 24
            else None
        ),
        20,
        "the session log",
    )
    assert set(rows) == set(ends)  # every session, once
    for sid, rec in ends.items():
        up, down, seconds, cause, start, stop, realm = rows[sid]
        assert (int(up), int(down)) == (rec["bytes_up"], rec["bytes_down"]), sid
        assert int(seconds) == round(rec["duration"])
        assert cause == CAUSES[rec["reason"]]
        assert abs(int(stop) - rec["ts"]) <= 1  # booked when it happened (Event-Timestamp), not when sent
        assert abs(int(start) - (rec["ts"] - rec["duration"])) <= 1
        assert realm == "lab"
    assert sum(int(row[1]) for row in rows.values()) == sum(rec["bytes_down"] for rec in ends.values())


def test_restarts_mid_replay_lose_and_double_nothing(hq_lab, gw):
    """PostgreSQL, FreeRADIUS and the router restart while a backlog replays: radacct ends up exact."""
    r, hq = gw, hq_lab.hq
    wait_for(lambda: r.xlen(OUTBOX) == 0, 30, "the outbox to be empty first")
    hq_lab.stop("freeradius")
    try:
        hq_lab.stop("gateway", signal.SIGKILL)
        start = time.time() - 3 * 3600
        sids = []
        for i in range(400):
            t0 = start + i * 20
            session = new_session(
                mac=f"02:00:00:01:{i // 256:02x}:{i % 256:02x}", ip=f"10.42.1.{i % 250 + 1}", kind="admin",
                plan="harian", now=t0, expires_at=t0 + 3600, down=4_000_000, up=2_000_000,
            )  # fmt: skip
            start_session(r, session, t0)
            r.hset(keys.session(session.sid), mapping={"bytes_up": 7 * i, "bytes_down": 1_000_003 * i})
            end_session(r, session.sid, "logout", t0 + 15)
            sids.append(session.sid)
        hq_lab.start("gateway")
        wait_for(lambda: r.xlen(OUTBOX) >= 800, 30, "the backlog in the outbox")
    finally:
        hq_lab.start("freeradius")
    wait_for(lambda: r.xlen(OUTBOX) < 700, 60, "the replay to begin")
    hq_lab.stop("postgres", signal.SIGINT)  # fast shutdown: FreeRADIUS loses its database
    hq_lab.start("postgres")
    wait_for(lambda: r.xlen(OUTBOX) < 500, 90, "the replay to go on")
    hq_lab.restart("freeradius")
    wait_for(lambda: r.xlen(OUTBOX) < 300, 90, "the replay to go on")
    hq_lab.stop("gateway", signal.SIGKILL)  # and the router loses power mid-replay
    hq_lab.start("gateway")
    wait_for(lambda: r.xlen(OUTBOX) == 0, 120, "the outbox to drain")
    rows = _rows(hq, sids)
    assert len(rows) == 400
    for i, sid in enumerate(sids):
        up, down, seconds, cause, *_ = rows[sid]
        assert (int(up), int(down), int(seconds), cause) == (7 * i, 1_000_003 * i, 15, "User-Request"), sid


def _survey_at_hq(hq, day: str) -> dict[tuple[str, str], int]:
    out = hq.sql(f"SELECT question, answer, n FROM survey_count WHERE library = 'lab' AND day = '{day}'")
    return {(q, a): int(n) for q, a, n in (line.split("|") for line in out.splitlines() if line)}


def _survey_here(r, day) -> dict[tuple[str, str], int]:
    found = survey.counts(r, day, day)[day]
    return {(q, a): n for q, answers in found.items() for a, n in answers.items() if n}


def test_survey_counts_reach_hq_through_an_outage_and_a_power_cut(hq_lab, gw):
    r, hq = gw, hq_lab.hq
    tz = hq_lab.config().library.timezone
    now = time.time()
    today = survey.day_of(now, tz)
    answers = (
        {"purpose": "study", "gender": "female"},
        {"purpose": "study", "age": "16_30"},
        {"purpose": "work"},
    )
    for i, given in enumerate(answers):
        survey.record(r, given, sid=f"survey-test-{now}-{i}", now=now, timezone=tz, ttl=600)
    hq_lab.stop("freeradius")
    try:
        hq_lab.restart("gateway", signal.SIGKILL)  # the restarted gateway queues the counts at once
        wait_for(
            lambda: any(f.get("status") == "Survey" for _, f in r.xrange(OUTBOX)), 20, "survey counts queued"
        )
        hq_lab.stop("gateway", signal.SIGKILL)
        survey.record(r, {"purpose": "study", "business": "yes"}, sid=f"survey-test-{now}-x", now=now,
                      timezone=tz, ttl=600)  # fmt: skip
        hq_lab.start("gateway")
    finally:
        hq_lab.start("freeradius")
    wanted = _survey_here(r, today)
    wait_for(
        lambda: r.xlen(OUTBOX) == 0 and _survey_at_hq(hq, today.isoformat()) == wanted, 60,
        f"HQ's counts to be {wanted}",
    )  # fmt: skip
    assert wanted[("purpose", "study")] >= 3 and wanted[("purpose", "work")] >= 1
    assert (
        wanted[("gender", "female")] >= 1
        and wanted[("age", "16_30")] >= 1
        and wanted[("business", "yes")] >= 1
    )
    # and the survey never made a session at HQ
    assert hq.sql("SELECT count(*) FROM radacct WHERE acctsessionid LIKE 'survey-%'").strip() == "0"


def test_a_phone_answers_the_survey_and_the_desk_and_hq_count_it(hq_lab, gw, desk_pc):  # noqa: F811
    """Real HTTP from a lab phone (curl through the real portal): a voucher login with one
    answer on the login form, then one POST per question left, as the online page's buttons
    send them. The router, the desk's report (over the LAN) and HQ's ``survey_count`` (through
    the real FreeRADIUS and PostgreSQL) then hold the same counts."""
    from gateway.model.vouchers import issue_batch
    from tests.lab.test_desk_lab import LanBrowser

    config = hq_lab.config()
    today = survey.day_of(time.time(), config.library.timezone)
    before = _survey_here(gw, today)
    [voucher] = issue_batch(gw, config.plans["harian"], 1, now=time.time(), issued_by="lab-survey")
    phone = LanBrowser(hq_lab, hq_lab.spec.client(2))
    status, _, splash = phone.request("/?lang=id")
    assert status == 200 and 'name="q_gender"' in splash, "the questions ride along with the login"
    token = re.search(r'name="token" value="([^"]+)"', splash).group(1)
    status, location, _ = phone.request(
        "/login?lang=id", {"code": voucher.code, "token": token, "q_gender": "female"}
    )
    assert status == 303, (status, location)
    status, _, online = phone.request("/online?lang=id")
    assert status == 200 and "Anda sudah terhubung" in online and 'name="q_gender"' not in online
    assert online.count('action="/survey?lang=id"') == 3, "the three questions left, one form each"
    for field, answer in (("q_purpose", "work"), ("q_age", "16_30"), ("q_business", "yes")):
        token = re.search(r'name="token" value="([^"]+)"', online).group(1)
        status, location, _ = phone.request("/survey?lang=id", {field: answer, "token": token})
        assert status == 303, (field, status)
        if field != "q_business":
            assert "/online?thanks=1" in location, location
            status, _, online = phone.request(location)
            assert "Terima kasih" in online
    assert "/status" in location, "after the last question, on to the status page"
    here = _survey_here(gw, today)
    given = {("gender", "female"), ("purpose", "work"), ("age", "16_30"), ("business", "yes")}
    assert {k: here[k] - before.get(k, 0) for k in here if here[k] != before.get(k, 0)} == dict.fromkeys(
        given, 1
    )
    # the desk (a librarian's PC on the LAN, signed in): today's CSV, every question's column
    status, _, csv_text = desk_pc.request(f"/desk/reports/day.csv?day={today.isoformat()}")
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert status == 200 and rows[-1]["period"] == today.isoformat()
    for (question, answer), n in here.items():
        assert rows[-1][f"survey:{question}:{answer}"] == str(n), (question, answer)
    status, _, page = desk_pc.request(f"/desk/reports/day?day={today.isoformat()}")
    assert status == 200 and "Berapa usia Anda?" in page and "Perempuan" in page
    # HQ: the router's counts, as the accounting sends them (a minute at most between looks)
    wait_for(
        lambda: r_and_hq_agree(gw, hq_lab.hq, today), 90, "HQ's survey_count to match the router's counts"
    )
    # and HQ's program report groups them by question and answer
    hotspotctl = str(Path(sys.executable).parent / "hotspotctl")
    result = hq_lab.exec(
        hq_lab.spec.hq_ns, hotspotctl, "hq", "report", "--db", hq_lab.hq.conninfo, "--day", today.isoformat(),
        "--per", "day", "--survey", "--json", timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert {(row["question"], row["answer"]): row["count"] for row in rows if row["group"] == "lab"} == here
    assert all(row["period"] == today.isoformat() for row in rows)


def r_and_hq_agree(r, hq, day) -> bool:
    """Whether HQ's survey counts of ``day`` equal the router's (every question, every answer)."""
    return r.xlen(OUTBOX) == 0 and _survey_at_hq(hq, day.isoformat()) == _survey_here(r, day)


def _with_radius(text: str, **values: str) -> str:
    """Return the config ``text`` with these ``[radius]`` keys set (TOML values as written)."""
    head, _, section = text.partition("\n[radius]\n")
    lines = [line for line in section.splitlines() if line.split("=", 1)[0].strip() not in values]
    return head + "\n[radius]\n" + "\n".join([*(f"{k} = {v}" for k, v in values.items()), *lines]) + "\n"


def _central_login(lab, ns: str, code: str) -> int:
    import re

    portal = "http://10.42.0.1:8080"
    page = lab.exec(ns, "curl", "-s", "-m", "15", f"{portal}/", timeout=25).stdout
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    out = lab.exec(
        ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "15",
        "-d", f"code={code}&token={token}", f"{portal}/login", timeout=25,
    )  # fmt: skip
    return int(out.stdout or 0)


def test_radius_changes_apply_on_reload_without_logging_anyone_out(hq_lab, gw):
    """A reload (no restart) moves login, accounting and Disconnect/CoA to new [radius] settings
    (servers, secret, timeouts, NAS-Identifier, listener), nobody is logged out, and what was
    queued meanwhile reaches HQ exactly once when the settings point at HQ again."""
    import os
    import re

    from gateway.lab.topology import HQ_IP, WAN_ROUTER
    from gateway.model import commands
    from gateway.model.sessions import get_session

    hq = hq_lab.hq
    hq.add_user("PUSAT-R1", "PUSAT-R1")
    path = hq_lab.config_path
    original = path.read_text()
    gateway_pid = hq_lab.pid("gateway")
    s1, ack = admit(gw, hq_lab, 1)
    assert ack and ack["ok"]
    wait_for(lambda: _rows(hq, [s1.sid]), 15, "the Start at HQ")
    new_secret = hq_lab.dir / "radius-reload.secret"
    new_secret.write_text("a-new-secret-hq-does-not-know\n")
    new_secret.chmod(0o644)  # lab only: the portal runs as nobody
    moved = _with_radius(
        original, servers='["198.51.100.99"]', secret_file=f'"{new_secret}"', timeout="0.3", retries="1",
        nas_identifier='"lab-renamed"', dynauth_listen=f'"{WAN_ROUTER}:3800"', dynauth_clients=f'["{HQ_IP}"]',
    )  # fmt: skip

    def reload() -> dict:
        reply = commands.request(gw, "reload", 10)
        os.kill(hq_lab.pid("portal"), signal.SIGHUP)  # gunicorn: new workers read the file
        time.sleep(3)
        return reply

    def radclient(port: int, secret: str, body: str):
        return hq_lab.exec(
            hq_lab.spec.hq_ns, "radclient", "-x", "-r", "1", "-t", "2", f"{WAN_ROUTER}:{port}", "disconnect",
            secret, input=body + "Message-Authenticator = 0x00\n", timeout=15,
        )  # fmt: skip

    s2 = None
    try:
        path.write_text(moved)
        reply = reload()
        assert reply["ok"] and "radius" in reply["changed"], reply
        # nobody logged out, the same gateway process
        assert get_session(gw, s1.sid).state == "online" and hq_lab.pid("gateway") == gateway_pid
        end_session(gw, s1.sid, "logout", time.time())
        s2, ack = admit(gw, hq_lab, 2)
        assert ack and ack["ok"]
        # accounting now goes to the new server (nobody there): S1's Stop and S2's Start wait
        wait_for(lambda: gw.xlen(OUTBOX) >= 2, 15, "records queued for the new server")
        assert _rows(hq, [s1.sid])[s1.sid][3] == ""  # no Stop at HQ
        # Disconnect/CoA: the new port, secret and NAS-Identifier
        assert "Received" not in radclient(3799, hq.secret(), f'Acct-Session-Id = "{s2.sid}"\n').stdout
        nak = radclient(
            3800, "a-new-secret-hq-does-not-know", f'NAS-Identifier = "lab"\nAcct-Session-Id = "{s2.sid}"\n'
        )
        assert "Disconnect-NAK" in nak.stdout, nak.stdout + nak.stderr
        ack_out = radclient(
            3800,
            "a-new-secret-hq-does-not-know",
            f'NAS-Identifier = "lab-renamed"\nAcct-Session-Id = "{s2.sid}"\n',
        )
        assert "Disconnect-ACK" in ack_out.stdout, ack_out.stdout + ack_out.stderr
        wait_for(lambda: get_session(gw, s2.sid).state == "ended", 10, "S2 ended by HQ")
        # a central login asks the new server and gives up within the new bound (0.3 s x 1 x 1)
        started = time.monotonic()
        assert _central_login(hq_lab, hq_lab.spec.client(4), "PUSAT-R1") == 503
        assert time.monotonic() - started < 0.3 + 3
    finally:
        path.write_text(original)
        reply = reload()
    assert reply["ok"], reply
    # HQ is the server again: the queue drains, each record once
    wait_for(lambda: gw.xlen(OUTBOX) == 0, 40, "the outbox drained to HQ")
    rows = _rows(hq, [s1.sid, s2.sid])
    assert rows[s1.sid][3] == "User-Request" and rows[s2.sid][3] == "Admin-Reset", rows
    assert re.fullmatch(r"\d+", rows[s2.sid][4]), rows  # S2's start time booked at HQ
    assert _central_login(hq_lab, hq_lab.spec.client(4), "PUSAT-R1") == 303  # HQ again for logins
    assert hq_lab.pid("gateway") == gateway_pid
