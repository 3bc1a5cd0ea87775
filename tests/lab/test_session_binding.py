"""Attacks on an online phone's session, performed in the lab (issue 16, items 3, 4, 10 and 13).

Each test performs the attack from a phone namespace (scapy for forged ARP/NDP frames, a
second phone cloning a MAC, quick logout/login cycles, a logout while the gateway is
down) and counts what got through: the victim's ping loss, the addresses in the nft sets,
bytes counted against bytes moved. Every loop and every traffic burst is bounded.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from gateway.firewall.enforce import read_kernel
from gateway.firewall.nft import Nft
from gateway.lab.probe import admit, fetch, online_from, udp_arrives, wait_for
from gateway.lab.topology import LAN_ROUTER, LAN_ROUTER6, UPSTREAM_IP, UPSTREAM_IP6, client_ip6
from gateway.model import commands
from gateway.model.sessions import get_session
from gateway.names import AUTH_SET4, AUTH_SET6, DOWN_SET6

pytestmark = pytest.mark.lab

PORTAL = f"http://{LAN_ROUTER}:8080"
PINGS, PING_EVERY = 40, 0.25  # the victim's probe of its own service: 10 s, bounded


def start_pings(lab, ns: str, dst: str = UPSTREAM_IP) -> subprocess.Popen:
    """Start the victim's bounded ping (``PINGS`` echo requests) to ``dst``."""
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, "busybox", "ping", "-q", "-i", str(PING_EVERY), "-c", str(PINGS),
         "-W", "2", dst],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def lost(ping: subprocess.Popen) -> int:
    """Wait for the ping and return how many echo requests went unanswered."""
    try:
        out, _ = ping.communicate(timeout=PINGS * PING_EVERY + 15)
    except subprocess.TimeoutExpired:
        ping.kill()
        out, _ = ping.communicate()
    match = re.search(r"(\d+) packets transmitted, (\d+) packets received", out)
    assert match, out
    return int(match[1]) - int(match[2])


def router_mac(lab) -> str:
    return lab.exec(lab.spec.gw, "cat", "/sys/class/net/lan0/address", check=True).stdout.strip()


def forge(lab, ns: str, script: str, *args: str) -> None:
    """Run a scapy ``script`` (frames sent on eth0, a bounded count) inside phone ``ns``."""
    out = lab.exec(ns, sys.executable, "-c", FORGE_HEADER + script, *args, timeout=30)
    assert out.returncode == 0, out.stderr


def keys_in(lab, set_name: str) -> set[tuple[str, ...]]:
    """Return the element keys of ``set_name`` in the router's table."""
    return {e.key for e in read_kernel(Nft(lab.spec.gw)).elements if e.set == set_name}


def passes(seconds: float = 5.0) -> None:
    """Let the gateway run a couple of reconcile passes (2 s apart in the lab)."""
    time.sleep(seconds)


FORGE_HEADER = """
import sys
from scapy.all import ARP, Ether, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr
from scapy.all import IPv6, get_if_hwaddr, sendp
me = get_if_hwaddr("eth0")
def send(frame):
    sendp(frame, iface="eth0", verbose=False)
"""

# "victim's address is at my MAC" and "spare address is at the victim's MAC", as replies
# and as requests (a request to the router makes the kernel create the sender's entry),
# all sent from the attacker's own MAC: the neighbour-table poisoning of item 4
ARP_POISON = """
victim_mac, victim_ip, spare, rmac, rip = sys.argv[1:6]
for _ in range(2):
    send(Ether(src=me, dst=rmac) / ARP(op=2, hwsrc=me, psrc=victim_ip, hwdst=rmac, pdst=rip))
    send(Ether(src=me, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=victim_mac, psrc=spare, pdst=rip))
    send(Ether(src=me, dst=rmac) / ARP(op=2, hwsrc=victim_mac, psrc=spare, hwdst=rmac, pdst=rip))
"""

# "the attacker-chosen address X is at the victim's MAC" (NS from X and an unsolicited NA for
# X) and "the victim's own address is at my MAC", from the attacker's own MAC
NDP_POISON = """
victim_mac, victim_ip6, chosen, router_mac, router_ip6 = sys.argv[1:6]
for _ in range(2):
    send(Ether(src=me, dst=router_mac) / IPv6(src=chosen, dst=router_ip6, hlim=255)
         / ICMPv6ND_NS(tgt=router_ip6) / ICMPv6NDOptSrcLLAddr(lladdr=victim_mac))
    send(Ether(src=me, dst=router_mac) / IPv6(src=chosen, dst=router_ip6, hlim=255)
         / ICMPv6ND_NA(tgt=chosen, R=0, S=0, O=1) / ICMPv6NDOptDstLLAddr(lladdr=victim_mac))
    send(Ether(src=me, dst=router_mac) / IPv6(src=victim_ip6, dst=router_ip6, hlim=255)
         / ICMPv6ND_NA(tgt=victim_ip6, R=0, S=0, O=1) / ICMPv6NDOptDstLLAddr(lladdr=me))
"""


