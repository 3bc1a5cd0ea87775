"""The RFC 5176 handler on a real Redis, without sockets: what it answers, and what it drops."""

from __future__ import annotations

import time

import pytest
from pyrad import packet

from gateway import config as config_mod
from gateway.model.sessions import get_session, new_session, start_session
from gateway.radius.client import load_dictionary
from gateway.radius.dynauth import DynAuthServer

SECRET = b"dynauth-test-secret"
HQ = "198.51.100.10"


@pytest.fixture
def config(tmp_path):
    (tmp_path / "radius.secret").write_text(SECRET.decode() + "\n")
    (tmp_path / "secret_key").write_text("k" * 64 + "\n")
    text = f"""
[library]
id = "lab"
name = "Lab"
[network]
lan_interface = "lan0"
wan_interface = "wan0"
lan_address = "10.42.0.1/24"
[uplink]
down = "10mbit"
up = "10mbit"
[portal]
secret_key_file = "{tmp_path / "secret_key"}"
[radius]
servers = ["{HQ}"]
secret_file = "{tmp_path / "radius.secret"}"
dynauth_listen = "127.0.0.1:0"
"""
    return config_mod.loads(text, tmp_path / "hotspot.toml")


def _request(code: int, secret: bytes = SECRET, ma: bool = True, **attrs) -> bytes:
    pkt = packet.CoAPacket(code=code, secret=secret, dict=load_dictionary())
    for name, value in attrs.items():
        pkt[name.replace("_", "-")] = value
    if ma:
        pkt.add_message_authenticator()
    return pkt.RequestPacket()


def _online(r) -> str:
    now = time.time()
    session = new_session(mac="02:00:00:00:01:01", ip="10.42.0.100", kind="admin", plan="p", now=now,
                          expires_at=now + 3600, down=4_000_000, up=2_000_000)  # fmt: skip
    start_session(r, session, now)
    return session.sid


def _code(answer: bytes | None) -> int | None:
    return answer[0] if answer else None


def test_disconnect_and_coa(r, config):
    woke = []
    server = DynAuthServer(config, r, secret=SECRET, on_change=lambda: woke.append(1))
    server.key = b"x"
    sid = _online(r)
    coa = _request(packet.CoARequest, Acct_Session_Id=sid, WISPr_Bandwidth_Max_Down=1_000_000)
    assert _code(server.handle(coa, HQ)) == packet.CoAACK
    assert get_session(r, sid).down == 1_000_000
    absurd = _request(packet.CoARequest, Acct_Session_Id=sid, WISPr_Bandwidth_Max_Up=4_000_000_000)
    assert _code(server.handle(absurd, HQ)) == packet.CoANAK
    unknown = _request(packet.DisconnectRequest, Acct_Session_Id="nope")
    assert _code(server.handle(unknown, HQ)) == packet.DisconnectNAK
    other_nas = _request(packet.DisconnectRequest, Acct_Session_Id=sid, NAS_Identifier="another-library")
    assert _code(server.handle(other_nas, HQ)) == packet.DisconnectNAK
    assert (
        _code(server.handle(_request(packet.DisconnectRequest, Acct_Session_Id=sid), HQ))
        == packet.DisconnectACK
    )
    ended = get_session(r, sid)
    assert (ended.state, ended.end_reason) == ("ended", "admin")
    assert len(woke) == 2


@pytest.mark.parametrize(
    "case", ["other_source", "wrong_secret", "no_ma", "garbage", "oversize", "not_a_request", "stale"]
)
def test_bad_requests_are_dropped_and_change_nothing(r, config, case):
    server = DynAuthServer(config, r, secret=SECRET)
    sid = _online(r)
    source, data = HQ, _request(packet.DisconnectRequest, Acct_Session_Id=sid)
    if case == "other_source":
        source = "192.0.2.1"
    elif case == "wrong_secret":
        data = _request(packet.DisconnectRequest, secret=b"wrong", Acct_Session_Id=sid)
    elif case == "no_ma":
        data = _request(packet.DisconnectRequest, ma=False, Acct_Session_Id=sid)
    elif case == "garbage":
        data = b"\x28\x01\xff\xff" + b"\x00" * 40
    elif case == "oversize":
        data = data + b"\x00" * 5000
    elif case == "not_a_request":
        data = bytes([packet.CoAACK]) + data[1:]
    elif case == "stale":
        data = _request(
            packet.DisconnectRequest, Acct_Session_Id=sid, Event_Timestamp=int(time.time()) - 3600
        )
    assert server.handle(data, source) is None
    assert get_session(r, sid).state == "online"


def test_a_missing_secret_file_does_not_stop_the_daemon(r, config, tmp_path):
    (tmp_path / "radius.secret").unlink()
    server = DynAuthServer(config, r)  # what the daemon does at start
    server.start()  # logs dynauth_not_listening, does not raise
    assert server.sock is None
    assert server.handle(b"\x28" * 40, HQ) is None
    server.stop()
