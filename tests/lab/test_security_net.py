"""Issue 16, the network items: each test performs the attack from a lab phone and counts what got out.

- item 1: a DNS tunnel (TXT answers, 32 parallel queries) from a phone that is not logged in;
- item 6: DHCP starvation (random client MACs) from one phone;
- item 11: packets with forged (non-LAN) sources, which used to make the router send ICMP
  errors and DNS answers to the forged address over the WAN;
- item 12: hand edits of the ruleset (delete the table, flush a chain, delete the final
  reject, ``nft flush ruleset`` with the gateway dead) must close, not open;
- items 7 and 14: SSH and the desk are not reachable from a visitor's phone by default.

Every attack loop is bounded in count and time. Bounds asserted here are the configured ones
(docs/security.md); the numbers measured are printed for docs/security.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from gateway.firewall.ruleset import DHCP_TOTAL, DHCP_TOTAL_BURST
from gateway.lab.lab import LabError
from gateway.lab.probe import admit, fetch, online_from, wait_for
from gateway.lab.topology import (
    LAN_ROUTER,
    LAN_ROUTER6,
    TUNNEL_PORT,
    UPSTREAM_IP,
    UPSTREAM_IP6,
    client_ip6,
)

pytestmark = pytest.mark.lab

PYTHON = sys.executable


def _popen(ns: str, *argv: str) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 30) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
        return out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def tunnel_endpoint(lab):
    """The DNS-tunnel endpoint in the lab's internet (the upstream DNS forwards tunnel.test to it)."""
    proc = _popen(lab.spec.up, PYTHON, "-m", "gateway.lab.dnstunnel", "serve", "300")
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield f"127.0.0.1:{TUNNEL_PORT}"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def _pull(lab, ns: str, seconds: float, parallel: int) -> dict:
    return _pull_from(lab, ns, LAN_ROUTER, seconds, parallel)


def _pull_from(lab, ns: str, server: str, seconds: float, parallel: int) -> dict:
    out = lab.exec(ns, PYTHON, "-m", "gateway.lab.dnstunnel", "pull", server, str(seconds), str(parallel),
                   timeout=seconds + 20, check=True)  # fmt: skip
    return json.loads(out.stdout)


def _iperf_down(lab, index: int, port: int, seconds: int = 6) -> float:
    out = lab.exec(lab.spec.client(index), "iperf3", "-c", UPSTREAM_IP, "-p", str(port), "-t", str(seconds),
                   "-O", "1", "-R", "-J", timeout=seconds + 15, check=True)  # fmt: skip
    return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"]


# -- item 1: DNS before login --------------------------------------------------------------------


def test_a_dns_tunnel_before_login_gets_a_few_kilobytes_per_second(lab, gw, tunnel_endpoint):
    config = lab.config()
    per_device = config.dhcp.dns_before_login  # bytes/s
    burst = per_device * 4
    tunnel = lab.spec.client(2)
    # the tunnel works at all (one answer of ~1 kB comes back), so the bound below is the firewall's
    assert _pull(lab, tunnel, 1, 1)["answers"] >= 1
    time.sleep(burst / per_device + 1)  # the first pull used some of the burst: let it refill

    seconds = 8
    got = _pull(lab, tunnel, seconds, 32)
    rate = got["bytes"] / seconds
    print(f"\nDNS tunnel, 32 parallel TXT queries for {seconds}s, not logged in: {got} = {rate:.0f} B/s")
    # token bucket: the burst, then the rate; one answer may straddle the edge
    assert got["bytes"] <= burst + per_device * seconds + 1100, got
    assert got["sent"] > 1000, "the attack really ran (many queries sent, most unanswered)"

    # over IPv6 the same bound holds (per address; the per-MAC query rate caps many addresses)
    lab.exec(tunnel, "ip", "-6", "addr", "add", f"{client_ip6(2)}/64", "dev", "eth0", "nodad", check=True)
    try:
        got6 = _pull_from(lab, tunnel, LAN_ROUTER6, 4, 16)
    finally:
        lab.exec(tunnel, "ip", "-6", "addr", "del", f"{client_ip6(2)}/64", "dev", "eth0")
    print(f"the same over IPv6, 16 parallel for 4s: {got6}")
    assert 0 < got6["bytes"] <= burst + per_device * 4 + 1100, got6

    # DNS over TCP (the tunnel's wide pipe) is refused before login
    tcp = lab.exec(tunnel, PYTHON, "-c", _DNS_TCP, LAN_ROUTER, timeout=10)
    assert tcp.stdout.strip() == "refused", tcp.stdout + tcp.stderr


