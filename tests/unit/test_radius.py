"""The RADIUS wing without HQ: attribute bounds, accounting attributes, and a fake server on loopback
that answers badly (wrong secret, wrong source, garbage): nothing of it is believed."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from pathlib import Path

import pytest
from pyrad import packet

from gateway.config import Radius, RadiusServer
from gateway.radius.attributes import (
    TERMINATE_CAUSE,
    AbsurdReply,
    acct_attributes,
    device_id,
    grant_from_reply,
    split_octets,
)
from gateway.radius.client import RadiusClient, RadiusUnavailable, load_dictionary

SECRET = b"the-right-secret"


def test_grant_defaults_and_values():
    grant = grant_from_reply({})
    assert (grant.session_timeout, grant.down, grant.up, grant.quota, grant.idle_timeout) == (
        14400, 2_000_000, 1_000_000, 0, 0,
    )  # fmt: skip
    grant = grant_from_reply(
        {
            "Session-Timeout": [1800],
            "Idle-Timeout": [300],
            "WISPr-Bandwidth-Max-Down": [5_000_000],
            "WISPr-Bandwidth-Max-Up": [1_000_000],
            "ChilliSpot-Max-Total-Octets": [705_032_704],
            "ChilliSpot-Max-Total-Gigawords": [1],
            "Reply-Message": ["Halo\x00\x1b[31m <b>"],
        }
    )
    assert (grant.session_timeout, grant.idle_timeout, grant.down, grant.up) == (
        1800,
        300,
        5_000_000,
        1_000_000,
    )
    assert grant.quota == 5_000_000_000
    assert grant.message == "Halo[31m <b>"  # control characters dropped; HTML is escaped by the template


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("Session-Timeout", 4294967295),  # -1 as sent over RADIUS
        ("Session-Timeout", 0),
        ("Session-Timeout", 30 * 86400),
        ("Idle-Timeout", 5),
        ("WISPr-Bandwidth-Max-Down", 4_000_000_000),  # 4 Gbit/s
        ("WISPr-Bandwidth-Max-Up", 1),
        ("ChilliSpot-Max-Total-Octets", 10),
        ("ChilliSpot-Max-Total-Gigawords", 1_000_000),  # a few petabytes
        ("Session-Timeout", "3600"),  # wrong type
    ],
)
def test_absurd_values_are_refused(attribute, value):
    with pytest.raises(AbsurdReply):
        grant_from_reply({attribute: [value]})


def test_every_end_reason_has_a_terminate_cause():
    from gateway.model.sessions import END_REASONS

    assert set(END_REASONS) <= set(TERMINATE_CAUSE)
    assert TERMINATE_CAUSE["admin"] == "Admin-Reset"
    assert TERMINATE_CAUSE["logout"] == "User-Request"


def test_device_id_is_a_keyed_hash_unless_raw_macs_are_asked_for():
    mac = "02:00:00:00:01:01"
    a, b = device_id(mac, mode="hash", key=b"library-a"), device_id(mac, mode="hash", key=b"library-b")
    assert a != b and len(a) == 32 and mac.replace(":", "") not in a
    assert device_id(mac, mode="hash", key=b"library-a") == a  # stable within a library
    assert device_id(mac, mode="mac", key=b"") == "02-00-00-00-01-01"


def test_class_names_what_let_a_local_session_in():
    from gateway.radius.attributes import session_class

    assert session_class("voucher", "harian") == b"voucher:harian"
    assert session_class("free", "gratis\n\u00e9") == b"free:gratis"  # printable ASCII only
    assert len(session_class("voucher", "x" * 400)) == 253
    central = {"status": "Start", "sid": "c", "time": "1", "kind": "central", "user": "ANGGOTA-1", "plan": ""}
    assert "Class" not in acct_attributes(central, nas_identifier="lab", calling_station="x", delay=0)


def test_octets_split_into_gigawords():
    assert split_octets(5 * 2**32 + 7) == (7, 5)
    assert split_octets(-3) == (0, 0)


def test_stop_attributes():
    record = {
        "status": "Stop", "sid": "abc", "time": "1700000100.5", "ip": "10.42.0.100", "duration": "100.4",
        "bytes_up": str(2**32 + 1), "bytes_down": "10", "reason": "idle", "kind": "voucher", "user": "",
        "plan": "harian",
    }  # fmt: skip
    attrs = acct_attributes(record, nas_identifier="lab", calling_station="x", delay=30)
    assert attrs["Acct-Terminate-Cause"] == "Idle-Timeout"
    assert (attrs["Acct-Input-Octets"], attrs["Acct-Input-Gigawords"]) == (1, 1)
    assert (attrs["Acct-Output-Octets"], attrs["Acct-Output-Gigawords"]) == (10, 0)
    assert attrs["Acct-Session-Time"] == 100 and attrs["Event-Timestamp"] == 1700000100
    assert attrs["Acct-Delay-Time"] == 30 and attrs["Framed-IP-Address"] == "10.42.0.100"
    assert attrs["Class"] == b"voucher:harian"  # HQ counts vouchers used per plan from it
    # every attribute is in the shipped dictionary, with a value it can encode
    d = load_dictionary()
    pkt = packet.AcctPacket(dict=d, secret=SECRET)
    for name, value in attrs.items():
        pkt[name] = value
    assert pkt.RequestPacket()


# -- a fake HQ on loopback ----------------------------------------------------------------


class FakeHQ:
    """Answers each Access-Request the way a test asks: signed with ``secret``, from ``source``."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(3)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            data, addr = self.sock.recvfrom(4096)
        except TimeoutError:
            return
        d = load_dictionary()
        secret = b"a-wrong-secret" if self.mode == "wrong_secret" else SECRET
        request = packet.AuthPacket(packet=data, secret=secret, dict=d)
        reply = request.CreateReply()
        reply.code = packet.AccessAccept
        reply["Session-Timeout"] = 3600
        raw = reply.ReplyPacket()
        if self.mode == "garbage":
            raw = b"\x02" + raw[1:2] + b"\xff\xff" + b"x" * 40
        if self.mode == "other_port":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoof:
                spoof.bind(("127.0.0.1", 0))
                spoof.sendto(raw, addr)
            return
        self.sock.sendto(raw, addr)

    def close(self) -> None:
        self.thread.join(5)
        self.sock.close()


