"""The desk in the lab, over the library's LAN: a librarian's PC is one phone namespace.

The librarian signs in at ``http://10.42.0.1:8080/desk`` from ``<prefix>c6`` (curl with a
cookie jar, CSRF tokens read from the pages like a browser), issues a batch and prints
it; a visitor on ``<prefix>c5`` logs in at the portal with one of those codes and comes
online; their traffic (iperf3 from the lab's internet) shows as live usage on the
dashboard; the librarian logs them out, they are back behind the portal; the day's CSV
counts the visit. Everything runs for real: gunicorn portal as nobody, the gateway daemon
with nftables, Redis, dnsmasq, iperf3.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import subprocess
import time

import pytest
from click.testing import CliRunner

from gateway.cli import cli
from gateway.lab.probe import wait_for
from gateway.lab.topology import UPSTREAM_IP
from gateway.lab.upstream import UPSTREAM_MARKER
from gateway.model import commands, keys
from gateway.model.sessions import get_session, session_for_mac
from gateway.model.store import connect
from gateway.model.vouchers import redeem

pytestmark = pytest.mark.lab

PORTAL = "http://10.42.0.1:8080"
ADMIN, PASSWORD = "kepala", "rahasia-kepala-1"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class LanBrowser:
    """curl inside a phone namespace, keeping cookies like a browser."""

    def __init__(self, lab, ns: str):
        self.lab, self.ns = lab, ns
        self.jar = lab.dir / f"cookies-{ns}.txt"
        self.jar.unlink(missing_ok=True)

    def request(self, url: str, data: dict | None = None) -> tuple[int, str, str]:
        """Return (status, redirect location, body) of a GET, or a POST of ``data``."""
        argv = ["curl", "-s", "-m", "15", "-b", str(self.jar), "-c", str(self.jar),
                "-w", "\n%{http_code} %{redirect_url}"]  # fmt: skip
        for key, value in (data or {}).items():
            argv += ["--data-urlencode", f"{key}={value}"]
        out = self.lab.exec(
            self.ns, *argv, url if url.startswith("http") else PORTAL + url, timeout=25
        ).stdout
        body, _, meta = out.rpartition("\n")
        status, _, location = meta.partition(" ")
        return int(status or 0), location, body

    def form(self, page_url: str, post_url: str, data: dict) -> tuple[int, str, str]:
        """Open ``page_url``, take its CSRF token, post ``data`` to ``post_url``."""
        status, _, page = self.request(page_url)
        assert status == 200, (page_url, status)
        return self.request(post_url, {**data, "csrf_token": _TOKEN.search(page).group(1)})


@pytest.fixture(scope="module")
def desk_pc(lab):
    """The librarian's PC (the last phone namespace), signed in as an admin made with hotspotctl."""
    add = ["librarian", "add", ADMIN, "--role", "admin", "--password-stdin"]
    result = CliRunner().invoke(cli, ["--config", str(lab.config_path), *add], input=PASSWORD + "\n")
    assert result.exit_code in (0, 1), result.output  # 1: made by an earlier run of this module
    browser = LanBrowser(lab, lab.spec.client(lab.spec.clients))
    status, location, _ = browser.form("/desk/login", "/desk/login", {"name": ADMIN, "password": PASSWORD})
    assert status == 302 and location.endswith("/desk/"), (status, location)
    return browser


def _issue(desk_pc, count: int, note: str) -> list[str]:
    status, _, page = desk_pc.request("/desk/issue")
    request_id = re.search(r'name="request_id" value="([^"]+)"', page).group(1)
    status, location, _ = desk_pc.form(
        "/desk/issue",
        "/desk/issue",
        {"plan": "harian", "count": str(count), "note": note, "request_id": request_id},
    )
    assert status == 302 and "/desk/batches/" in location, (status, location)
    status, _, sheet = desk_pc.request(location + "/print")
    assert status == 200
    return re.findall(r'<div class="code">([0-9A-Z]{4}-[0-9A-Z]{4})</div>', sheet)


def test_desk_over_the_lan(lab, desk_pc):
    codes = _issue(desk_pc, 5, "lab: kelas komputer")
    assert len(codes) == 5
    status, _, page = desk_pc.request("/desk/vouchers?state=unused")
    assert status == 200 and all(code in page for code in codes)
    status, _, csv_text = desk_pc.request("/desk/reports/day.csv")
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert status == 200 and rows[-1]["library"] == "lab" and int(rows[-1]["vouchers_issued"]) >= 5
    headers = lab.exec(
        desk_pc.ns, "curl", "-s", "-m", "5", "-D", "-", "-o", "/dev/null", PORTAL + "/desk/login"
    )
    assert "no-store" in headers.stdout.lower()


