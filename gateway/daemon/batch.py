"""Commands that arrived together: which of them the daemon applies as one batch (pure).

The gateway reads the command stream in batches (everything that arrived while it was
busy). A class logging in within the same second sends 40 ``authorize`` commands; the
daemon lets them through in one nftables transaction and one tc batch instead of 40 of
each (issue 16), and replies to each requester on its own. Only a run of *consecutive*
``authorize`` commands is batched: any other command between them keeps its place, so
an ``authorize`` followed by a ``deauthorize`` of the same session still ends logged out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # only for hints: gateway.model.commands loads redis, and this module is pure
    from gateway.model.commands import Command

__all__ = ["BATCHED", "runs"]

C = TypeVar("C", bound="Command")

BATCHED = frozenset({"authorize"})  # ops whose consecutive commands are applied together


def runs(commands: Sequence[C]) -> list[list[C]]:
    """Split ``commands`` (in stream order) into runs: consecutive batched ops together, others alone.

    Within a stretch of consecutive ``authorize`` commands, those that move a session
    (an ``ip`` field) come after the others, each alone: a move first probes whether the
    device still answers at its old address (an ARP probe, up to a second), and the
    others' replies must not wait for it. Authorizing other sessions first changes
    nothing for the moved one, and an ``authorize`` of the same session before or after
    its move ends at the same place (the moved address).
    """
    out: list[list[C]] = []
    stretch: list[C] = []  # consecutive commands of one batched op

    def flush() -> None:
        plain = [c for c in stretch if "ip" not in c.fields]
        out.extend([plain] if plain else [])
        out.extend([c] for c in stretch if "ip" in c.fields)
        stretch.clear()

    for command in commands:
        if stretch and command.op != stretch[0].op:
            flush()
        if command.op in BATCHED:
            stretch.append(command)
        else:
            out.append([command])
    flush()
    return out