def _radius(port: int, tmp_path: Path) -> Radius:
    secret = tmp_path / "radius.secret"
    secret.write_text(SECRET.decode() + "\n")
    return Radius(
        servers=(RadiusServer(ipaddress.IPv4Address("127.0.0.1"), port, port + 1),),
        secret_file=secret, nas_identifier="lab", nas_ip=None, timeout=0.3, retries=2,
        interim_interval=60, device_id="hash", dynauth_listen="", dynauth_clients=(),
    )  # fmt: skip


def test_a_proper_accept_is_believed(tmp_path):
    hq = FakeHQ("good")
    try:
        reply = RadiusClient(_radius(hq.port, tmp_path)).authenticate("CODE", "CODE")
    finally:
        hq.close()
    assert reply.accepted and reply.attributes["Session-Timeout"] == [3600]


@pytest.mark.parametrize("mode", ["wrong_secret", "other_port", "garbage"])
def test_a_bad_or_spoofed_reply_is_never_believed(mode, tmp_path):
    hq = FakeHQ(mode)
    started = time.monotonic()
    try:
        with pytest.raises(RadiusUnavailable):
            RadiusClient(_radius(hq.port, tmp_path)).authenticate("CODE", "CODE")
    finally:
        hq.close()
    assert time.monotonic() - started < 2  # gives up within its bound (0.3 s here), nothing let in


class FakeAcctHQ:
    """Answers Accounting-Requests on loopback: signed with the right or a wrong secret; the
    first try of every third request is ignored (a lost datagram, so the client retries)."""

    def __init__(self, secret: bytes):
        self.secret = secret
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.seen: dict[bytes, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        d = load_dictionary()
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            request = packet.AcctPacket(packet=data, secret=self.secret, dict=d)
            key = request["Acct-Session-Id"][0].encode()
            self.seen[key] = self.seen.get(key, 0) + 1
            if int(key.decode().rsplit("-", 1)[1]) % 3 == 0 and self.seen[key] == 1:
                continue
            self.sock.sendto(request.CreateReply().ReplyPacket(), addr)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.mark.parametrize(("server_secret", "acked"), [(SECRET, 100), (b"a-wrong-secret", 0)])
def test_windowed_accounting_is_acked_only_by_verified_replies(server_secret, acked, tmp_path):
    hq = FakeAcctHQ(server_secret)
    radius = _radius(hq.port - 1, tmp_path)  # acct port = auth port + 1
    items = [(f"id-{i}", {"Acct-Status-Type": "Start", "Acct-Session-Id": f"s-{i}"}) for i in range(100)]
    try:
        client = RadiusClient(radius)
        if acked:
            done = client.account_many(items, window=16)
            assert sorted(done) == sorted(key for key, _ in items)  # the lost ones were retried
        else:
            with pytest.raises(RadiusUnavailable):
                client.account_many(items, window=16)
    finally:
        hq.close()
