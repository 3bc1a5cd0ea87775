"""The visitor portal in the lab: real gunicorn as nobody, real ARP table, real dnsmasq, TLS.

Tests that need the gateway's firewall (probes redirected by nftables, the browser
visit) are in ``test_visit.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gateway.lab.lab import NOBODY, Proc
from gateway.lab.probe import wait_for
from gateway.lab.tls import self_signed
from gateway.lab.topology import LAN_ROUTER
from gateway.model.sessions import end_session, new_session, start_session
from gateway.model.store import connect

pytestmark = pytest.mark.lab

HERE = Path(__file__).parent
PORTAL = f"http://{LAN_ROUTER}:8080"

DHCP_DISCOVER = """
import json
from scapy.all import BOOTP, DHCP, IP, UDP, Ether, conf, srp1
conf.checkIPaddr = False
conf.verb = 0
mac = "02:00:00:00:0e:01"  # not a lab phone: an OFFER only, no lease is taken
pkt = (Ether(dst="ff:ff:ff:ff:ff:ff", src=mac) / IP(src="0.0.0.0", dst="255.255.255.255")
       / UDP(sport=68, dport=67) / BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")), xid=0x5114, flags=0x8000)
       / DHCP(options=[("message-type", "discover"), ("param_req_list", [1, 3, 6, 114]), "end"]))
