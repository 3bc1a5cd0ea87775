"""``hotspotctl status / clients / auth / kick / doctor`` against the lab, gateway up and down."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from click.testing import CliRunner

from gateway.cli import cli
from gateway.lab.probe import everyone_out, online_from
from gateway.model.sessions import get_session, session_for_mac
from gateway.model.store import connect

pytestmark = pytest.mark.lab


@pytest.fixture
def ctl(lab):
    r = connect(lab.config())
    everyone_out(lab, r)

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(cli, ["--config", str(lab.config_path), *args])
        assert result.exit_code == code, (args, result.output, result.exception)
        return result.output

    yield run
    everyone_out(lab, r)


def test_auth_clients_kick_by_ip_and_mac(lab, ctl):
    ip = lab.client_ip(lab.spec.client(5))
    assert "online for 30m" in ctl("auth", ip, "--minutes", "30")
    assert online_from(lab, 5)
    assert "already online" in ctl("auth", ip, "--minutes", "5", code=1), "no silent replacement"
    [row] = json.loads(ctl("clients", "--json"))
    assert (row["mac"], row["ip"], row["kind"]) == (lab.client_mac(5), ip, "admin")
    assert row["host"] == "phone5", "the name the phone gave the router's dnsmasq (its lease file)"
    assert 1790 <= row["seconds_left"] <= 1800
    assert lab.client_mac(5) in ctl("clients")
    assert json.loads(ctl("status", "--json"))["clients_online"] == 1
    assert "logged out" in ctl("kick", lab.client_mac(5).upper())
    assert not online_from(lab, 5)
    assert "no client online" in ctl("kick", ip, code=1)
    assert "neither a MAC" in ctl("auth", "phone5", code=2)


def test_status_and_doctor_with_the_gateway_up_and_down(lab, ctl):
    status = json.loads(ctl("status", "--json"))
    assert status["gateway"]["state"] == "ok" and status["portal"]["state"] == "ok"
    ctl("auth", lab.client_mac(5), "--minutes", "10")
    report = json.loads(ctl("doctor", "--json"))
    assert report["source"] == "gateway" and report["report"]["ok"] and report["report"]["guard"] == "ok"

    lab.stop("gateway", signal.SIGTERM)
    try:
        assert json.loads(ctl("status", "--json", code=3))["gateway"]["state"] == "down"
        # someone deletes the phone's element while the gateway is down: doctor sees it, --repair fixes it
        mac, ip = lab.client_mac(5), lab.client_ip(lab.spec.client(5))
        lab.exec(lab.spec.gw, "nft", "delete", "element", "inet", "hotspot", "auth4", f"{{ {mac} . {ip} }}",
                 check=True)  # fmt: skip
        broken = json.loads(ctl("doctor", "--json", code=1))
        assert broken["source"] == "hotspotctl" and broken["report"]["table"] == "ok"
        assert broken["report"]["guard"] == "ok", "the fail-closed routing rules outlive the gateway"
        assert [row["set"] for row in broken["report"]["missing"]] == ["auth4"]
        assert not online_from(lab, 5)
        repaired = json.loads(ctl("doctor", "--repair", "--json"))
        assert repaired["report"]["ok"] and online_from(lab, 5)
        # kick works without the gateway too
        assert "logged out" in ctl("kick", ip)
        assert not online_from(lab, 5)
    finally:
        lab.start("gateway")


def test_a_paused_gateway_is_slow_not_down_so_the_cli_does_not_write_beside_it(lab, ctl):
    """SIGSTOP: the heartbeat is fresh but nothing answers. kick and doctor --repair must not
    fall back to their own pass (two writers); they say so, exit 3, and the queued kick is
    carried out once the gateway runs again."""
    r = connect(lab.config())
    mac, ip = lab.client_mac(5), lab.client_ip(lab.spec.client(5))
    ctl("auth", mac, "--minutes", "10")
    sid = session_for_mac(r, mac).sid
    pid = lab.pid("gateway")
    os.kill(pid, signal.SIGSTOP)
    try:
        out = ctl("kick", ip, code=3)
        assert "is running but did not answer" in out and "stays queued" in out, out
        assert get_session(r, sid).state == "online", "the CLI ended the session beside the gateway"
        assert online_from(lab, 5), "the CLI cut the client off in the kernel beside the gateway"
        out = ctl("doctor", "--repair", code=3)
        assert "is running but did not answer" in out, out
    finally:
        os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 15
    while get_session(r, sid).state == "online" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert get_session(r, sid).end_reason == "kicked", "the queued kick was not carried out"
    assert not online_from(lab, 5)