def test_a_dns_tunnel_does_not_hurt_a_paying_phone(lab, gw, tunnel_endpoint):
    _, ack = admit(gw, lab, 1)
    assert ack and ack["ok"]
    alone = _iperf_down(lab, 1, 5210)
    attack = _popen(lab.spec.client(2), PYTHON, "-m", "gateway.lab.dnstunnel", "pull", LAN_ROUTER, "9", "32")
    try:
        time.sleep(1)
        attacked = _iperf_down(lab, 1, 5210)
    finally:
        got = json.loads(_finish(attack) or "{}")
    print(f"\npaying phone: {alone / 1e6:.2f} Mbit/s alone, {attacked / 1e6:.2f} under a DNS tunnel {got}")
    assert attacked >= 0.85 * alone, (alone, attacked)


def test_an_online_phone_resolves_without_the_before_login_limits(lab, gw, tunnel_endpoint):
    _, ack = admit(gw, lab, 1)
    assert ack and ack["ok"]
    got = _pull(lab, lab.spec.client(1), 2, 4)
    assert got["bytes"] > 2 * 4 * lab.config().dhcp.dns_before_login, got


# -- item 11: forged sources ---------------------------------------------------------------------


def test_forged_sources_get_no_answer_out_over_the_wan(lab, gw):
    ns = lab.spec.client(2)
    router_mac = _mac(lab, lab.spec.gw, "lan0")
    listeners = [
        _popen(lab.spec.up, PYTHON, "-c", _COUNT_ICMP, "4", "4"),
        _popen(lab.spec.up, PYTHON, "-c", _COUNT_ICMP, "6", "4"),
        _popen(lab.spec.up, PYTHON, "-c", _COUNT_UDP, "40000", "4"),
    ]
    try:
        for listener in listeners:
            assert listener.stdout.readline().strip() == "ready"
        forged = (router_mac, UPSTREAM_IP, UPSTREAM_IP6, LAN_ROUTER, LAN_ROUTER6)
        lab.exec(ns, PYTHON, "-c", _SEND_FORGED, *forged, timeout=30, check=True)
        icmp4, icmp6, dns = (int(_finish(listener).strip() or -1) for listener in listeners)
    finally:
        for listener in listeners:
            _finish(listener, 1) if listener.poll() is None else None
    print(f"\nforged sources: ICMP errors out {icmp4} (v4) {icmp6} (v6), DNS answers out {dns}")
    assert (icmp4, icmp6, dns) == (0, 0, 0)
    assert fetch(lab, ns, f"http://{UPSTREAM_IP}/").status == 302, "the phone's own traffic still works"


# -- item 6: DHCP starvation ---------------------------------------------------------------------


def test_dhcp_starvation_from_one_phone_takes_a_handful_of_leases(lab, gw):
    config = lab.config()
    ns = lab.spec.client(2)
    try:
        seconds = 8
        out = lab.exec(ns, PYTHON, "-c", _DHCP_STARVE, "same", str(seconds), timeout=seconds + 30, check=True)
        same = json.loads(out.stdout)
        # per MAC: a burst, then per_device_per_minute packets; a lease takes two of them
        bound = (max(4, config.dhcp.per_device_per_minute) + config.dhcp.per_device_per_minute) // 2 + 1
        print(f"\nDHCP starvation, one radio MAC, random client ids, {seconds}s: "
              f"{same['discovers']} DISCOVERs, {len(same['leases'])} leases (bound {bound})")  # fmt: skip
        assert same["discovers"] > 100 and len(same["leases"]) <= bound, same

        time.sleep(1)
        seconds = 3  # bounded by the LAN-wide limit only: longer would empty the lab's pool of 100
        out = lab.exec(
            ns, PYTHON, "-c", _DHCP_STARVE, "random", str(seconds), timeout=seconds + 30, check=True
        )
        rnd = json.loads(out.stdout)
        total_bound = (DHCP_TOTAL_BURST + DHCP_TOTAL * (seconds + 2)) // 2 + 1
        print(f"DHCP starvation, a random source MAC per packet (needs an open L2), {seconds}s: "
              f"{rnd['discovers']} DISCOVERs, {len(rnd['leases'])} leases (bound {total_bound})")  # fmt: skip
        assert len(rnd["leases"]) <= total_bound, rnd

        # a new phone still gets an address (once the LAN-wide bucket has a token again)
        time.sleep(2)
        fresh = lab.exec(lab.spec.client(3), PYTHON, "-c", _DHCP_OFFER, timeout=20)
        assert fresh.stdout.strip().startswith("10.42.0."), fresh.stdout + fresh.stderr
    finally:
        _forget_leases(lab, config, prefix="02:5e:")


