"""The lab itself: namespaces, DHCP, DNS, the upstream's probe answers, daemons, up/down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from gateway.lab.lab import Lab, pid_alive
from gateway.lab.netns import lab_namespaces
from gateway.lab.topology import DESK_PC_IP, UPSTREAM_IP, UPSTREAM_WALLED_IP, LabSpec, client_mac
from gateway.lab.upstream import APPLE_SUCCESS, FIREFOX_CANONICAL, UPSTREAM_MARKER

pytestmark = pytest.mark.lab


def test_phones_get_addresses_from_the_routers_dhcp(lab):
    config = lab.config()
    leases = (config.paths.state_dir / "dnsmasq.leases").read_text()
    for i, ns in enumerate(lab.spec.client_namespaces, start=1):
        ip = lab.client_ip(ns)
        assert ip is not None, f"{ns} has no lease"
        last = int(ip.rsplit(".", 1)[1])
        if i == lab.spec.clients:
            assert ip == DESK_PC_IP, "the desk PC's fixed address (desk.networks)"
        else:
            assert ip.startswith("10.42.0.") and 100 <= last <= 199
        assert client_mac(i) in leases
        route = lab.exec(ns, "ip", "-j", "route", "show", "default").stdout
        assert json.loads(route)[0]["gateway"] == "10.42.0.1"
        resolv = lab.exec(ns, "cat", "/etc/resolv.conf").stdout
        assert "nameserver 10.42.0.1" in resolv


def test_dns_answers_every_name_with_the_upstream(lab):
    ns = lab.spec.client(1)
    for name in ("example.com", "connectivitycheck.gstatic.com", "captive.apple.com", "a.b.c.test"):
        out = lab.exec(ns, "getent", "ahostsv4", name).stdout
        assert out.split()[0] == UPSTREAM_IP, (name, out)
    # walled-garden names resolve to a second upstream address, so they can be told apart
    out = lab.exec(ns, "getent", "ahostsv4", "perpuseru.id").stdout
    assert out.split()[0] == UPSTREAM_WALLED_IP


PROBES = [
    ("connectivitycheck.gstatic.com", "/generate_204", 204, ""),
    ("clients3.google.com", "/generate_204", 204, ""),
    ("www.google.com", "/gen_204", 204, ""),
    ("captive.apple.com", "/hotspot-detect.html", 200, APPLE_SUCCESS),
    ("www.msftconnecttest.com", "/connecttest.txt", 200, "Microsoft Connect Test"),
    ("detectportal.firefox.com", "/canonical.html", 200, FIREFOX_CANONICAL + "\n"),
]


@pytest.mark.parametrize(("host", "path", "status", "body"), PROBES)
def test_upstream_answers_probes_like_the_real_hosts(lab, host, path, status, body):
    # asked from the router itself, which is never behind the portal
    out = lab.exec(
        lab.spec.gw, "curl", "-s", "-m", "3", "-w", "\n%{http_code}", "--resolve", f"{host}:80:{UPSTREAM_IP}",
        f"http://{host}{path}",
    ).stdout  # fmt: skip
    got_body, got_status = out.rsplit("\n", 1)
    assert (int(got_status), got_body) == (status, body)


def test_upstream_page_says_where_it_is(lab):
    out = lab.exec(lab.spec.gw, "curl", "-s", "-m", "3", f"http://{UPSTREAM_IP}/anything").stdout
    assert UPSTREAM_MARKER in out


def test_iperf_servers_listen(lab):
    out = lab.exec(lab.spec.up, "ss", "-ltnH").stdout
    assert ":5201 " in out and ":5204 " in out


def test_gateway_and_portal_run_and_stop_cleanly(lab):
    assert lab.is_running("gateway") and lab.is_running("portal")
    health = lab.exec(lab.spec.gw, "curl", "-s", "-m", "3", "http://10.42.0.1:8080/healthz").stdout
    assert json.loads(health) == {"portal": "ok", "redis": "ok"}
    portal_pid = lab.pid("portal")
    assert os.stat(f"/proc/{portal_pid}").st_uid == 65534, "the portal runs unprivileged"

    log = lab.log_dir / "gateway.log"
    before = log.read_text()
    pid = lab.pid("gateway")
    lab.stop("gateway", signal.SIGTERM)
    assert not pid_alive(pid)
    tail = log.read_text()[len(before) :]
    assert "gateway_stopped" in tail and "Traceback" not in tail
    lab.start("gateway")
    assert lab.is_running("gateway")


def test_lab_up_again_changes_nothing(lab):
    assert lab.up() == []


def test_lab_down_leaves_nothing_behind():
    base = os.environ.get("HOTSPOT_TEST_PREFIX", "hs-t-").rstrip("-")
    spec = LabSpec(prefix=f"{base}d-"[:8] if len(base) < 7 else "hs-td-", clients=1)
    root_links = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout
    lab = Lab(spec)
    try:
        lab.up()
        # nothing was created in the root namespace
        assert (
            subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout == root_links
        )
        pids = [lab.pid(name) for name in lab.status()["processes"]]
        assert len(pids) > 10
    finally:
        lab.down(wipe=True)
    assert lab_namespaces(spec.prefix) == []
    time.sleep(0.2)
    for pid in pids:
        assert not pid_alive(pid), f"pid {pid} still runs"
    assert not any(os.path.exists(f"/etc/netns/{ns}") for ns in spec.namespaces)
    assert not lab.dir.exists()


def test_lab_cli_status_json(lab):
    from click.testing import CliRunner

    from gateway.cli import cli

    result = CliRunner().invoke(cli, ["lab", "status", "--json", "--prefix", lab.spec.prefix])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert set(status["namespaces"]) == set(lab.spec.namespaces)
    assert all(p["running"] for p in status["processes"].values())
