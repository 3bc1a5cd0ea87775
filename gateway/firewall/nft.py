"""libnftables through its Python binding (``import nftables``), bound to the router's netns.

The binding runs a batch in-process in ~0.06 ms, where spawning ``nft`` costs ~1.8 ms
(``../shared/notes/kernel-facts.md`` §4): that is what keeps a login fast. A batch given
to :meth:`Nft.apply` is one kernel transaction: all of it or none of it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import nftables

from gateway.firewall.plan import json_documents
from gateway.nsenter import in_netns

__all__ = ["ApplyError", "Nft"]


class ApplyError(Exception):
    """An nft command failed: ``op`` says what we tried, ``stderr`` what libnftables said."""

    def __init__(self, op: str, stderr: str):
        super().__init__(f"{op}: {stderr.strip()}")
        self.op = op
        self.stderr = stderr


class Nft:
    """A libnftables context in network namespace ``netns`` ("" = the current one)."""

    def __init__(self, netns: str = ""):
        with in_netns(netns):
            self.ctx = nftables.Nftables()
        self.ctx.set_json_output(True)
        self.ctx.set_handle_output(False)
        self.netns = netns

    def apply(self, batch: str, op: str = "apply") -> None:
        """Run ``batch`` (nft statements, one per line) as one transaction; raise ApplyError."""
        if not batch.strip():
            return
        rc, _out, err = self.ctx.cmd(batch)
        if rc != 0:
            raise ApplyError(op, err or f"rc={rc}")

    def get_then_apply(self, gets: Sequence[str], batch: str, op: str = "apply") -> str:
        """Run the ``get element`` commands ``gets`` and ``batch`` in ONE libnftables call; return
        what the gets printed (as :meth:`read_then_apply`, read just before the batch commits).

        A get reads its elements only, where a listing reads the whole set: a logout with 1,000
        online took ~30 ms listing ``auth4`` (issue 16). Raises ApplyError, also when one of the
        elements is not in the kernel.
        """
        rc, out, err = self.ctx.cmd("\n".join(gets) + "\n" + batch)
        if rc != 0:
            raise ApplyError(op, err or f"rc={rc}")
        return out

    def read_then_apply(self, what: Sequence[str], batch: str, op: str = "apply") -> list[dict[str, Any]]:
        """List ``what`` (e.g. ``set inet hotspot auth4``) and run ``batch`` in ONE libnftables call.

        libnftables runs the listings while it builds the batch and commits the batch at the
        end of the same call, so nothing the kernel counts between the read and the commit
        is more than microseconds. Returns the listings' JSON documents; raises ApplyError.
        """
        text = "\n".join(f"list {w}" for w in what) + "\n" + batch
        rc, out, err = self.ctx.cmd(text)
        if rc != 0:
            raise ApplyError(op, err or f"rc={rc}")
        return json_documents(out)

    def list_json(self, what: str, *, terse: bool = False) -> dict[str, Any] | None:
        """Return ``nft -j list <what>`` as data, or None when the object does not exist."""
        self.ctx.set_terse_output(terse)
        try:
            rc, out, err = self.ctx.cmd(f"list {what}")
        finally:
            self.ctx.set_terse_output(False)
        if rc != 0:
            if "No such file or directory" in err:
                return None
            raise ApplyError(f"list {what}", err)
        return json.loads(out) if out.strip() else None