def test_short_leases_until_login_long_ones_after(lab, gw):
    config = lab.config()
    _, ack = admit(gw, lab, 1)
    assert ack and ack["ok"]
    mac_file = config.dhcp.hosts_dir / lab.client_mac(1).replace(":", "-")
    wait_for(mac_file.exists, timeout=5, what="the gateway to give phone 1 a long lease")
    time.sleep(0.5)  # dnsmasq reads the new file through inotify
    online = lab.exec(lab.spec.client(1), PYTHON, "-c", _DHCP_OFFER, timeout=20, check=True).stdout.split()
    new_phone = "02:5f:" + os.urandom(4).hex(":")  # never logged in (dnsmasq remembers those that did)
    visitor = lab.exec(lab.spec.client(3), PYTHON, "-c", _DHCP_OFFER, new_phone, timeout=20, check=True)
    visitor = visitor.stdout.split()
    print(f"\nDHCP lease offered: online phone {online}, phone not logged in {visitor}")
    assert int(online[1]) == config.dhcp.online_lease_time and int(visitor[1]) == config.dhcp.lease_time


def _forget_leases(lab, config, prefix: str) -> None:
    """Give the attack's leases back (dnsmasq keeps them for the lease time otherwise)."""
    lab.stop("dnsmasq")
    path = config.dhcp.lease_file
    if path.exists():
        kept = [
            line
            for line in path.read_text().splitlines()
            if not line.split()[1:2] == [] and not line.split()[1].startswith(prefix)
        ]
        path.write_text("".join(f"{line}\n" for line in kept))
    lab.start("dnsmasq")


# -- item 12: fail closed ------------------------------------------------------------------------


def _escape_while(lab, ns: str, edit, *, port: int, dst: str = UPSTREAM_IP, seconds: float = 3.0) -> int:
    """Stream UDP from ``ns`` to the upstream for ``seconds`` while ``edit()`` runs; return arrivals."""
    listener = _popen(
        lab.spec.up, PYTHON, "-c", _COUNT_UDP, str(port), str(seconds + 2), "::" if ":" in dst else ""
    )
    try:
        assert listener.stdout.readline().strip() == "ready"
        sender = _popen(ns, PYTHON, "-c", _UDP_STREAM, dst, str(port), str(seconds))
        time.sleep(0.3)
        edit()
        _finish(sender, seconds + 10)
        return int(_finish(listener, seconds + 10).strip() or -1)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()


def _nft(lab, *args: str) -> None:
    lab.exec(lab.spec.gw, "nft", *args, check=True)


def test_deleting_or_flushing_our_table_closes_the_lan(lab, gw):
    visitor = lab.spec.client(2)
    _, ack = admit(gw, lab, 1)
    assert ack and ack["ok"]

    def delete_final_reject():
        listing = json.loads(lab.exec(lab.spec.gw, "nft", "-a", "-j", "list", "chain", "inet", "hotspot",
                                      "from_lan", check=True).stdout)  # fmt: skip
        handles = [item["rule"]["handle"] for item in listing["nftables"] if "rule" in item]
        _nft(lab, "delete", "rule", "inet", "hotspot", "from_lan", "handle", str(handles[-1]))

    edits = {
        "delete table": lambda: _nft(lab, "delete", "table", "inet", "hotspot"),
        "flush chain from_lan": lambda: _nft(lab, "flush", "chain", "inet", "hotspot", "from_lan"),
        "delete the final reject": delete_final_reject,
        "flush table": lambda: _nft(lab, "flush", "table", "inet", "hotspot"),
    }
    for port, (what, edit) in enumerate(edits.items(), start=9331):
        got = _escape_while(lab, visitor, edit, port=port)
        print(f"\n{what} (gateway running): {got} datagrams of a phone not logged in got out")
        assert got == 0, what
        # the gateway puts the table back at its next pass, and the paying phone is online again
        wait_for(lambda: online_from(lab, 1), timeout=10, what=f"the table back after {what}")


