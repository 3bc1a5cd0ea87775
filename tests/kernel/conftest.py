"""A bare router namespace for kernel tests: ``<prefix>k1`` with a veth ``lan0`` in it.

Smaller than the lab (no daemons): enough to apply tc trees, read them back and push
a few packets through ``lan0``. Created and deleted by the fixture, even on failure.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway import config as config_mod
from gateway.lab.topology import lab_config_text

TEST_PREFIX = os.environ.get("HOTSPOT_TEST_PREFIX", "hs-t-")


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


@pytest.fixture
def router_ns():
    """Yield the name of a fresh namespace holding lan0 (10.42.0.1/24) <-> peer0."""
    if os.geteuid() != 0:
        pytest.skip("kernel tests need root")
    ns = f"{TEST_PREFIX}k1"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)  # leftovers of a crash
    _ip("netns", "add", ns)
    try:
        _ip("-n", ns, "link", "add", "lan0", "type", "veth", "peer", "name", "peer0")
        for dev in ("lo", "lan0", "peer0"):
            _ip("-n", ns, "link", "set", dev, "up")
        _ip("-n", ns, "addr", "add", "10.42.0.1/24", "dev", "lan0")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture
def router_config(router_ns, tmp_path) -> config_mod.Config:
    """The lab's config, pointed at ``router_ns``."""
    text = lab_config_text(tmp_path)
    text = text.replace('netns = "hs-gw"', f'netns = "{router_ns}"')
    return config_mod.loads(text, tmp_path / "hotspot.toml")


@pytest.fixture
def send_udp(router_ns):
    """Return ``send(dst, count, size=1000, mac=...)``: UDP out of lan0 towards a client (download).

    It leaves from 10.42.0.50 / 2001:db8:42::50 (not the router's own address, whose
    traffic has a class of its own) to a static neighbour entry with the client's MAC,
    so no client namespace is needed.
    """

    def send(dst: str, count: int, size: int = 1000, mac: str = "02:00:00:00:01:01") -> None:
        v6 = ":" in dst
        src = "2001:db8:42::50" if v6 else "10.42.0.50"
        _ip(
            "-n",
            router_ns,
            "addr",
            "replace",
            f"{src}/{64 if v6 else 24}",
            "dev",
            "lan0",
            *(["nodad"] if v6 else []),
        )
        _ip("-n", router_ns, "neigh", "replace", dst, "lladdr", mac, "dev", "lan0")
        family = "AF_INET6" if v6 else "AF_INET"
        script = (
            "import socket\n"
            f"s = socket.socket(socket.{family}, socket.SOCK_DGRAM)\n"
            f"s.bind(('{src}', 0))\n"
            f"for _ in range({count}): s.sendto(b'x' * {size}, ('{dst}', 9))\n"
        )
        subprocess.run(["ip", "netns", "exec", router_ns, "python3", "-c", script], check=True)

    return send


@pytest.fixture
def send_upload(router_ns):
    """Return ``send(src_mac, src_ip, count, size=1000)``: frames into lan0 as if from a phone (upload)."""

    def send(mac: str, src: str, count: int, size: int = 1000) -> None:
        layer = (
            f"IPv6(src='{src}', dst='2001:db8:2::1')" if ":" in src else f"IP(src='{src}', dst='192.0.2.1')"
        )
        script = (
            "from scapy.all import Ether, IP, IPv6, UDP, Raw, sendp\n"
            f"frame = Ether(src='{mac}', dst='ff:ff:ff:ff:ff:ff') / {layer}\n"
            f"frame = frame / UDP(dport=9) / Raw(b'x' * {size})\n"
            f"sendp(frame, iface='peer0', count={count}, verbose=False)\n"
        )
        python = sys.executable
        subprocess.run(["ip", "netns", "exec", router_ns, python, "-c", script], check=True, timeout=60)

    return send
