"""Devices' DHCP host names, from dnsmasq's lease file (``dhcp.lease_file``).

A phone says its name when it asks for an address ("Galaxy-A14", "iPhone-Siti"); dnsmasq
keeps it in its lease file, one line per lease: ``<expiry> <mac> <ip> <name or *> <client id>``.
The desk and ``hotspotctl clients`` show it next to the MAC, where known, so staff can tell
phones apart. The name is the visitor's own text: it is cut to a safe alphabet and length
and only ever shown, never trusted. Reading is cheap (a few KB) and cached by the file's
modification time; a missing or unreadable file means no names, never an error.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from gateway.model.sessions import normalize_mac

__all__ = ["HostNames", "parse_leases"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
MAX_NAME = 40


def _clean(name: str) -> str:
    return _SAFE.sub("", name)[:MAX_NAME]


def parse_leases(text: str) -> dict[str, str]:
    """Return ``{mac: host name}`` from a dnsmasq lease file's text (IPv4 leases with a name)."""
    names: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] == "duid" or fields[3] == "*":
            continue
        try:
            mac = normalize_mac(fields[1])
        except ValueError:
            continue
        name = _clean(fields[3])
        if name:
            names[mac] = name
    return names


class HostNames:
    """The lease file's names, re-read only when the file changed."""

    def __init__(self, path: Path):
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._names: dict[str, str] = {}

    def get(self) -> dict[str, str]:
        """Return ``{mac: host name}`` as the lease file says now (empty if there is none)."""
        try:
            stat = os.stat(self.path)
        except OSError:
            return {}
        stamp = (stat.st_mtime, stat.st_size)
        if stamp != self._stamp:
            try:
                self._names = parse_leases(self.path.read_text(errors="replace"))
            except OSError:
                return {}
            self._stamp = stamp
        return self._names
