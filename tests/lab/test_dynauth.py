"""RFC 5176 from the lab's HQ with FreeRADIUS's own radclient: Disconnect and CoA, and the faults
(wrong secret, another sender, no Message-Authenticator, garbage, oversize, absurd rates)."""

from __future__ import annotations

import sys
import time

import pytest

from gateway.daemon.sessionlog import SessionLog
from gateway.lab.probe import admit, online_from, wait_for
from gateway.lab.topology import WAN_ROUTER
from gateway.model.sessions import get_session
from gateway.shaping.model import client_class

pytestmark = pytest.mark.lab

TARGET = f"{WAN_ROUTER}:3799"

_RAW_SEND = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
s.sendto(bytes.fromhex(sys.argv[1]) * int(sys.argv[2]), (sys.argv[3], 3799))
try:
    s.recv(8192)
    print("answered")
except TimeoutError:
    print("silence")
"""


def _radclient(lab, ns: str, kind: str, secret: str, body: str):
    return lab.exec(ns, "radclient", "-x", "-r", "1", "-t", "2", TARGET, kind, secret, input=body, timeout=15)


def _ma(body: str) -> str:
    return body + "Message-Authenticator = 0x00\n"  # radclient fills in the real value


def test_coa_throttles_live_and_disconnect_ends_the_session_as_admin(hq_lab, gw):
    session, ack = admit(gw, hq_lab, 1)
    assert ack and ack["ok"]
    hq, secret = hq_lab.spec.hq_ns, hq_lab.hq.secret()
    coa = _ma(f'Acct-Session-Id = "{session.sid}"\nWISPr-Bandwidth-Max-Down = 1000000\n')
    out = _radclient(hq_lab, hq, "coa", secret, coa)
    assert "Received CoA-ACK" in out.stdout, out.stdout + out.stderr
    assert get_session(gw, session.sid).down == 1_000_000
    # applied live: the phone's download class is capped at 1 Mbit/s (frames: x 1514/1448) at once
    classid = f"1:{client_class(get_session(gw, session.sid).slot) & 0xFFFF:x}"

    def capped() -> bool:
        shown = hq_lab.exec(hq_lab.spec.gw, "tc", "class", "show", "dev", "lan0", "classid", classid).stdout
        return "ceil 1045Kbit" in shown

    wait_for(capped, 10, "the live cap in tc")
    assert online_from(hq_lab, 1)
    out = _radclient(hq_lab, hq, "disconnect", secret, _ma(f'Acct-Session-Id = "{session.sid}"\n'))
    assert "Received Disconnect-ACK" in out.stdout, out.stdout + out.stderr
    ended = get_session(gw, session.sid)
    assert (ended.state, ended.end_reason) == ("ended", "admin")
    wait_for(lambda: not online_from(hq_lab, 1), 10, "the phone to be cut off")
    log = SessionLog.from_config(hq_lab.config())
    wait_for(
        lambda: any(r["sid"] == session.sid and r.get("reason") == "admin" for r in log.records()),
        10, "the admin end in the session log",
    )  # fmt: skip


def test_unknown_session_gets_a_nak(hq_lab, gw):
    secret = hq_lab.hq.secret()
    out = _radclient(hq_lab, hq_lab.spec.hq_ns, "disconnect", secret, _ma('Acct-Session-Id = "no-such"\n'))
    assert "Received Disconnect-NAK" in out.stdout and "Session-Context-Not-Found" in out.stdout, out.stdout
    coa = _ma("Framed-IP-Address = 10.42.0.250\nWISPr-Bandwidth-Max-Down = 1000000\n")
    out = _radclient(hq_lab, hq_lab.spec.hq_ns, "coa", secret, coa)
    assert "Received CoA-NAK" in out.stdout, out.stdout


def test_faults_are_dropped_and_change_nothing(hq_lab, gw):
    session, _ = admit(gw, hq_lab, 2)
    secret = hq_lab.hq.secret()
    body = _ma(f'Acct-Session-Id = "{session.sid}"\n')
    hq, up = hq_lab.spec.hq_ns, hq_lab.spec.up
    # the wrong secret, from HQ's address
    assert "Received" not in _radclient(hq_lab, hq, "disconnect", "not-the-secret", body).stdout
    # the right secret, from an address that is not HQ (a spoofed sender on the internet)
    assert "Received" not in _radclient(hq_lab, up, "disconnect", secret, body).stdout
    # no Message-Authenticator
    plain = f'Acct-Session-Id = "{session.sid}"\n'
    assert "Received" not in _radclient(hq_lab, hq, "disconnect", secret, plain).stdout
    # garbage and an oversized datagram
    for chunk, times in (("2801ffff", 5), ("28", 20), ("2801" + "00" * 18, 260)):
        said = hq_lab.exec(hq, sys.executable, "-c", _RAW_SEND, chunk, str(times), WAN_ROUTER).stdout.strip()
        assert said == "silence", (chunk, said)
    # an absurd rate gets a NAK
    absurd = _ma(f'Acct-Session-Id = "{session.sid}"\nWISPr-Bandwidth-Max-Down = 4000000000\n')
    out = _radclient(hq_lab, hq, "coa", secret, absurd)
    assert "Received CoA-NAK" in out.stdout and "Invalid-Request" in out.stdout, out.stdout
    still = get_session(gw, session.sid)
    assert (still.state, still.down) == ("online", session.down)  # nothing changed
    log = (hq_lab.log_dir / "gateway.log").read_text()
    for reason in (
        "bad_authenticator",
        "not_a_configured_client",
        "no_message_authenticator",
        "malformed",
        "bad_size",
    ):
        assert reason in log, reason
    # and the listener still answers a proper request
    time.sleep(0.1)
    out = _radclient(hq_lab, hq, "disconnect", secret, body)
    assert "Received Disconnect-ACK" in out.stdout, out.stdout
