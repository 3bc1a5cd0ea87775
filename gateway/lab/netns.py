"""Make the kernel's namespaces and links match a :class:`LabPlan` (idempotently).

A thin applier over ``ip``: it reads what exists (``ip -j``), creates what is
missing, and removes lab namespaces that the plan no longer has. Every command
names its namespace; nothing is created in the root namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from gateway.lab.topology import LabPlan, LabSpec

__all__ = ["LabError", "apply_plan", "delete_namespaces", "lab_namespaces", "netns_exists", "run"]

NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")


class LabError(Exception):
    """A lab step failed; the message says which command and what it printed."""


def run(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run ``argv`` and return the result; raise :class:`LabError` with stderr when it fails."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as err:
        raise LabError(f"{argv[0]}: not installed ({err})") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(argv)}: no answer within {timeout:.0f}s") from None
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {result.stderr.strip() or result.stdout.strip()}")
    return result


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def lab_namespaces(prefix: str) -> list[str]:
    """Return the existing namespaces that belong to the lab with ``prefix``."""
    if not NETNS_DIR.is_dir():
        return []
    names = []
    for entry in sorted(os.listdir(NETNS_DIR)):
        rest = entry[len(prefix) :] if entry.startswith(prefix) else None
        if rest in ("gw", "up", "ap", "hq") or (rest and rest[0] == "c" and rest[1:].isdigit()):
            names.append(entry)
    return names


def _links(ns: str) -> dict[str, dict]:
    out = run("ip", "-n", ns, "-j", "link", "show").stdout
    return {link["ifname"]: link for link in json.loads(out or "[]")}


def _addresses(ns: str, ifname: str) -> set[str]:
    out = run("ip", "-n", ns, "-j", "addr", "show", "dev", ifname).stdout
    found = set()
    for link in json.loads(out or "[]"):
        for a in link.get("addr_info", []):
            found.add(f"{a['local']}/{a['prefixlen']}")
    return found


def apply_plan(plan: LabPlan) -> list[str]:
    """Create what ``plan`` needs and is missing; return a line per change made."""
    changes: list[str] = []
    spec = plan.spec
    for ns in lab_namespaces(spec.prefix):
        if ns not in plan.namespaces:
            delete_namespaces([ns])
            changes.append(f"removed {ns}")
    for ns in plan.namespaces:
        if not netns_exists(ns):
            run("ip", "netns", "add", ns)
            changes.append(f"created netns {ns}")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        if ns in spec.client_namespaces:
            _ensure_resolv_conf(ns)

    # a library joining another lab's HQ links into that lab's namespace too (never creates it)
    touched = list(dict.fromkeys([*plan.namespaces, *(v.ns_b for v in plan.veths)]))
    for ns in touched:
        if not netns_exists(ns):
            raise LabError(f"namespace {ns} does not exist (bring that lab up first, with --hq)")
    links = {ns: _links(ns) for ns in touched}
    for veth in plan.veths:
        if veth.name_a in links[veth.ns_a] and veth.name_b in links[veth.ns_b]:
            continue
        for ns, name in ((veth.ns_a, veth.name_a), (veth.ns_b, veth.name_b)):
            if name in links[ns]:  # half a pair: remove it and build the pair again
                run("ip", "-n", ns, "link", "del", name)
        address = ["address", veth.mac_b] if veth.mac_b else []
        run(
            "ip", "link", "add", veth.name_a, "netns", veth.ns_a, "type", "veth",
            "peer", "name", veth.name_b, *address, "netns", veth.ns_b,
        )  # fmt: skip
        changes.append(f"linked {veth.ns_a}:{veth.name_a} <-> {veth.ns_b}:{veth.name_b}")
        links[veth.ns_a] = _links(veth.ns_a)
        links[veth.ns_b] = _links(veth.ns_b)

    bridge_ns, bridge, ports = plan.bridge
    if bridge not in links[bridge_ns]:
        run("ip", "-n", bridge_ns, "link", "add", bridge, "type", "bridge")
        changes.append(f"created bridge {bridge_ns}:{bridge}")
        links[bridge_ns] = _links(bridge_ns)
    for port in ports:
        if links[bridge_ns].get(port, {}).get("master") != bridge:
            run("ip", "-n", bridge_ns, "link", "set", port, "master", bridge)

    for ns, name in plan.frame_sized:  # segment before the wire, as real NICs do
        run("ip", "-n", ns, "link", "set", "dev", name, "gso_max_segs", "1")
    for ns, key, value in plan.sysctls:
        run("ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}")
    for ns in plan.namespaces:
        for name in _links(ns):
            run("ip", "-n", ns, "link", "set", name, "up")
    for veth in plan.veths:
        if veth.ns_b not in plan.namespaces:
            run("ip", "-n", veth.ns_b, "link", "set", veth.name_b, "up")

    for addr in plan.addresses:
        if addr.cidr not in _addresses(addr.ns, addr.ifname):
            flags = ["nodad"] if ":" in addr.cidr else []
            run("ip", "-n", addr.ns, "addr", "add", addr.cidr, "dev", addr.ifname, *flags)
            changes.append(f"address {addr.cidr} on {addr.ns}:{addr.ifname}")
    for ns, dest, via in plan.routes:
        family = ["-6"] if ":" in via else []
        dest = "default" if dest == "default6" else dest
        run("ip", *family, "-n", ns, "route", "replace", dest, "via", via)
    return changes


def _ensure_resolv_conf(ns: str) -> None:
    # `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf, so the
    # phone's DHCP client writes its DNS server here and never into the host's own file.
    folder = ETC_NETNS / ns
    folder.mkdir(parents=True, exist_ok=True)
    resolv = folder / "resolv.conf"
    if not resolv.exists():
        resolv.write_text("# filled in by the lab phone's DHCP client\n")


def delete_namespaces(names: list[str]) -> None:
    """Delete namespaces (their veths go with them) and their /etc/netns folders."""
    for ns in names:
        if netns_exists(ns):
            run("ip", "netns", "del", ns)
        folder = ETC_NETNS / ns
        if folder.is_dir():
            for child in folder.iterdir():
                child.unlink()
            folder.rmdir()


def spec_from_existing(prefix: str) -> LabSpec | None:
    """Return the spec of the lab that exists with ``prefix``, or None if there is none."""
    names = lab_namespaces(prefix)
    if not names:
        return None
    clients = [n for n in names if n[len(prefix) :].startswith("c")]
    return LabSpec(prefix=prefix, clients=max(1, len(clients)), hq=f"{prefix}hq" in names)