def test_flush_ruleset_with_the_gateway_dead_stays_closed(lab, gw):
    visitor = lab.spec.client(2)
    lab.exec(visitor, "ip", "-6", "addr", "add", f"{client_ip6(2)}/64", "dev", "eth0", "nodad", check=True)
    lab.exec(visitor, "ip", "-6", "route", "replace", "default", "via", LAN_ROUTER6, check=True)
    try:
        lab.stop("gateway")
        got4 = _escape_while(lab, visitor, lambda: _nft(lab, "flush", "ruleset"), port=9341)
        got6 = _escape_while(lab, visitor, lambda: None, port=9342, dst=UPSTREAM_IP6)
        print(f"\nnft flush ruleset, gateway dead: {got4} (v4) and {got6} (v6) datagrams got out")
        assert (got4, got6) == (0, 0)
    finally:
        lab.exec(visitor, "ip", "-6", "addr", "del", f"{client_ip6(2)}/64", "dev", "eth0")
        lab._ensure_nat()  # the lab router's own NAT table went with the flush
        lab.start("gateway")


# -- items 7 and 14: the router's admin doors -------------------------------------------------------


def test_ssh_and_the_desk_are_not_open_to_a_visitor_with_an_admin_looking_address(lab, gw):
    ns = lab.spec.client(2)
    server = _popen(lab.spec.gw, PYTHON, "-c", _TCP_LISTEN, "22")
    try:
        assert server.stdout.readline().strip() == "ready"
        lab.exec(ns, "ip", "addr", "add", "10.42.0.5/24", "dev", "eth0", check=True)
        try:
            # 10.42.0.5 was inside the lab's (and a typical library's) admin_networks
            ssh = fetch(lab, ns, f"http://{LAN_ROUTER}:22/", timeout=2, extra=("--interface", "10.42.0.5"))
            assert ssh.rc == 7, "refused: no SSH from the visitors' LAN by default"
        finally:
            lab.exec(ns, "ip", "addr", "del", "10.42.0.5/24", "dev", "eth0")
    finally:
        server.kill()
        server.wait()
        server.stdout.close()
    desk = fetch(lab, ns, f"http://{LAN_ROUTER}:8080/desk/login")
    assert desk.status == 403 and "desk.networks" in desk.body and 'name="password"' not in desk.body
    # the desk PC (its reserved address in desk.networks) still has its desk, also after
    # earlier tests logged it in (its online-lease file carries the reservation)
    pc = fetch(lab, lab.spec.client(lab.spec.clients), f"http://{LAN_ROUTER}:8080/desk/login")
    assert pc.status == 200 and 'name="password"' in pc.body, (
        "the desk PC still has its desk",
        lab.exec(lab.spec.client(lab.spec.clients), "ip", "-4", "-o", "addr").stdout,
    )


def _mac(lab, ns: str, ifname: str) -> str:
    out = lab.exec(ns, "ip", "-j", "link", "show", ifname, check=True)
    return json.loads(out.stdout)[0]["address"]


# -- programs run inside the lab's namespaces --------------------------------------------------------

_DNS_TCP = """
import socket, struct, sys
q = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\\x06phone3\\x00" + struct.pack(">HH", 1, 1)
try:
    s = socket.create_connection((sys.argv[1], 53), timeout=3)
    s.sendall(struct.pack(">H", len(q)) + q)
    print("answered" if s.recv(2048) else "refused")
except OSError:
    print("refused")
"""

_COUNT_ICMP = """
import select, socket, sys, time
v6 = sys.argv[1] == "6"
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                  socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
print("ready", flush=True)
deadline, got = time.monotonic() + float(sys.argv[2]), 0
while (left := deadline - time.monotonic()) > 0:
    if select.select([s], [], [], left)[0]:
        data = s.recv(4096)
        if (v6 and data[0] in (1, 3, 4)) or (not v6 and data[(data[0] & 15) * 4] in (3, 11, 12)):
            got += 1  # an ICMP error (v4: the IP header comes with a raw socket's data)
print(got)
"""

_COUNT_UDP = """
import select, socket, sys, time
v6 = len(sys.argv) > 3 and sys.argv[3] == "::"
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("::" if v6 else "0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
deadline, got = time.monotonic() + float(sys.argv[2]), 0
while (left := deadline - time.monotonic()) > 0:
    if select.select([s], [], [], left)[0]:
        s.recv(4096); got += 1
print(got)
"""

