"""Enter the router's network namespace for a moment, to create sockets bound to it.

On a router ``network.netns`` is empty and nothing happens. In the lab it names the
router's namespace: the CLI (which runs in the root namespace) and the daemon create
their libnftables context and netlink sockets inside it; those stay bound to that
namespace after the thread has switched back, so nothing is ever sent from the root
namespace. Unlike ``pyroute2.netns.pushns``, a missing namespace is an error here,
never silently created.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["NETNS_DIR", "in_netns", "is_current"]

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def is_current(name: str) -> bool:
    """Return whether this thread already runs in network namespace ``name`` ("" = yes)."""
    if not name:
        return True
    try:
        return os.stat("/proc/thread-self/ns/net").st_ino == os.stat(NETNS_DIR / name).st_ino
    except FileNotFoundError:
        return False


@contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the block inside network namespace ``name`` ("" = stay where we are)."""
    if not name:
        yield
        return
    path = NETNS_DIR / name
    if not path.exists():
        raise FileNotFoundError(f"network namespace {name!r} does not exist ({path})")
    if is_current(name):
        yield  # already there (the lab starts the daemon inside it)
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)
