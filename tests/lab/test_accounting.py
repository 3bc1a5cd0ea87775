"""Accounting to the real FreeRADIUS + PostgreSQL at the lab's HQ, through a day-long outage and a
router power cut: ``radacct`` must match the router's session log exactly."""

from __future__ import annotations

import signal
import time

import pytest

from gateway.daemon.sessionlog import SessionLog
from gateway.lab.probe import admit, wait_for
from gateway.model import keys, survey
from gateway.model.sessions import end_session, new_session, start_session
from gateway.radius.accounting import OUTBOX

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


def test_survey_counts_reach_hq_through_an_outage_and_a_power_cut(hq_lab, gw):
    r, hq = gw, hq_lab.hq
    tz = hq_lab.config().library.timezone
    now = time.time()
    today = survey.day_of(now, tz)
    for i, purpose in enumerate(("study", "study", "work")):
        survey.record(r, purpose, sid=f"survey-test-{now}-{i}", now=now, timezone=tz, ttl=600)
    hq_lab.stop("freeradius")
    try:
        hq_lab.restart("gateway", signal.SIGKILL)  # the restarted gateway queues the counts at once
        wait_for(
            lambda: any(f.get("status") == "Survey" for _, f in r.xrange(OUTBOX)), 20, "survey counts queued"
        )
        hq_lab.stop("gateway", signal.SIGKILL)
        survey.record(r, "study", sid=f"survey-test-{now}-x", now=now, timezone=tz, ttl=600)
        hq_lab.start("gateway")
    finally:
        hq_lab.start("freeradius")
    wanted = {k: v for k, v in survey.counts(r, today, today)[today].items() if v}

    def at_hq() -> dict[str, int]:
        out = hq.sql(
            f"SELECT answer, n FROM survey_count WHERE library = 'lab' AND day = '{today.isoformat()}'"
        )
        return {a: int(n) for a, n in (line.split("|") for line in out.splitlines() if line)}

    wait_for(lambda: r.xlen(OUTBOX) == 0 and at_hq() == wanted, 60, f"HQ's counts to be {wanted}")
    assert wanted["study"] >= 3 and wanted["work"] >= 1
    # and the survey never made a session at HQ
    assert hq.sql("SELECT count(*) FROM radacct WHERE acctsessionid LIKE 'survey-%'").strip() == "0"


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