_UDP_STREAM = """
import socket, sys, time
dst, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM)
deadline = time.monotonic() + seconds
for i in range(int(seconds * 200)):
    if time.monotonic() > deadline:
        break
    try:
        s.sendto(b"escape?%d" % i, (dst, port))
    except OSError:
        pass
    time.sleep(0.005)
"""

_SEND_FORGED = """
import sys
from scapy.all import DNS, DNSQR, UDP, Ether, IP, IPv6, conf, sendp
conf.verb = 0
router_mac, up4, up6, lan4, lan6 = sys.argv[1:6]
eth = Ether(dst=router_mac)
packets = []
for i in range(20):
    # forged as the upstream host: an ICMP error (or a DNS answer) for these used to go out over the WAN
    packets.append(eth / IP(src=up4, dst=up4) / UDP(sport=40001, dport=9321) / (b"covert%02d" % i))
    packets.append(eth / IPv6(src=up6, dst=up6) / UDP(sport=40001, dport=9321) / (b"covert%02d" % i))
    query = DNS(rd=1, qd=DNSQR(qname="phone3"))
    packets.append(eth / IP(src=up4, dst=lan4) / UDP(sport=40000, dport=53) / query)
    packets.append(eth / IP(src=up4, dst="198.51.100.9", ttl=1) / UDP(sport=40001, dport=9321))  # TTL
sendp(packets, iface="eth0", inter=0.01)
"""

_DHCP_STARVE = """
import json, os, sys, time
from scapy.all import BOOTP, DHCP, IP, UDP, AsyncSniffer, Ether, conf, get_if_hwaddr, sendp
conf.verb = 0
mode, seconds = sys.argv[1], float(sys.argv[2])
own = get_if_hwaddr("eth0")
pending, leases = {}, {}

def mac():
    return "02:5e:" + ":".join("%02x" % b for b in os.urandom(4))

def packet(src, chaddr, xid, options):
    return (Ether(src=src, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
            / UDP(sport=68, dport=67)
            / BOOTP(chaddr=bytes.fromhex(chaddr.replace(":", "")), xid=xid, flags=0x8000)
            / DHCP(options=options + ["end"]))

def on_reply(p):
    if DHCP not in p or p[BOOTP].xid not in pending:
        return
    kind = dict(o for o in p[DHCP].options if isinstance(o, tuple) and len(o) == 2).get("message-type")
    src, chaddr = pending[p[BOOTP].xid]
    if kind == 2:  # OFFER: take it
        server = p[IP].src
        sendp(packet(src, chaddr, p[BOOTP].xid, [("message-type", "request"),
              ("requested_addr", p[BOOTP].yiaddr), ("server_id", server)]), iface="eth0")
    elif kind == 5:  # ACK: one more address gone from the pool
        leases[chaddr] = p[BOOTP].yiaddr

sniffer = AsyncSniffer(iface="eth0", filter="udp and dst port 68", prn=on_reply, store=False)
sniffer.start()
time.sleep(0.5)
deadline, sent = time.monotonic() + seconds, 0
for xid in range(1, 2001):
    if time.monotonic() > deadline:
        break
    chaddr = mac()
    src = own if mode == "same" else chaddr
    pending[xid] = (src, chaddr)
    sendp(packet(src, chaddr, xid, [("message-type", "discover")]), iface="eth0")
    sent += 1
    time.sleep(0.01)
time.sleep(1.5)
sniffer.stop()
print(json.dumps({"discovers": sent, "leases": leases}))
"""

_DHCP_OFFER = """
import os, sys
from scapy.all import BOOTP, DHCP, IP, UDP, Ether, conf, get_if_hwaddr, srp1
conf.verb = 0
conf.checkIPaddr = False
own = sys.argv[1] if len(sys.argv) > 1 else get_if_hwaddr("eth0")  # a MAC of its own: a new phone
p = (Ether(src=own, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
     / UDP(sport=68, dport=67) / BOOTP(chaddr=bytes.fromhex(own.replace(":", "")), xid=0x4242, flags=0x8000)
     / DHCP(options=[("message-type", "discover"), "end"]))
r = srp1(p, iface="eth0", timeout=5)
lease = dict(o for o in r[DHCP].options if isinstance(o, tuple) and len(o) == 2).get("lease_time") if r else 0
print(r[BOOTP].yiaddr if r else "no offer", lease)
"""

_TCP_LISTEN = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(5)
print("ready", flush=True)
time.sleep(20)
"""

assert LabError  # re-exported for tests that catch lab failures
