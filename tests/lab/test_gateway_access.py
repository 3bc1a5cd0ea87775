"""The firewall in the lab: what a phone reaches before login, after it, and when it cheats.

Real nftables, real Redis, the real gateway daemon; each phone is a namespace. Phones:
c1 logs in and out, c2 stays unauthorized, c3 cheats (spoofs), c4 tries IPv6.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from gateway.lab.lab import LabError
from gateway.lab.probe import admit, fetch, online_from, udp_arrives, wait_for
from gateway.lab.topology import LAN_ROUTER, UPSTREAM_IP, UPSTREAM_IP6, UPSTREAM_WALLED_IP, client_ip6
from gateway.model import commands, keys
from gateway.model.sessions import get_session

pytestmark = pytest.mark.lab


def portal_answer(lab, ns):
    return fetch(lab, ns, f"http://{LAN_ROUTER}:8080/")


def test_unauthorized_web_lands_on_the_portal_and_https_is_reset(lab, gw):
    ns = lab.spec.client(2)
    got = fetch(lab, ns, f"http://{UPSTREAM_IP}/some/page")
    assert got.rc == 0 and not got.upstream
    # the portal answered: a request for any other host is redirected to its splash
    assert got.status == 302 and f"http://{LAN_ROUTER}:8080/" in got.body, "the portal answered"
    assert portal_answer(lab, ns).status == 200, "and the splash itself is served"
    started = time.monotonic()
    https = fetch(lab, ns, f"https://{UPSTREAM_IP}/", extra=("-k",))
    assert https.rc == 7 and time.monotonic() - started < 1.5, "HTTPS refused at once (TCP reset)"


def test_unauthorized_dns_to_another_server_is_answered_by_the_router(lab, gw):
    # the router's dnsmasq knows phones by their DHCP host names; the upstream DNS does not
    # (it answers every name with its own address), so who answered is plain to see
    ns = lab.spec.client(2)
    phone3 = lab.client_ip(lab.spec.client(3))
    answer = lab.exec(ns, sys.executable, "-c", DNS_QUERY, UPSTREAM_IP, "phone3", "udp", check=True)
    assert answer.stdout.strip() == phone3, answer.stdout
    # DNS over TCP waits for login (docs/security.md, "DNS before login"); online, it is answered
    refused = lab.exec(ns, sys.executable, "-c", DNS_QUERY, UPSTREAM_IP, "phone3", "tcp")
    assert refused.returncode != 0, refused.stdout
    _, ack = admit(gw, lab, 2)
    assert ack and ack["ok"]
    answer = lab.exec(ns, sys.executable, "-c", DNS_QUERY, LAN_ROUTER, "phone3", "tcp", check=True)
    assert answer.stdout.strip() == phone3, answer.stdout


def test_unauthorized_udp_and_other_ports_do_not_escape(lab, gw):
    ns = lab.spec.client(2)
    assert udp_arrives(lab, ns, UPSTREAM_IP, port=9999) == 0
    assert udp_arrives(lab, ns, UPSTREAM_IP, port=443) == 0, "QUIC"
    assert fetch(lab, ns, f"http://{UPSTREAM_IP}:5201/").rc != 0


def test_authorized_client_is_online_until_kicked(lab, gw):
    ns = lab.spec.client(1)
    assert not online_from(lab, 1)
    session, ack = admit(gw, lab, 1)
    assert ack and ack["ok"], ack
    assert online_from(lab, 1), "online as soon as the ack came"
    assert udp_arrives(lab, ns, UPSTREAM_IP, port=9998) == 5
    assert not online_from(lab, 2), "the others are not"
    reply = commands.request(gw, "deauthorize", 5, sid=session.sid, reason="kicked")
    assert reply["ok"] and reply["ended"]
    assert not online_from(lab, 1), "back behind the portal at once"
    assert get_session(gw, session.sid).end_reason == "kicked"
    assert udp_arrives(lab, ns, UPSTREAM_IP, port=9998) == 0


def test_session_expires_on_time_and_usage_is_accounted(lab, gw):
    ns = lab.spec.client(1)
    session, ack = admit(gw, lab, 1, minutes=6 / 60)
    assert ack["ok"]
    out = lab.exec(ns, "iperf3", "-c", UPSTREAM_IP, "-p", "5209", "-n", "2M", "-R", "-J", timeout=20)
    assert out.returncode == 0, out.stderr
    used = wait_for(lambda: (s := get_session(gw, session.sid)) and s.bytes_down > 2_000_000 and s,
                    what="the download to be accounted")  # fmt: skip
    assert used.bytes_up > 1_000, "the ACKs went up"
    ended = wait_for(lambda: (s := get_session(gw, session.sid)).state == "ended" and s, timeout=12)
    assert ended.end_reason == "expired" and ended.ended_at - session.expires_at < 2.0
    assert ended.bytes_down >= used.bytes_down
    assert not online_from(lab, 1)


def test_quota_and_idle_end_sessions(lab, gw):
    session, _ = admit(gw, lab, 1, quota=300_000)
    try:
        lab.exec(lab.spec.client(1), "iperf3", "-c", UPSTREAM_IP, "-p", "5209", "-n", "1M", "-R", timeout=10)
    except LabError:
        pass  # shaped to its 4 Mbit/s cap, the transfer outlasts a pass: cut on the way, iperf3 hangs
    ended = wait_for(lambda: (s := get_session(gw, session.sid)).state == "ended" and s, timeout=10)
    assert ended.end_reason == "quota" and not online_from(lab, 1)

    # another phone: the upstream keeps retransmitting to phone 1's address for the cut
    # transfer, and those packets would count as phone 1's activity
    idle, _ = admit(gw, lab, 2)
    idle_timeout = lab.config().gateway.idle_timeout
    gw.hset(keys.session(idle.sid), mapping={"last_active": time.time() - idle_timeout - 5,
                                              "started_at": time.time() - idle_timeout - 60})  # fmt: skip
    ended = wait_for(lambda: (s := get_session(gw, idle.sid)).state == "ended" and s, timeout=10)
    assert ended.end_reason == "idle" and not online_from(lab, 2)


def test_spoofed_addresses_get_nothing(lab, gw):
    victim, cheat = lab.spec.client(1), lab.spec.client(3)
    victim_ip = lab.client_ip(victim)
    _, ack = admit(gw, lab, 1)
    assert ack["ok"]
    # the authorized MAC with an IP that is not its own
    spare = "10.42.0.240"
    lab.exec(victim, "ip", "addr", "add", f"{spare}/24", "dev", "eth0", check=True)
    try:
        assert udp_arrives(lab, victim, UPSTREAM_IP, src=spare) == 0
        assert not fetch(lab, victim, f"http://{UPSTREAM_IP}/", extra=("--interface", spare)).upstream
    finally:
        lab.exec(victim, "ip", "addr", "del", f"{spare}/24", "dev", "eth0")
    # the authorized IP from another MAC
    lab.exec(cheat, "ip", "addr", "add", f"{victim_ip}/32", "dev", "eth0", check=True)
    try:
        assert udp_arrives(lab, cheat, UPSTREAM_IP, src=victim_ip) == 0
    finally:
        lab.exec(cheat, "ip", "addr", "del", f"{victim_ip}/32", "dev", "eth0")
    assert udp_arrives(lab, victim, UPSTREAM_IP) == 5, "the real one still gets through"


def test_ipv6_does_not_escape_before_login_and_works_after(lab, gw):
    ns = lab.spec.client(4)
    lab.exec(ns, "ip", "-6", "addr", "add", f"{client_ip6(4)}/64", "dev", "eth0", "nodad", check=True)
    lab.exec(ns, "ip", "-6", "route", "replace", "default", "via", "2001:db8:42::1", check=True)
    try:
        url = f"http://[{UPSTREAM_IP6}]/"
        assert not fetch(lab, ns, url).upstream
        assert udp_arrives(lab, ns, UPSTREAM_IP6, port=9997) == 0
        assert lab.exec(ns, "busybox", "ping6", "-c", "1", "-W", "1", UPSTREAM_IP6).returncode != 0
        # logged in over IPv4, the phone's IPv6 address is let through once the router has seen it
        _, ack = admit(gw, lab, 4)
        assert ack["ok"] and online_from(lab, 4)
        lab.exec(ns, "busybox", "ping6", "-c", "1", "-W", "1", "2001:db8:42::1")  # the router learns it
        wait_for(lambda: fetch(lab, ns, url).upstream, timeout=8, what="IPv6 to be let through")
        assert udp_arrives(lab, ns, UPSTREAM_IP6, port=9997) == 5
    finally:
        lab.exec(ns, "ip", "-6", "addr", "del", f"{client_ip6(4)}/64", "dev", "eth0")


def test_a_new_address_without_a_lease_gets_the_session_only_by_logging_in_again(lab, gw):
    # a session follows its device to a new lease (tests/lab/test_session_binding.py); an
    # address it merely starts using, with no lease, proves nothing (a clone could do that)
    ns = lab.spec.client(6)
    old, new = lab.client_ip(ns), "10.42.0.230"
    session, _ = admit(gw, lab, 6)
    assert online_from(lab, 6)

    def readdress(ip):
        lab.exec(ns, "ip", "-4", "addr", "flush", "dev", "eth0", check=True)
        lab.exec(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0", check=True)
        lab.exec(ns, "ip", "route", "replace", "default", "via", LAN_ROUTER, check=True)

    try:
        readdress(new)
        lab.exec(lab.spec.gw, "ip", "neigh", "flush", "to", old, "dev", "lan0")
        lab.exec(ns, "busybox", "ping", "-c", "1", "-W", "1", LAN_ROUTER)  # the router hears the new one
        time.sleep(5)  # two passes
        assert get_session(gw, session.sid).ip == old and not online_from(lab, 6), "no lease: no move"
        # a new login from the new address (the voucher code proves the right to the session)
        reply = commands.request(gw, "authorize", 5, sid=session.sid, ip=new)
        assert reply["ok"] and reply["ip"] == new and get_session(gw, session.sid).ip == new
        assert online_from(lab, 6)
        assert udp_arrives(lab, lab.spec.client(1), UPSTREAM_IP, port=9994) == 0, "nobody else got in"
    finally:
        readdress(old)


def test_walled_garden_is_open_without_login(lab, gw):
    ns = lab.spec.client(2)
    got = fetch(lab, ns, "http://perpuseru.id/")
    assert got.upstream and "host perpuseru.id" in got.body
    assert udp_arrives(lab, ns, UPSTREAM_WALLED_IP, port=9996) == 5
    assert not fetch(lab, ns, f"http://{UPSTREAM_IP}/").upstream, "only the walled garden"


def test_the_router_shows_visitors_only_dhcp_dns_and_the_portal(lab, gw):
    ns, gw_ns = lab.spec.client(2), lab.spec.gw
    server = subprocess.Popen(
        ["ip", "netns", "exec", gw_ns, sys.executable, "-c", TCP_LISTEN, "22", "6000"], stdout=subprocess.PIPE
    )  # fmt: skip
    try:
        server.stdout.readline()
        for port in (22, 6000):
            assert fetch(lab, ns, f"http://{LAN_ROUTER}:{port}/", timeout=2).rc == 7, port
        # SSH from the LAN (network.admin_networks, none by default): test_security_net.py
    finally:
        server.kill()
        server.wait()
        server.stdout.close()
    assert portal_answer(lab, ns).rc == 0


DNS_QUERY = """
import socket, struct, sys
server, name, proto = sys.argv[1], sys.argv[2], sys.argv[3]
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0" + struct.pack(">HH", 1, 1)
if proto == "tcp":
    s = socket.create_connection((server, 53), timeout=3); s.sendall(struct.pack(">H", len(q)) + q)
    data = s.recv(2048)[2:]
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); s.sendto(q, (server, 53))
    data = s.recv(2048)
print(socket.inet_ntoa(data[-4:]) if struct.unpack(">H", data[6:8])[0] else "no answer")
"""

TCP_LISTEN = """
import socket, sys, time
socks = []
for port in sys.argv[1:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(port))); s.listen(5); socks.append(s)
print("ready", flush=True)
time.sleep(30)
"""
