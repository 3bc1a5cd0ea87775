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


def test_a_reload_replaces_the_listener_only_when_its_settings_or_secret_changed(r, config, tmp_path):
    """The daemon asks outdated() on a reload: a new port, clients, NAS-Identifier or secret file
    content means a new listener; the same settings keep the running one."""
    from dataclasses import replace

    server = DynAuthServer(config, r)
    assert server.outdated(config)  # not listening yet
    server.start()
    try:
        assert not server.outdated(config)
        assert server.outdated(replace(config, radius=replace(config.radius, nas_identifier="lab-2")))
        assert server.outdated(replace(config, radius=replace(config.radius, dynauth_listen="127.0.0.1:1")))
        (tmp_path / "radius.secret").write_text("a-new-secret\n")
        assert server.outdated(config)
    finally:
        server.stop()


def test_accounting_hook_takes_a_reloaded_config_without_losing_the_outbox(r, config):
    """configure() swaps the config the sender uses next round; the outbox stays where it is."""
    from dataclasses import replace

    from gateway.radius.accounting import OUTBOX, AccountingHook

    hook = AccountingHook(config, r)
    r.xadd(OUTBOX, {"status": "Start", "sid": "s1", "time": "1"})
    renamed = replace(config, radius=replace(config.radius, nas_identifier="lab-2", timeout=0.2))
    hook.configure(renamed)
    assert hook.config.radius.nas_identifier == "lab-2" and hook.rebuild.is_set() and hook.kick.is_set()
    assert r.xlen(OUTBOX) == 1
    with pytest.raises(ValueError):
        hook.configure(replace(config, radius=None))