def _visitor_login(lab, phone: LanBrowser, code: str, mac: str) -> None:
    """Log the phone in with ``code`` at the portal, as a visitor does, and expect "online".

    Where the visitor portal's login page is not on this branch yet, do what it does
    instead (redeem the code, ask the gateway to authorize and wait for its ack), so the
    rest of the path still runs against the real gateway.
    """
    status, _, splash = phone.request(f"/?code={code}")
    token = re.search(r'name="token" value="([^"]+)"', splash)
    if status == 200 and token is not None:
        status, location, _ = phone.request("/login", {"code": code, "token": token.group(1)})
        assert status == 303, ("the portal did not confirm the login", status, location)
        return
    config = lab.config()
    r = connect(config)
    session = redeem(r, code, mac=mac, ip=lab.client_ip(phone.ns), plans=config.plans, now=time.time(),
                     timezone=config.library.timezone)  # fmt: skip
    reply = commands.request(r, "authorize", config.gateway.ack_timeout, sid=session.sid)
    assert reply is not None and reply.get("ok"), reply


def test_visitor_online_with_live_usage_then_kicked(lab, desk_pc):
    config = lab.config()
    r = connect(config)
    [code] = _issue(desk_pc, 1, "lab: e2e")
    phone_index = lab.spec.clients - 1
    phone = LanBrowser(lab, lab.spec.client(phone_index))
    mac = lab.client_mac(phone_index)

    _visitor_login(lab, phone, code, mac)
    session = session_for_mac(r, mac)
    assert session is not None and session.kind == "voucher"
    wait_for(
        lambda: UPSTREAM_MARKER in phone.request(f"http://{UPSTREAM_IP}/")[2],
        10,
        "the visitor reaches the web",
    )

    # the visitor downloads for a few seconds (bounded); meanwhile the gateway's accounting
    # writes the bytes (and, with the shaper, the current rate) into the session
    download = subprocess.Popen(
        ["ip", "netns", "exec", phone.ns, "iperf3", "-c", UPSTREAM_IP, "-p", "5210", "-t", "4", "-R"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: get_session(r, session.sid).bytes_down > 1_000_000, 15, "usage is accounted")
        if importlib.util.find_spec("gateway.accounting") is not None:  # the shaper measures rates
            wait_for(lambda: float(r.hget(keys.session(session.sid), "rate_down") or 0) > 0, 10, "a rate")
            status, _, dashboard = desk_pc.request("/desk/")
            row = next(part for part in dashboard.split("<tr>") if mac in part)
            assert re.search(r"↓ [0-9.]+ [kMG]?bit/s", row), "the dashboard shows the current speed"
    finally:
        download.wait(timeout=30)
    status, _, dashboard = desk_pc.request("/desk/")
    row = next(part for part in dashboard.split("<tr>") if mac in part)
    assert "↓ 0 B" not in row, "the dashboard shows the visitor's live usage"
    assert f"/desk/clients/{session.sid}/kick" in row

    status, location, _ = desk_pc.form("/desk/", f"/desk/clients/{session.sid}/kick", {})
    assert status == 302
    assert get_session(r, session.sid).end_reason == "kicked"
    wait_for(lambda: UPSTREAM_MARKER not in phone.request(f"http://{UPSTREAM_IP}/")[2], 10,
              "the kicked visitor is back behind the portal")  # fmt: skip

    status, _, csv_text = desk_pc.request("/desk/reports/day.csv")
    total = list(csv.DictReader(io.StringIO(csv_text)))[-1]
    assert int(total["sessions"]) >= 1 and int(total["vouchers_used"]) >= 1
    assert float(total["data_down_mb"]) > 1.0 and mac not in csv_text
    assert r.exists(keys.report_devices(time.strftime("%Y%m%d%H", time.gmtime(session.started_at))))


def test_the_desk_pc_keeps_its_reserved_address_when_it_logs_in(lab, desk_pc):
    """A logged-in device gets an online-lease file that dnsmasq reads before its own config:
    for the desk PC it must carry the reserved address, or the next lease moves the PC out
    of ``desk.networks`` (403 at the desk). A new client id makes dnsmasq pick afresh."""
    index = lab.spec.clients
    ns, mac = lab.spec.client(index), lab.client_mac(index)
    reserved = str(dict(lab.config().dhcp.reservations)[mac])
    config = ["--config", str(lab.config_path)]
    result = CliRunner().invoke(cli, [*config, "auth", mac, "--minutes", "5", "--replace", "--json"])
    assert result.exit_code == 0, result.output
    host_file = lab.config().dhcp.hosts_dir / mac.replace(":", "-")
    wait_for(lambda: host_file.exists(), 10, "the desk PC's online-lease file")
    assert host_file.read_text().startswith(f"{mac},{reserved},")
    lab.stop(f"dhcp-c{index}")
    try:
        lab.exec(ns, "udhcpc", "-n", "-q", "-i", "eth0", "-s", str(lab.dir / "udhcpc.script"), "-t", "3",
                 "-T", "1", "-x", f"0x3d:ff{index:010x}", check=True, timeout=20)  # fmt: skip
        assert lab.client_ip(ns) == reserved
        status, _, page = desk_pc.request("/desk/")
        assert status == 200 and "/desk/logout" in page, "the desk PC still reaches its desk"
    finally:
        CliRunner().invoke(cli, [*config, "kick", mac])
        lab.start(f"dhcp-c{index}")
