"""Notice at once when someone changes table ``inet hotspot`` by hand (``nft -j monitor``).

A flushed or edited table heals at the next reconcile pass anyway; watching the kernel's
nftables events makes that next pass start within a fraction of a second instead of up
to ``gateway.reconcile_interval`` later, which is how long a hand flush would leave the
LAN open. Element events (logins, logouts, dnsmasq's walled-garden addresses) are
ignored: only tables, chains, rules and sets of our table count.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading

from gateway.logs import get_logger
from gateway.names import NFT_FAMILY, NFT_TABLE
from gateway.nsenter import is_current

__all__ = ["TableWatch", "is_structural"]

log = get_logger("nft")


def is_structural(line: str) -> bool:
    """Return whether one ``nft -j monitor`` line changes our table's rules, chains or sets."""
    try:
        event = json.loads(line)
    except ValueError:
        return False
    if not isinstance(event, dict) or not event:
        return False
    ((_verb, body),) = list(event.items())[:1]
    if not isinstance(body, dict) or not body:
        return False
    ((kind, obj),) = list(body.items())[:1]
    if kind not in ("table", "chain", "rule", "set") or not isinstance(obj, dict):
        return False
    table = obj.get("name") if kind == "table" else obj.get("table")
    return obj.get("family") == NFT_FAMILY and table == NFT_TABLE


class TableWatch:
    """A thread reading ``nft -j monitor``; ``changed`` is set when our table changes."""

    def __init__(self, netns: str = ""):
        self.changed = threading.Event()
        self.proc: subprocess.Popen | None = None
        nft = shutil.which("nft")
        if nft is None:
            log.warning("nft_monitor_unavailable", reason="no nft binary; hand edits heal at the next pass")
            return
        argv = [nft, "-j", "monitor"]
        if netns and not is_current(netns):
            argv = ["ip", "netns", "exec", netns, *argv]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.thread = threading.Thread(target=self._read, name="nft-monitor", daemon=True)
        self.thread.start()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None  # noqa: S101 (set before start)
        for line in self.proc.stdout:
            if is_structural(line):
                self.changed.set()

    def close(self) -> None:
        """Stop watching."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(2)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
