"""Fixtures for the visitor portal: phones on the LAN, a clock, and the gateway's acks.

- ``phone`` / ``phone2``: test clients whose requests come from a LAN address the
  portal resolves to a MAC (``neighbours``), as the router's ARP table would.
- ``clock``: the time the portal sees (settable), so "per day" rules can be tested.
- ``gateway``: answers ``authorize``/``deauthorize`` commands on the real Redis stream
  exactly as the gateway daemon's protocol says (``gateway.model.commands``); it can be
  silenced to test the portal's behaviour when no ack comes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from gateway import config as config_mod
from gateway.model import commands
from gateway.model.sessions import end_session
from gateway.model.store import connect

PHONE_IP, PHONE_MAC = "10.42.0.100", "02:00:00:00:01:01"
PHONE2_IP, PHONE2_MAC = "10.42.0.101", "02:00:00:00:01:02"
NOW = 1_800_000_000.0  # 2027-01-15 15:00 WIB


class Clock:
    """A settable clock: ``clock()`` returns ``clock.now``."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


class GatewayAcks:
    """Replies ``{"ok": true}`` to every command, like the gateway daemon, unless ``silent``.

    Like the daemon, a ``deauthorize`` ends the session (reason ``logout`` unless given).
    """

    def __init__(self, redis_url: str):
        self.redis = connect(redis_url, timeout=5)
        self.silent = False
        self.present = False  # the answer to "present": the old address went quiet
        self.received: list[commands.Command] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = "0"
        while not self._stop.is_set():
            for command in commands.read_commands(self.redis, last, block_ms=100):
                last = command.stream_id
                self.received.append(command)
                if not self.silent:
                    if command.op == "deauthorize":  # the daemon ends the session as it cuts it off
                        reason = command.fields.get("reason", "logout")
                        end_session(self.redis, command.fields.get("sid", ""), reason, time.time())
                    answer = {"ok": True, "op": command.op}
                    if command.op == "present":  # does the session's device still answer there?
                        answer["present"] = self.present
                    if command.op == "authorize":  # the daemon marks the session acked with its reply
                        answer.update(sid=command.fields.get("sid", ""), expires_at=time.time() + 3600)
                    commands.reply_many(self.redis, [(command.id, answer)], now=time.time())

    def ops(self) -> list[tuple[str, str]]:
        return [(c.op, c.fields.get("sid", "")) for c in self.received]

    def start(self) -> GatewayAcks:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.redis.close()


@pytest.fixture
def hotspot_config(hotspot_config, tmp_path) -> config_mod.Config:
    """The example config (see ../conftest.py) with free mode on ("gratis"), a short ack
    timeout, and a branding folder of its own."""
    config = hotspot_config
    (tmp_path / "branding").mkdir()
    return replace(
        config,
        library=replace(config.library, branding_dir=tmp_path / "branding"),
        portal=replace(config.portal, free_plan="gratis"),
        gateway=replace(config.gateway, ack_timeout=0.5),
    )


@pytest.fixture(autouse=True)
def _no_offline_memory():
    """Each test starts with no remembered "not online" devices (portal.probes)."""
    from portal.probes import forget_offline

    forget_offline()
    yield
    forget_offline()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def neighbours() -> dict[str, str]:
    """The router's neighbour table as the portal sees it: LAN address -> MAC."""
    return {PHONE_IP: PHONE_MAC, PHONE2_IP: PHONE2_MAC}


@pytest.fixture
def app(hotspot_config, r, neighbours, clock):
    from portal import create_app

    return create_app(
        {"HOTSPOT": hotspot_config, "TESTING": True, "MAC_LOOKUP": neighbours.get, "CLOCK": clock}
    )


@pytest.fixture
def gateway(redis_url, r):
    acks = GatewayAcks(redis_url).start()
    yield acks
    acks.stop()


def _client(app, ip: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


@pytest.fixture
def phone(app):
    """A phone on the library Wi-Fi (``PHONE_IP``/``PHONE_MAC``)."""
    return _client(app, PHONE_IP)


@pytest.fixture
def phone2(app):
    return _client(app, PHONE2_IP)


@pytest.fixture
def stranger(app):
    """A client that is not on the LAN (no neighbour entry)."""
    return _client(app, "192.0.2.50")


def token_of(page: str) -> str:
    """Return the form token in a rendered page."""
    import re

    match = re.search(r'name="token" value="([^"]+)"', page)
    assert match, "no form token in the page"
    return match.group(1)


def fresh_token(client) -> str:
    """Load the splash (or status page) as the client and return its form token.

    A free session's status page has no form until the visitor asks to log out (it asks
    first): the token then comes from that confirmation page, as it would in a browser."""
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    if 'name="token"' not in page and "confirm=logout" in page:
        page = client.get("/status?confirm=logout").get_data(as_text=True)
    return token_of(page)


def login(client, code: str, **headers):
    """Post ``code`` to /login the way the splash form does; return the response."""
    return client.post("/login", data={"code": code, "token": fresh_token(client)}, headers=headers)