answer = srp1(pkt, iface="eth0", timeout=5)
options = {o[0]: o[1] for o in answer[DHCP].options if isinstance(o, tuple)} if answer else {}
print(json.dumps({k: v.decode() if isinstance(v, bytes) else str(v) for k, v in options.items()}))
"""


def _curl(lab, ns: str, *args: str) -> tuple[int, dict, str]:
    """Return (status, headers, body) of a curl from namespace ``ns``."""
    out = lab.exec(ns, "curl", "-s", "-i", "-m", "5", *args, timeout=15).stdout
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]) if lines else 0, {k.lower(): v for k, v in headers.items()}, body


def test_dhcp_offer_carries_the_captive_portal_api(lab):
    ns = lab.spec.client(lab.spec.clients)
    out = lab.exec(ns, lab.python, "-c", DHCP_DISCOVER, timeout=30, check=True).stdout
    options = json.loads(out)
    assert options["captive-portal"] == lab.config().portal.api_url == f"{PORTAL}/api/captive"


def test_portal_runs_as_nobody_and_knows_each_phone_by_its_mac(lab):
    config = lab.config()
    r = connect(config)
    ns, mac = lab.spec.client(1), lab.client_mac(1)
    ip = lab.client_ip(ns)
    assert os.stat(f"/proc/{lab.pid('portal')}").st_uid == NOBODY
    status, headers, body = _curl(lab, ns, f"{PORTAL}/api/captive")
    assert status == 200 and headers["content-type"] == "application/captive+json"
    assert json.loads(body)["captive"] is True
    now = time.time()
    session = new_session(mac=mac, ip=ip, kind="admin", plan="harian", now=now, expires_at=now + 600,
                          down=4_000_000, up=2_000_000)  # fmt: skip
    start_session(r, session, now)
    try:
        data = json.loads(_curl(lab, ns, f"{PORTAL}/api/captive")[2])
        assert data["captive"] is False and 590 <= data["seconds-remaining"] <= 600
        other = json.loads(_curl(lab, lab.spec.client(2), f"{PORTAL}/api/captive")[2])
        assert other["captive"] is True, "the MAC is looked up per phone"
        status, headers, _ = _curl(lab, ns, f"{PORTAL}/")
        assert status == 302 and headers["location"] == "/status?lang=id"
        page = _curl(lab, ns, f"{PORTAL}/status")[2]
        assert "Sisa waktu" in page and "Harian (2 jam)" in page
    finally:
        end_session(r, session.sid, "kicked", time.time())


def test_probe_redirect_closes_the_connection_and_logs_no_codes(lab):
    ns = lab.spec.client(2)
    status, headers, _ = _curl(lab, ns, "-H", "Host: captive.apple.com", f"{PORTAL}/hotspot-detect.html")
    assert status == 302 and headers["location"] == f"{PORTAL}/"
    assert headers["connection"] == "close" and "no-store" in headers["cache-control"]
    page = _curl(lab, ns, f"{PORTAL}/?code=QRQR-7777")[2]
    assert 'value="QRQR-7777"' in page
    time.sleep(0.2)
    log = (lab.log_dir / "portal.log").read_text()
    assert '"GET 10.42.0.1:8080/"' in log and "QRQR" not in log, "the QR code's voucher is never logged"


def test_portal_serves_tls_when_a_certificate_is_configured(lab):
    folder = lab.dir / "tls-test"
    cert, key = self_signed(folder)
    text = lab.config_path.read_text().replace(
        f'url = "{PORTAL}"',
        f'url = "https://{LAN_ROUTER}:18443"\nport = 18080\ntls_port = 18443\n'
        f'tls_cert = "{cert}"\ntls_key = "{key}"',
    )
    config_path = folder / "hotspot.toml"
    config_path.write_text(text)
    config_path.chmod(0o644)
    gw = lab.spec.gw
    proc = Proc(
        "portal-tls-test", gw,
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all", "--",
         lab.python, "-m", "portal", "--config", str(config_path)],
        env={"PYTHONUNBUFFERED": "1"},
        ready=lambda: lab._http_ok(gw, f"http://{LAN_ROUTER}:18080/healthz"),
    )  # fmt: skip
    pid = lab.start(proc)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            result = lab.exec(gw, "curl", "-s", "-m", "2", "--cacert", str(cert),
                              f"https://{LAN_ROUTER}:18443/api/captive")  # fmt: skip
            if result.returncode == 0:
                break
            time.sleep(0.2)
        data = json.loads(result.stdout)
        assert data == {"captive": True, "user-portal-url": f"https://{LAN_ROUTER}:18443/",
                        "can-extend-session": False}  # fmt: skip
        # a probe on the plain port is sent to the HTTPS portal
        status, headers, _ = _curl(lab, gw, "-H", "Host: connectivitycheck.gstatic.com",
                                   f"http://{LAN_ROUTER}:18080/generate_204")  # fmt: skip
        assert status == 302 and headers["location"] == f"https://{LAN_ROUTER}:18443/"
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == lab.config().portal.workers, "one server, its workers serve both listeners"
        # a plain HTTP request on the TLS port is refused, TLS on the plain port too: TLS is per listener
        assert _curl(lab, gw, f"http://{LAN_ROUTER}:18443/api/captive")[0] != 200
        assert lab.exec(gw, "curl", "-s", "-m", "2", "-k", f"https://{LAN_ROUTER}:18080/").returncode != 0
        # a connection that never starts its TLS handshake is dropped like slow headers (5 s)
        silent = lab.exec(gw, lab.python, "-c", SILENT_TLS_CLIENT, LAN_ROUTER, "18443", timeout=30)
        assert silent.returncode == 0 and 4 <= float(silent.stdout) < 10, silent.stdout + silent.stderr
        # a reload (systemctl reload: HUP) replaces the workers; both listeners keep serving
        os.kill(pid, signal.SIGHUP)

        def workers() -> set[str]:
            found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
            return set(found.stdout.split())

        wait_for(lambda: workers() and not workers() & set(children), what="new workers after HUP")
        https = lab.exec(gw, "curl", "-s", "-m", "5", "--cacert", str(cert),
                         f"https://{LAN_ROUTER}:18443/api/captive")  # fmt: skip
        assert https.returncode == 0 and json.loads(https.stdout)["captive"] is True
        assert _curl(lab, gw, f"http://{LAN_ROUTER}:18080/api/captive")[0] == 200
    finally:
        lab.stop("portal-tls-test")
    time.sleep(0.5)
    after = lab.exec(gw, "curl", "-s", "-m", "2", "-k", f"https://{LAN_ROUTER}:18443/api/captive")
    assert after.returncode != 0, "the TLS server stopped with the portal"


def test_a_broken_certificate_leaves_http_up_and_refuses_tls(lab):
    folder = lab.dir / "tls-broken"
    cert, _key = self_signed(folder)
    text = lab.config_path.read_text().replace(
        f'url = "{PORTAL}"',  # the certificate given as its own key: it does not load
        f'url = "http://{LAN_ROUTER}:18082"\nport = 18082\ntls_port = 18445\n'
        f'tls_cert = "{cert}"\ntls_key = "{cert}"',
    )
    config_path = folder / "hotspot.toml"
    config_path.write_text(text)
    config_path.chmod(0o644)
    gw = lab.spec.gw
    proc = Proc(
        "portal-tls-broken", gw,
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all", "--",
         lab.python, "-m", "portal", "--config", str(config_path)],
        env={"PYTHONUNBUFFERED": "1"},
        ready=lambda: lab._http_ok(gw, f"http://{LAN_ROUTER}:18082/healthz"),
    )  # fmt: skip
    lab.start(proc)
    try:
        assert _curl(lab, gw, f"http://{LAN_ROUTER}:18082/api/captive")[0] == 200
        tls = lab.exec(gw, "curl", "-s", "-m", "3", "-k", f"https://{LAN_ROUTER}:18445/api/captive")
        assert tls.returncode != 0 and not tls.stdout, "no TLS, and never plain HTTP on the TLS port"
        plain = lab.exec(gw, "curl", "-s", "-m", "3", f"http://{LAN_ROUTER}:18445/api/captive")
        assert plain.returncode != 0 and not plain.stdout
        log = (lab.log_dir / "portal-tls-broken.log").read_text()
        assert "portal TLS certificate not loaded" in log
    finally:
        lab.stop("portal-tls-broken")


SILENT_TLS_CLIENT = """
import socket, sys, time
started = time.monotonic()
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20) as sock:
    assert sock.recv(1) == b""  # closed by the portal, nothing sent
print(round(time.monotonic() - started, 2))
"""
