"""Two libraries and one HQ: a central code works at either, HQ accounts both and can end one
session and throttle the other live (FreeRADIUS's radclient)."""

from __future__ import annotations

import re

import pytest

from gateway.lab.lab import Lab
from gateway.lab.probe import online_from, wait_for
from gateway.lab.topology import WAN_ROUTER, LabSpec, site_link
from gateway.model.sessions import get_session, session_for_mac
from gateway.model.store import connect

pytestmark = pytest.mark.lab

PORTAL = "http://10.42.0.1:8080"


def _second_prefix(prefix: str) -> str:
    base = prefix[3:-1] or "x"
    return f"hs-{(base[:3] if len(base) == 4 else base)}2-"


@pytest.fixture(scope="module")
def second(hq_lab):
    """A second library (its own router, portal, phones) joined to the first lab's HQ as site 1."""
    spec = LabSpec(prefix=_second_prefix(hq_lab.spec.prefix), clients=1, hq_of=hq_lab.spec.prefix, site=1)
    library = Lab(spec)
    library.down(wipe=True)
    try:
        library.up()
        yield library
    finally:
        library.down(wipe=True)


def _login(lab, ns: str, code: str) -> int:
    page = lab.exec(ns, "curl", "-s", "-m", "10", f"{PORTAL}/", timeout=20).stdout
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    out = lab.exec(
        ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "15", f"{PORTAL}/login",
        "-d", f"code={code}&token={token}", timeout=25,
    )  # fmt: skip
    return int(out.stdout.strip() or 0)


def test_a_central_code_works_at_both_libraries_and_hq_acts_on_each(hq_lab, second, gw):
    hq = hq_lab.hq
    hq.add_user("ANGGOTA-PUSAT", "ANGGOTA-PUSAT", {"WISPr-Bandwidth-Max-Down": "4000000"})
    rb = connect(second.config())
    assert _login(hq_lab, hq_lab.spec.client(1), "ANGGOTA-PUSAT") == 303
    assert _login(second, second.spec.client(1), "ANGGOTA-PUSAT") == 303
    a = session_for_mac(gw, hq_lab.client_mac(1))
    b = session_for_mac(rb, second.client_mac(1))
    assert a.kind == b.kind == "central"
    wait_for(lambda: online_from(hq_lab, 1) and online_from(second, 1), 10, "both phones online")

    def realms() -> dict[str, str]:
        out = hq.sql(
            f"SELECT acctsessionid, realm FROM radacct WHERE acctsessionid IN ('{a.sid}', '{b.sid}')"
        )
        return dict(line.split("|") for line in out.splitlines() if line)

    assert wait_for(lambda: len(realms()) == 2 and realms(), 15, "both sessions at HQ") == {
        a.sid: "lab", b.sid: "lab-1",
    }  # fmt: skip

    # HQ throttles library 2's session live and ends library 1's
    near, _far = site_link(1)
    coa = f'Acct-Session-Id = "{b.sid}"\nWISPr-Bandwidth-Max-Down = 1000000\nMessage-Authenticator = 0x00\n'
    secret_b = second.joined_secret_file.read_text().strip()
    out = hq_lab.exec(hq_lab.spec.hq_ns, "radclient", "-x", "-r", "1", "-t", "2", f"{near}:3799", "coa",
                      secret_b, input=coa, timeout=15)  # fmt: skip
    assert "Received CoA-ACK" in out.stdout, out.stdout + out.stderr
    assert get_session(rb, b.sid).down == 1_000_000
    disconnect = f'Acct-Session-Id = "{a.sid}"\nMessage-Authenticator = 0x00\n'
    out = hq_lab.exec(hq_lab.spec.hq_ns, "radclient", "-x", "-r", "1", "-t", "2", f"{WAN_ROUTER}:3799",
                      "disconnect", hq.secret(), input=disconnect, timeout=15)  # fmt: skip
    assert "Received Disconnect-ACK" in out.stdout, out.stdout + out.stderr
    assert get_session(gw, a.sid).end_reason == "admin"
    wait_for(lambda: not online_from(hq_lab, 1), 10, "library 1's phone cut off")
    assert online_from(second, 1)  # library 2's phone stays on, at its new cap
    # library 1's secret does not work for library 2 (each library has its own)
    out = hq_lab.exec(hq_lab.spec.hq_ns, "radclient", "-r", "1", "-t", "1", f"{near}:3799", "disconnect",
                      hq.secret(), input=f'Acct-Session-Id = "{b.sid}"\nMessage-Authenticator = 0x00\n',
                      timeout=15)  # fmt: skip
    assert "Received" not in out.stdout
    assert get_session(rb, b.sid).state == "online"