def test_arp_poisoning_from_a_visitors_own_mac_moves_nothing_and_cuts_nobody_off(lab, gw):
    victim, cheat = lab.spec.client(1), lab.spec.client(3)
    victim_ip, victim_mac, spare = lab.client_ip(victim), lab.client_mac(1), "10.42.0.240"
    lab.exec(victim, "busybox", "ping", "-c", "1", "-W", "1", LAN_ROUTER)  # as its visit to the portal does
    session, ack = admit(gw, lab, 1)
    assert ack["ok"]
    ping = start_pings(lab, victim)
    time.sleep(1)
    forge(lab, cheat, ARP_POISON, victim_mac, victim_ip, spare, router_mac(lab), LAN_ROUTER)
    missed = lost(ping)
    print(f"item 4 (ARP): the victim lost {missed} of {PINGS} pings")
    assert missed <= 1, f"the victim lost {missed} of {PINGS} pings"
    assert get_session(gw, session.sid).ip == victim_ip, "the session stayed where the phone is"
    assert keys_in(lab, AUTH_SET4) == {(victim_mac, victim_ip)}, "no address the attacker named"
    pinned = lab.exec(lab.spec.gw, "ip", "neigh", "show", victim_ip, "dev", "lan0").stdout
    assert victim_mac in pinned and "PERMANENT" in pinned, pinned
    assert udp_arrives(lab, cheat, UPSTREAM_IP, port=9993) == 0, "and the attacker got nothing"


def test_ndp_poisoning_authorizes_no_attacker_chosen_ipv6_address(lab, gw):
    victim, cheat = lab.spec.client(4), lab.spec.client(3)
    victim_mac, own6, chosen = lab.client_mac(4), client_ip6(4), "2001:db8:42::bad:1"
    lab.exec(victim, "ip", "-6", "addr", "add", f"{own6}/64", "dev", "eth0", "nodad", check=True)
    lab.exec(victim, "ip", "-6", "route", "replace", "default", "via", LAN_ROUTER6, check=True)
    try:
        _, ack = admit(gw, lab, 4)
        assert ack["ok"]
        lab.exec(victim, "busybox", "ping6", "-c", "1", "-W", "1", LAN_ROUTER6)  # the router sees it
        wait_for(lambda: (victim_mac, own6) in keys_in(lab, AUTH_SET6), timeout=10,
                 what="the phone's own IPv6 address to be verified and let through")  # fmt: skip
        ping = start_pings(lab, victim, dst=UPSTREAM_IP6)
        forge(lab, cheat, NDP_POISON, victim_mac, own6, chosen, router_mac(lab), LAN_ROUTER6)
        passes()
        missed = lost(ping)
        print(f"item 4 (NDP): the victim lost {missed} of {PINGS} IPv6 pings")
        table = lab.exec(lab.spec.gw, "ip", "-6", "neigh", "show", "dev", "lan0").stdout
        assert chosen in table, "the forged entry is in the kernel's table (the attack reached it)"
        assert keys_in(lab, AUTH_SET6) == {(victim_mac, own6)}, "only the phone's own address"
        assert (chosen,) not in keys_in(lab, DOWN_SET6)
        assert missed <= 1, f"the victim lost {missed} of {PINGS} IPv6 pings"
    finally:
        lab.exec(victim, "ip", "-6", "addr", "del", f"{own6}/64", "dev", "eth0")


def test_a_mac_clone_with_its_own_address_does_not_take_the_session_over(lab, gw):
    victim, clone = lab.spec.client(1), lab.spec.client(5)
    victim_ip, victim_mac, clone_mac = lab.client_ip(victim), lab.client_mac(1), lab.client_mac(5)
    clone_ip = lab.client_ip(clone)
    session, ack = admit(gw, lab, 1)
    assert ack["ok"]
    lab.stop("dhcp-c5")
    lab.exec(clone, "ip", "link", "set", "eth0", "address", victim_mac, check=True)
    try:
        # the clone asks the portal (from its own address) and gets a lease of its own for the MAC
        got = fetch(lab, clone, f"http://{LAN_ROUTER}:8080/online")
        assert got.status in (200, 302)
        script = lab.dir / "udhcpc.script"
        lab.exec(clone, "udhcpc", "-n", "-q", "-i", "eth0", "-s", str(script), "-r", "10.42.0.191",
                 "-t", "3", "-T", "1", "-x", "0x3d:ff00000005", timeout=20)  # fmt: skip
        clone_ip = lab.client_ip(clone) or clone_ip
        lab.exec(clone, "busybox", "ping", "-c", "2", "-W", "1", LAN_ROUTER)
        passes()
        assert get_session(gw, session.sid).ip == victim_ip, "the victim still answers there: no move"
        assert keys_in(lab, AUTH_SET4) == {(victim_mac, victim_ip)}
        assert udp_arrives(lab, clone, UPSTREAM_IP, port=9992) == 0, "the clone's own address gets nothing"
        # a voucher login from the clone's address: the portal asks, the gateway probes and refuses
        assert commands.request(gw, "present", 5, sid=session.sid)["present"] is True
        refused = commands.request(gw, "authorize", 5, sid=session.sid, ip=clone_ip)
        assert not refused["ok"] and refused["present"], refused
        assert get_session(gw, session.sid).ip == victim_ip
        assert online_from(lab, 1), "the victim is still online"
    finally:
        lab.exec(clone, "ip", "link", "set", "eth0", "address", clone_mac)
        lab.exec(clone, "ip", "-4", "addr", "flush", "dev", "eth0")
        lab.start("dhcp-c5")
        # the router heard the clone's addresses at the victim's MAC: let it hear phone 5 again
        for ip in {clone_ip, lab.client_ip(clone)}:
            lab.exec(lab.spec.gw, "ip", "neigh", "flush", "to", ip, "dev", "lan0")
        lab.exec(clone, "busybox", "ping", "-c", "1", "-W", "1", LAN_ROUTER)


