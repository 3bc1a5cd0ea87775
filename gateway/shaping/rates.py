"""Each online client's current download and upload rate, from the tc class counters.

Every reconcile pass the shaper reads its classes back with their byte counters; the
growth since the previous pass over the time between them is the client's rate. The
rates go on the session's hash in Redis (``rate_down``, ``rate_up`` in bits/s, and
``rate_at``) for ``hotspotctl clients`` and the librarian's desk; ``hotspotctl top``
samples the kernel itself when it can.

Rates count whole Ethernet frames, like the classes (about 4.6 % more than the data a
speed test shows). Bytes per session (and quotas) are the reconcile loop's, counted
by nftables (see ``docs/gateway.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.model import keys

if TYPE_CHECKING:  # only a type here: the rate arithmetic is used by the pure share book
    import redis

__all__ = ["RATE_AT", "RATE_DOWN", "RATE_UP", "Sample", "rates", "read_rates", "worth_writing", "write_rates"]

RATE_DOWN = "rate_down"
RATE_UP = "rate_up"
RATE_AT = "rate_at"

MIN_INTERVAL = 0.5  # seconds; closer samples give noisy rates and are skipped
MIN_CHANGE = 8_000  # bits/s a rate must move by (or 10 %) to be written again ...
REFRESH = 60.0  # ... unless it was written longer ago than this


@dataclass(frozen=True)
class Sample:
    """One client's counters at one time: whose slot it was, and its bytes each way."""

    sid: str
    down: int
    up: int
    at: float


def rates(previous: Mapping[int, Sample], current: Mapping[int, Sample]) -> dict[str, tuple[float, float]]:
    """Return ``{sid: (down, up)}`` bits/s between two samples of each slot (pure).

    A slot that changed hands, shrank (its class was created again) or was sampled
    too recently gives no rate this time.
    """
    found = {}
    for slot, now in current.items():
        before = previous.get(slot)
        if before is None or before.sid != now.sid:
            continue
        elapsed = now.at - before.at
        if elapsed < MIN_INTERVAL or now.down < before.down or now.up < before.up:
            continue
        found[now.sid] = ((now.down - before.down) * 8 / elapsed, (now.up - before.up) * 8 / elapsed)
    return found


# HSET only a session that still exists: never resurrect a hash that was deleted.
_HSET_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HSET', KEYS[1], unpack(ARGV))
end
return -1
"""


def worth_writing(
    found: Mapping[str, tuple[float, float]], written: Mapping[str, tuple[float, float, float]], at: float
) -> dict[str, tuple[float, float]]:
    """Return the rates that moved since they were last written (``written``: sid -> (down,
    up, at)), or were written more than :data:`REFRESH` seconds ago: most clients are idle
    or steady most of the time, and a pass with 1000 online should not write 1000 hashes."""
    out = {}
    for sid, (down, up) in found.items():
        last = written.get(sid)
        if (
            last is None
            or at - last[2] >= REFRESH
            or any(
                abs(new - old) > max(MIN_CHANGE, 0.1 * old) for new, old in ((down, last[0]), (up, last[1]))
            )
        ):
            out[sid] = (down, up)
    return out


def write_rates(r: redis.Redis, found: Mapping[str, tuple[float, float]], at: float) -> None:
    """Store each session's current rates (one round trip)."""
    if not found:
        return
    script = r.register_script(_HSET_IF_EXISTS)
    with r.pipeline(transaction=False) as pipe:
        for sid, (down, up) in found.items():
            args = [RATE_DOWN, str(round(down)), RATE_UP, str(round(up)), RATE_AT, repr(round(at, 3))]
            script(keys=[keys.session(sid)], args=args, client=pipe)
        pipe.execute()


def read_rates(r: redis.Redis, sids: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """Return ``{sid: (down, up, at)}`` as last stored (sessions without rates left out)."""
    sids = list(sids)
    with r.pipeline(transaction=False) as pipe:
        for sid in sids:
            pipe.hmget(keys.session(sid), [RATE_DOWN, RATE_UP, RATE_AT])
        rows = pipe.execute()
    return {
        sid: (float(down), float(up), float(at or 0))
        for sid, (down, up, at) in zip(sids, rows, strict=True)
        if down is not None and up is not None
    }
