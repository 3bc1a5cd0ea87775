"""``make demo``'s steps for the visitor portal: splash, voucher, login, online.

Each step acts as the demo phone does (curl inside its namespace) and prints what the
visitor would see. They run after the lab's own steps in :data:`gateway.lab.demo.STEPS`.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING

from gateway.daemon.sessionlog import SessionLog, read_records
from gateway.lab.lab import LabError
from gateway.lab.measure import Flow, iperf_many
from gateway.lab.upstream import UPSTREAM_MARKER
from gateway.model import commands
from gateway.model.sessions import end_session, session_for_mac
from gateway.model.store import connect
from gateway.model.vouchers import format_code, issue_batch
from gateway.shaping.apply import TcApplier
from gateway.shaping.model import client_class

if TYPE_CHECKING:
    from gateway.lab.demo import Demo

__all__ = [
    "VISIT_STEPS",
    "step_fresh_phone",
    "step_login",
    "step_online",
    "step_probe_online",
    "step_session_log",
    "step_share",
    "step_splash",
    "step_voucher",
]


def _portal(demo: Demo) -> str:
    return demo.lab.config().portal.url


def step_fresh_phone(demo: Demo) -> None:
    """Log the demo phone out if an earlier demo left it online."""
    config = demo.lab.config()
    r = connect(config)
    mac = demo.lab.client_mac(1)
    session = session_for_mac(r, mac)
    if session is not None:
        demo.step("The phone was still online from an earlier demo: logging it out first")
        end_session(r, session.sid, "logout", time.time())
        commands.request(r, "deauthorize", config.gateway.ack_timeout, sid=session.sid)
        demo.say(f"session {session.sid} ended (reason: logout)")


def step_splash(demo: Demo) -> None:
    demo.step("The sign-in window shows the library's splash page (Bahasa Indonesia by default)")
    status, _, page = demo.curl(_portal(demo) + "/")
    if status != 200:
        raise LabError(f"the splash answered {status}; see {demo.lab.log_dir}/portal.log")
    title = re.search(r"<title>(.*?)</title>", page)
    demo.say(f"{status}, {len(page.encode()) / 1024:.1f} KB, no script, nothing loaded from elsewhere")
    demo.say(f"title: {title.group(1) if title else '?'}; marks: Telkom Indonesia, Coca-Cola Foundation "
             "Indonesia, PerpuSeru")  # fmt: skip
    demo.say('form: "Kode voucher" [ABCD-EFGH] [Sambungkan]  or  [Gratis 30 menit]; ID | EN')
    token = re.search(r'name="token" value="([^"]+)"', page)
    demo.facts["token"] = token.group(1) if token else ""


def step_voucher(demo: Demo) -> None:
    demo.step("At the desk, the librarian issues a voucher (plan 'harian': 2 hours)")
    config = demo.lab.config()
    [voucher] = issue_batch(connect(config), config.plans["harian"], 1, now=time.time(), issued_by="demo")
    demo.facts["code"] = format_code(voucher.code)
    demo.say(f"voucher {demo.facts['code']} (id {voucher.id}); the visitor types it in lower case")


def step_login(demo: Demo) -> None:
    demo.step("The visitor types the code and taps Sambungkan")
    code = demo.facts["code"].lower().replace("-", " ")
    started = time.monotonic()
    status, location, _ = demo.curl(
        _portal(demo) + "/login", "-d", f"code={code}&token={demo.facts['token']}"
    )
    elapsed = (time.monotonic() - started) * 1000
    if status != 303:
        raise LabError(f"login answered {status}, expected 303; see {demo.lab.log_dir}/portal.log")
    demo.say(f'typed "{code}" -> 303 to {location} in {elapsed:.0f} ms (after the gateway\'s ack)')


def step_online(demo: Demo) -> None:
    demo.step("The phone shows 'you are online'")
    status, _, page = demo.curl(_portal(demo) + "/online")
    found = re.search(r'<p class="ok" role="status">(.*?)</p>', page, re.S)
    text = re.sub(r"<[^>]+>", "", found.group(1)) if found else page[:200]
    demo.say(f"{status}: {text.strip()}")
    demo.say("with an optional one-tap survey and the status page at " + _portal(demo) + "/status")
    _, _, api = demo.curl(_portal(demo) + "/api/captive")
    demo.say(f"RFC 8908 API: {json.loads(api)}")


def step_probe_online(demo: Demo) -> None:
    demo.step("The OS probes again and closes its sign-in window")
    status, _, _ = demo.curl("http://connectivitycheck.gstatic.com/generate_204")
    demo.say(f"Android's probe -> {status} from the internet" + (" (online)" if status == 204 else ""))
    status, _, body = demo.curl("http://example.com/")
    where = "the internet" if UPSTREAM_MARKER in body else "the portal"
    demo.say(f"http://example.com/ -> {status} from {where}")


def step_share(demo: Demo) -> None:
    demo.step("Its share of the library's line (tc: one HTB class per phone)")
    config = demo.lab.config()
    session = session_for_mac(connect(config), demo.lab.client_mac(1))
    if session is None or not session.slot:
        raise LabError(f"the phone has no shaping class; see {demo.lab.log_dir}/gateway.log")
    net = config.network
    with TcApplier.for_network(net) as tc:
        down = tc.read(net.lan_interface).classes.get(client_class(session.slot))
    if down is None:
        raise LabError(f"no class 1:{0x10 + session.slot:x} on {net.lan_interface}")
    demo.say(
        f"class 1:{0x10 + session.slot:x}: guaranteed {down.rate / 1e6:.2f} Mbit/s (its fair share of the "
        f"{config.uplink.down / 1e6:g} Mbit/s line, at most its cap), "
        f"may borrow up to {down.ceil / 1e6:.2f} Mbit/s "
        f"(plan cap {session.down / 1e6:g} Mbit/s of TCP goodput)"
    )
    [got] = iperf_many([Flow(demo.phone, 5201, True)], seconds=3, omit=1)
    demo.say(f"a 3-second download alone on the line: {got / 1e6:.2f} Mbit/s (iperf3)")


def step_session_log(demo: Demo) -> None:
    demo.step("The session is in the durable session log (JSON lines, fsync)")
    config = demo.lab.config()
    session = session_for_mac(connect(config), demo.lab.client_mac(1))
    log = SessionLog.from_config(config)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [rec for rec in read_records(log) if session and rec.get("sid") == session.sid]
        if found:
            keys = ("event", "time", "plan", "mac", "ip", "voucher_id")
            demo.say(json.dumps({k: found[0][k] for k in keys if k in found[0]}))
            demo.say(f"in {log.directory}/ (hotspotctl sessions / logs -f read it)")
            return
        time.sleep(0.2)
    raise LabError(f"no session-log record after 5 s; see {demo.lab.log_dir}/gateway.log")


VISIT_STEPS = [
    step_splash,
    step_voucher,
    step_login,
    step_online,
    step_probe_online,
    step_share,
    step_session_log,
]
