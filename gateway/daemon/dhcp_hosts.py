"""Long DHCP leases for devices that logged in; short ones for everybody else (DHCP starvation).

dnsmasq gives every device ``dhcp.lease_time`` (short: an address nobody renews is back
in the pool soon). For a device that logged in, this component writes one file into
``dhcp.hosts_dir`` (dnsmasq's ``dhcp-hostsdir``, read on change through inotify) with the
line ``<mac>,<dhcp.online_lease_time>``, so its next renewal gets the long lease.

dnsmasq only *adds* entries from that directory: a removed file keeps its entry until
dnsmasq restarts. That is harmless here (a device that once logged in keeps long leases
until then), and it is why :meth:`DhcpHosts.logout` does nothing. Files of devices no
longer online are removed after ``online_lease_time`` so the folder stays small.

A reconcile :class:`~gateway.daemon.reconcile.Component`; files are written atomically
(temporary name, then rename) and world-readable (dnsmasq reads them as its own user).
A login's file is written right after the requester has its answer (``after_reply``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from gateway.config import Config
from gateway.logs import get_logger
from gateway.model.record import Session, normalize_mac

__all__ = ["DhcpHosts", "host_line"]

log = get_logger("dhcp")


def host_line(mac: str, lease_seconds: int, ip: str | None = None) -> str:
    """Return the dhcp-hostsdir line that gives ``mac`` a lease of ``lease_seconds`` (at its
    fixed address ``ip``, if it has one)."""
    address = f"{ip}," if ip else ""
    return f"{normalize_mac(mac)},{address}{max(2, lease_seconds // 60)}m\n"  # dnsmasq's shortest: 2m


def _file_name(mac: str) -> str:
    return normalize_mac(mac).replace(":", "-")


class DhcpHosts:
    """Keeps one dhcp-hostsdir file per online device's MAC."""

    name = "dhcp"
    after_reply = True  # the long lease comes at the device's next renewal: no login waits for it

    def __init__(self, config: Config):
        self.configure(config)

    def configure(self, config: Config) -> None:
        """Take a (re)loaded config: the folder and the long lease."""
        self.folder: Path | None = config.dhcp.hosts_dir
        self.lease = config.dhcp.online_lease_time
        self.reserved = {mac: str(ip) for mac, ip in config.dhcp.reservations}
        if self.folder is not None and self.folder.is_dir():  # a reload may change both: rewrite
            for path in self.folder.iterdir():  # the files whose line changed (one per device online)
                if not path.name.startswith("."):
                    with contextlib.suppress(ValueError):  # a name that is not a MAC: not ours
                        self._write(path.name.replace("-", ":"))

    def reconcile(self, sessions: Sequence[Session], now: float) -> dict[str, int]:
        """Write files for online MACs that have none; drop stale ones; return counts."""
        if self.folder is None or not self.folder.is_dir():
            return {}
        wanted = {}
        for session in sessions:
            try:
                wanted[_file_name(session.mac)] = session.mac
            except ValueError:
                continue  # a bad MAC is reported by the nftables component
        present = {p.name: p for p in self.folder.iterdir() if not p.name.startswith(".")}
        added = removed = 0
        for name, mac in wanted.items():
            if name not in present:
                self._write(mac)
                added += 1
        for name, path in present.items():
            if name not in wanted and path.stat().st_mtime < now - self.lease:
                path.unlink(missing_ok=True)
                removed += 1
        return {"added": added, "removed": removed, "unchanged": len(wanted) - added}

    def login(self, session: Session, now: float) -> None:
        """Give ``session``'s device the long lease from its next renewal."""
        if self.folder is not None and self.folder.is_dir():
            try:
                self._write(session.mac)
            except ValueError:
                pass

    def logout(self, session: Session, now: float) -> None:
        """Nothing: dnsmasq would keep the entry anyway (module docstring)."""

    def close(self) -> None:
        """Nothing to release."""

    def _write(self, mac: str) -> None:
        assert self.folder is not None  # noqa: S101 - _write runs only when a folder is configured
        target = self.folder / _file_name(mac)
        line = host_line(mac, self.lease, self.reserved.get(normalize_mac(mac)))
        if target.exists() and target.read_text() == line:
            return
        tmp = self.folder / f".{target.name}.tmp"
        tmp.write_text(line)
        tmp.chmod(0o644)  # dnsmasq reads it as its own user
        os.replace(tmp, target)