def test_a_renewed_lease_moves_the_session_once_the_old_address_is_gone(lab, gw):
    # phone 3 (not the desk PC, the lab's last phone: its reserved address never moves)
    ns = lab.spec.client(3)
    old, new = lab.client_ip(ns), "10.42.0.190"  # free, and in the DHCP range
    session, _ = admit(gw, lab, 3)
    script = str(lab.dir / "udhcpc.script")
    lab.stop("dhcp-c3")
    try:
        # another client id: dnsmasq grants the asked-for address on a new lease for the MAC
        lab.exec(ns, "udhcpc", "-n", "-q", "-i", "eth0", "-s", script, "-r", new, "-t", "3", "-T", "1",
                 "-x", "0x3d:ff00000003", check=True, timeout=20)  # fmt: skip
        assert lab.client_ip(ns) == new
        wait_for(lambda: get_session(gw, session.sid).ip == new, timeout=10, what="the session to follow")
        assert online_from(lab, 3) and get_session(gw, session.sid).state == "online"
    finally:
        lab.exec(ns, "udhcpc", "-n", "-q", "-i", "eth0", "-s", script, "-r", old, "-t", "3", "-T", "1",
                 timeout=20)  # fmt: skip
        lab.start("dhcp-c3")


UDP_BURST = """
import socket, sys, time
dst, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(count):
    s.sendto(b"x" * size, (dst, 9990))
    time.sleep(0.002)
"""


def test_logout_login_cycles_leave_no_byte_uncounted(lab, gw):
    ns, cycles, count, size = lab.spec.client(2), 25, 100, 500
    wire = count * (size + 28)  # each datagram's IPv4 packet: payload + UDP and IP headers
    counted = 0
    started = time.monotonic()
    for _ in range(cycles):
        session, ack = admit(gw, lab, 2)
        assert ack["ok"]
        lab.exec(ns, sys.executable, "-c", UDP_BURST, UPSTREAM_IP, str(count), str(size), check=True)
        reply = commands.request(gw, "deauthorize", 5, sid=session.sid, reason="logout")
        assert reply["ok"] and reply["ended"], reply
        counted += get_session(gw, session.sid).bytes_up
    took = time.monotonic() - started
    print(f"item 10: {cycles} cycles in {took:.1f} s, {counted} of {cycles * wire} bytes counted")
    # nothing escapes; the first packet of each new flow is counted twice (the nat chain's
    # lookup in auth4 counts too: one datagram per cycle here), so allow that much over
    assert cycles * wire <= counted <= cycles * (wire + size + 28), (counted, cycles * wire)


def test_a_logout_while_the_gateway_is_down_is_told_truthfully_and_applied_on_return(lab, gw):
    session, ack = admit(gw, lab, 2)
    assert ack["ok"] and online_from(lab, 2)
    lab.stop("gateway")
    count, size = 100, 500
    try:
        # the device keeps moving data while nobody counts: it must still reach its record
        lab.exec(lab.spec.client(2), sys.executable, "-c", UDP_BURST, UPSTREAM_IP, str(count), str(size),
                 check=True)  # fmt: skip
        status = fetch(lab, lab.spec.client(2), f"{PORTAL}/status?lang=en").body
        token = re.search(r'name="token" value="([^"]+)"', status)[1]
        form = ("-d", f"token={token}", f"{PORTAL}/logout?lang=en")
        out = lab.exec(
            lab.spec.client(2), "curl", "-s", "-m", "8", "-o", "/dev/null", "-w", "%{redirect_url}", *form
        )
        assert "bye=2" in out.stdout, out.stdout
        page = fetch(lab, lab.spec.client(2), f"{PORTAL}/?bye=2&lang=en").body
        assert "has not confirmed it yet" in page
        assert get_session(gw, session.sid).state == "ended"
    finally:
        lab.start("gateway")
    wait_for(lambda: not online_from(lab, 2), timeout=10, what="the device to be cut off on return")
    ended = get_session(gw, session.sid)
    print(f"item 13: {ended.bytes_up} bytes up counted for a burst of {count * (size + 28)} on the wire")
    assert ended.bytes_up >= count * (size + 28), "what it moved while the gateway was down is counted"
