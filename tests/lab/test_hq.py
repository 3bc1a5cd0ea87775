"""The program's headquarters in the lab: real FreeRADIUS 3.2 + PostgreSQL 15 in ``<prefix>hq``."""

from __future__ import annotations

import pytest

from gateway.lab.topology import HQ_IP

pytestmark = pytest.mark.lab


def _radclient(lab, ns: str, secret: str, attributes: str, *, kind: str = "auth", port: int = 1812):
    return lab.exec(
        ns,
        "radclient",
        "-x",
        "-r",
        "1",
        "-t",
        "2",
        f"{HQ_IP}:{port}",
        kind,
        secret,
        input=attributes,
        timeout=15,
    )


def test_router_gets_access_accept_for_a_radcheck_user(hq_lab):
    hq = hq_lab.hq
    hq.add_user("ANGGOTA-T1", "rahasia-1", {"Session-Timeout": "3600", "WISPr-Bandwidth-Max-Down": "2000000"})
    ok = _radclient(
        hq_lab, hq_lab.spec.gw, hq.secret(), 'User-Name = "ANGGOTA-T1"\nUser-Password = "rahasia-1"\n'
    )
    assert "Received Access-Accept" in ok.stdout, ok.stdout + ok.stderr
    assert "Session-Timeout = 3600" in ok.stdout
    bad = _radclient(
        hq_lab, hq_lab.spec.gw, hq.secret(), 'User-Name = "ANGGOTA-T1"\nUser-Password = "salah"\n'
    )
    assert "Received Access-Reject" in bad.stdout, bad.stdout + bad.stderr


def test_hq_listens_on_its_lab_address_only(hq_lab):
    out = hq_lab.exec(hq_lab.spec.hq_ns, "ss", "-Htuln", check=True).stdout
    listeners = sorted(line.split()[4] for line in out.splitlines())
    # FreeRADIUS on the HQ address, PostgreSQL on no TCP address at all (unix socket only)
    assert listeners == [f"{HQ_IP}:1812", f"{HQ_IP}:1813"], out


def test_wrong_secret_gets_no_answer(hq_lab):
    hq_lab.hq.add_user("ANGGOTA-T2", "rahasia-2")
    out = _radclient(
        hq_lab, hq_lab.spec.gw, "not-the-secret", 'User-Name = "ANGGOTA-T2"\nUser-Password = "rahasia-2"\n'
    )
    assert "Access-Accept" not in out.stdout, out.stdout


def test_phones_never_reach_hq(hq_lab):
    phone = hq_lab.spec.client(1)
    ping = hq_lab.exec(phone, "ping", "-c", "1", "-W", "1", HQ_IP)
    assert ping.returncode != 0, ping.stdout
    out = _radclient(hq_lab, phone, hq_lab.hq.secret(), 'User-Name = "x"\nUser-Password = "y"\n')
    assert "Received" not in out.stdout, out.stdout
