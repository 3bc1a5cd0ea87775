"""Notice at once when someone changes table ``inet hotspot`` by hand (``nft -j monitor``).

A flushed or edited table heals at the next reconcile pass anyway; watching the kernel's
nftables events makes that next pass start within a fraction of a second instead of up
to ``gateway.reconcile_interval`` later, which is how long a hand flush would leave the
LAN open. Element events (logins, logouts, dnsmasq's walled-garden addresses) are
ignored: only tables, chains, rules and sets of our table count, and ``grep`` drops the
element events between ``nft`` and this process, so they never wake it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from typing import IO

from gateway.logs import get_logger
from gateway.names import NFT_FAMILY, NFT_TABLE
from gateway.nsenter import is_current

__all__ = ["ELEMENT_EVENT", "TableWatch", "is_structural"]

# the start of an ``nft -j monitor`` line about set elements: {"add": {"element": ...
ELEMENT_EVENT = r'^\{"[a-z]+": \{"element"'

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
        self.filter: subprocess.Popen | None = None
        self.lines: IO[bytes] | None = None
        nft = shutil.which("nft")
        if nft is None:
            log.warning("nft_monitor_unavailable", reason="no nft binary; hand edits heal at the next pass")
            return
        argv = [nft, "-j", "monitor"]
        if netns and not is_current(netns):
            argv = ["ip", "netns", "exec", netns, *argv]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        # grep drops the element events (every login and logout makes a few) before they reach
        # this process: each one woke the reading thread, which then held the interpreter lock
        # while the daemon's own nft call returned (~0.25 ms of a login's ~0.9 ms of nft)
        out = self.proc.stdout
        grep = shutil.which("grep")
        if grep is not None:
            self.filter = subprocess.Popen(
                [grep, "--line-buffered", "-v", "-E", ELEMENT_EVENT], stdin=self.proc.stdout,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            self.proc.stdout.close()  # grep holds the pipe now
            out = self.filter.stdout
        self.lines = out
        self.thread = threading.Thread(target=self._read, name="nft-monitor", daemon=True)
        self.thread.start()

    @property
    def alive(self) -> bool:
        procs = [p for p in (self.proc, self.filter) if p is not None]
        return bool(procs) and all(p.poll() is None for p in procs)

    def _read(self) -> None:
        assert self.lines is not None  # noqa: S101 (set before start)
        for line in self.lines:
            if is_structural(line.decode(errors="replace")):
                self.changed.set()

    def close(self) -> None:
        """Stop watching."""
        if self.proc is None:
            return
        for proc in (self.proc, self.filter):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.thread.join(2)
        if self.lines is not None:
            self.lines.close()
