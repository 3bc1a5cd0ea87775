"""The shaping component of the reconcile loop: tc classes for the online sessions.

It follows the loop's ``Component`` protocol (``docs/gateway.md``): ``reconcile`` on
every pass, ``login``/``logout`` as the fast paths of ``authorize``/``deauthorize``.

A pass (level-triggered, from the kernel and Redis, nothing remembered that matters):

1. read both tc trees back (classes with their byte counters, leaves, filters);
2. give every session without one a slot (the number its tc handles derive from),
   never one whose class is still in the kernel, and write it to Redis;
3. store each client's current rate (growth of its counters since the last pass);
4. plan both trees (:func:`gateway.shaping.plan.plan_tc`) and apply the difference.

The fast paths read nothing: a phone logging in gets its classes at once, at its fair
share, and the classes of the others whose share moved by more than the diff's
tolerance are changed in the same netlink batch (with many online, none: a few
messages whatever the number of clients); one logging out loses them and gives its
share back. Guarantees never add up to more than the line: HTB charges the uplink
class for what its children send at their guaranteed rates, so an overcommitted tree
leaves it in debt and nobody can borrow for seconds. The next pass checks the fast
paths' work against the kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import redis

from gateway.config import Config
from gateway.logs import get_logger
from gateway.model import keys
from gateway.model.sessions import Session
from gateway.shaping.apply import TcApplier, slot_counters
from gateway.shaping.diff import RATE_TOLERANCE
from gateway.shaping.model import ROOT_QDISC, TcPlan, client_class, slot_of_class
from gateway.shaping.plan import (
    ClientShape,
    client_caps,
    client_objects,
    client_rates,
    client_shape,
    plan_tc,
    settings_from_config,
)
from gateway.shaping.rates import Sample, rates, worth_writing, write_rates
from gateway.shaping.shares import Water, assign_slots

__all__ = ["EXACT_UP_TO", "Shaper"]

log = get_logger("shaping")

# Up to this many clients online, a login or logout splits the line again among all of
# them (a fraction of a millisecond); beyond, each share moves by less than the applier's
# tolerance, so only the client coming or going is dealt with, in constant time.
EXACT_UP_TO = 50


class Shaper:
    """Keeps the router's tc trees in step with the online sessions (component "tc")."""

    name = "tc"

    def __init__(self, config: Config, r: redis.Redis, applier: TcApplier | None = None):
        self.redis = r
        self.applier = applier if applier is not None else TcApplier.for_network(config.network)
        self.leaf_kind = ""  # probed at the first pass: building a Shaper touches nothing
        self.configure(config)
        self.sessions: dict[str, Session] = {}  # as planned last (plus fast paths), with their slots
        self.owner: dict[tuple[str, object], str] = {}  # ("mac"|"ip"|"slot", value) -> sid
        self.plan: TcPlan | None = None  # the last pass's plan
        self.rates: dict[int, tuple[int, int]] = {}  # slot -> (down, up) guarantee in the kernel
        self.shapes: dict[str, ClientShape] = {}  # sid -> what the planner needs of it
        self.waters: tuple[Water, ...] = ()  # what the last split left, (download, upload)
        self.indexes: list[int] = []  # the LAN interface's and its IFB's, as of the last pass
        self.kernel_slots: set[int] = set()  # slots whose classes are in the kernel
        self.samples: dict[int, Sample] = {}  # slot -> counters at the last pass
        self.written: dict[str, tuple[float, float, float]] = {}  # sid -> rates last stored, and when

    def configure(self, config: Config) -> None:
        """Take a (reloaded) config: uplink rates and interfaces apply at the next pass."""
        self.config = config
        self.settings = settings_from_config(config, self.leaf_kind or "pfifo")

    def _probe(self) -> None:
        if not self.leaf_kind:
            self.leaf_kind = self.applier.probe_leaf_kind()
            self.settings = settings_from_config(self.config, self.leaf_kind)

    def close(self) -> None:
        self.applier.close()

    # -- the pass ------------------------------------------------------------------------

    def reconcile(self, sessions: Sequence[Session], now: float) -> dict[str, int]:
        """Make both trees match ``sessions``; return counts of tc objects changed."""
        self._probe()
        down = self.applier.read(self.settings.lan_interface)
        up = self.applier.read(self.settings.ifb_interface)
        counters = slot_counters(down, up)
        sessions = self._assign_slots(list(sessions), set(counters))

        current = {s.slot: Sample(s.sid, *counters[s.slot], now) for s in sessions if s.slot in counters}
        found = worth_writing(rates(self.samples, current), self.written, now)
        self.samples = current
        write_rates(self.redis, found, now)
        live = {s.sid for s in sessions}
        self.written = {sid: w for sid, w in self.written.items() if sid in live}
        self.written.update({sid: (down, up, now) for sid, (down, up) in found.items()})

        plan = plan_tc(self.settings, sessions)
        result = self.applier.apply(plan, states=(down, up))
        self.plan = plan
        # only the sessions that have classes: the fast paths go through these
        self.shapes = {s.sid: c for s in sessions if (c := client_shape(self.settings, s))}
        self.sessions = {s.sid: s for s in sessions if s.sid in self.shapes}
        self._index()
        self.waters = client_rates(self.settings, list(self.shapes.values()))[1]
        self.indexes = [
            self.applier.index(self.settings.lan_interface),
            self.applier.index(self.settings.ifb_interface),
        ]
        down_rates = {c.handle: c.rate for c in plan.down.classes}
        up_rates = {c.handle: c.rate for c in plan.up.classes}
        self.rates = {
            s.slot: (down_rates[client_class(s.slot)], up_rates[client_class(s.slot)])
            for s in sessions if s.slot and client_class(s.slot) in down_rates
        }  # fmt: skip
        self.kernel_slots = {slot for c in plan.down.classes if (slot := slot_of_class(c.handle))}
        if not result.unchanged:
            log.info(
                "tc_applied", added=result.added, changed=result.changed, removed=result.removed,
                clients=len(sessions), leaf=self.leaf_kind,
            )  # fmt: skip
        total = sum(len(t.classes) + len(t.leaves) + len(t.filters) for t in (plan.down, plan.up))
        return {
            "added": result.added,
            "changed": result.changed,
            "removed": result.removed,
            "unchanged": max(0, total - result.added - result.changed),
        }

    def _assign_slots(self, sessions: list[Session], in_kernel: set[int]) -> list[Session]:
        # a slot this shaper gave may not be in the caller's copy of the session yet
        current = {s.sid: s.slot or getattr(self.sessions.get(s.sid), "slot", 0) for s in sessions}
        own = {slot for slot in current.values() if slot}
        # only sessions that can have a class take a slot (not one without an address on the LAN)
        order = [s.sid for s in sessions if self._on_lan(s.ip)]
        changes = assign_slots(current, order, reserved=in_kernel - own)
        if changes:
            self._store_slots(changes)
        final = {**current, **changes}
        return [s if final[s.sid] == s.slot else replace(s, slot=final[s.sid]) for s in sessions]

    def _on_lan(self, ip: str) -> bool:
        return client_shape(self.settings, _Probe(ip)) is not None

    def _store_slots(self, changes: dict[str, int]) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            for sid, slot in changes.items():
                pipe.hset(keys.session(sid), "slot", slot)
            pipe.execute()

    # -- fast paths ----------------------------------------------------------------------

    def login(self, session: Session, now: float) -> None:
        """Give ``session`` its classes now, at its fair share (no kernel read, no full plan).

        Up to :data:`EXACT_UP_TO` clients, everyone's shares are split again and the
        classes whose share moved by more than the diff's tolerance change in the same
        netlink batch. Beyond, each share moves by less than that, so only the newcomer's
        share is worked out (from the water the last split left) and only its objects are
        sent: the cost of a login does not grow with the number online.
        """
        if self.plan is None:
            return  # no pass yet: the first one does it
        # a device logging in again replaces its old session (same MAC or same address)
        for key in (("mac", session.mac), ("ip", session.ip)):
            old = self.sessions.get(self.owner.get(key, ""))
            if old is not None and old.sid != session.sid:
                self.logout(old, now)
        if not self._on_lan(session.ip):
            return  # no IPv4 address on the LAN: no class (its traffic stays in the default one)
        slot = session.slot
        if not slot or self.owner.get(("slot", slot), session.sid) != session.sid:
            slot = assign_slots({session.sid: 0}, [session.sid], reserved=self.kernel_slots).get(
                session.sid, 0
            )
            if not slot:
                return  # all slots taken: its traffic stays in the default class
            self._store_slots({session.sid: slot})
        session = replace(session, slot=slot)
        client = client_shape(self.settings, session)
        if client is None:
            return
        if len(self.shapes) < EXACT_UP_TO:
            self._resplit({**self.sessions, session.sid: session}, fresh=session.sid)
            return
        caps = client_caps(self.settings, client)
        (down, water_down), (up, water_up) = (
            w.admit(client.weight, c) for w, c in zip(self.waters, caps, strict=True)
        )
        self._put(client, (down, up), fresh=True)
        self.applier.batch.commit()
        self.waters = (water_down, water_up)
        self._known(session, client, (down, up))

    def logout(self, session: Session, now: float) -> None:
        """Take ``session``'s classes away now (and, up to :data:`EXACT_UP_TO`, give its share back)."""
        known = self.sessions.get(session.sid, session)
        client = self.shapes.get(session.sid) or client_shape(self.settings, known)
        if self.plan is None or client is None:
            self.sessions.pop(session.sid, None)
            return
        self._delete(client)
        if len(self.shapes) <= EXACT_UP_TO:
            self._resplit({sid: s for sid, s in self.sessions.items() if sid != session.sid})
            return
        self.applier.batch.commit()
        rates = self.rates.get(client.slot)
        if rates is not None:
            caps = client_caps(self.settings, client)
            self.waters = tuple(
                w.release(client.weight, c, r) for w, c, r in zip(self.waters, caps, rates, strict=True)
            )  # fmt: skip
        self._forget(session.sid, client.slot)

    # -- fast path helpers ---------------------------------------------------------------

    def _known(self, session: Session, client: ClientShape, rates: tuple[int, int]) -> None:
        self.sessions[session.sid] = session
        self.shapes[session.sid] = client
        self.rates[client.slot] = rates
        self.kernel_slots.add(client.slot)
        self.owner.update({("mac", session.mac): session.sid, ("ip", session.ip): session.sid,
                           ("slot", client.slot): session.sid})  # fmt: skip

    def _forget(self, sid: str, slot: int) -> None:
        session = self.sessions.pop(sid, None)
        self.shapes.pop(sid, None)
        self.rates.pop(slot, None)
        self.kernel_slots.discard(slot)
        if session is not None:
            for key in (("mac", session.mac), ("ip", session.ip), ("slot", slot)):
                if self.owner.get(key) == sid:
                    del self.owner[key]

    def _index(self) -> None:
        """Rebuild who owns which MAC, address and slot (for the fast paths' O(1) lookups)."""
        self.owner = {}
        for s in self.sessions.values():
            self.owner.update({("mac", s.mac): s.sid, ("ip", s.ip): s.sid, ("slot", s.slot): s.sid})

    def _put(self, client: ClientShape, rates: tuple[int, int], *, fresh: bool) -> None:
        """Queue ``client``'s class and leaf at ``rates`` (and, if ``fresh``, its filters)."""
        objects = client_objects(self.settings, client, rates)
        for tree, index in zip((objects.down, objects.up), self.indexes, strict=True):
            self.applier.batch.klass("replace", index, tree.classes[0])
            self.applier.batch.leaf("replace", index, tree.leaves[0])
            for f in tree.filters if fresh else ():
                self.applier.batch.filter("replace", index, ROOT_QDISC, f)

    def _delete(self, client: ClientShape) -> None:
        """Queue removing ``client``'s filters, then its class (which takes its leaf)."""
        objects = client_objects(self.settings, client, (0, 0))
        for tree, index in zip((objects.down, objects.up), self.indexes, strict=True):
            for f in tree.filters:  # filters first: a class a filter points to cannot go
                self.applier.batch.filter("del", index, ROOT_QDISC, f)
            self.applier.batch.klass("del", index, tree.classes[0])

    def _resplit(self, sessions: dict[str, Session], fresh: str = "") -> None:
        """Split the line again among ``sessions``; send the ``fresh`` one's objects and the
        classes whose share moved, with what is already queued, in one batch."""
        shapes = {}
        for sid, s in sessions.items():
            known = self.shapes.get(sid)
            same = known is not None and (known.slot, known.ip, known.mac, known.down, known.up) == (
                s.slot, s.ip, s.mac, s.down, s.up,
            )  # fmt: skip
            shape = known if same else client_shape(self.settings, s)
            if shape is not None:
                shapes[sid] = shape
        rates, self.waters = client_rates(self.settings, list(shapes.values()))
        kept = {shape.slot for shape in shapes.values()}
        for slot in [slot for slot in self.rates if slot not in kept]:
            self.rates.pop(slot)
            self.kernel_slots.discard(slot)
        for sid, client in shapes.items():
            new, old = rates[client.slot], self.rates.get(client.slot)
            moved = old is None or any(_moved(n, o) for n, o in zip(new, old, strict=True))
            if sid == fresh or moved:
                self._put(client, new, fresh=sid == fresh)
                self.rates[client.slot] = new
        self.applier.batch.commit()
        self.sessions, self.shapes = {sid: sessions[sid] for sid in shapes}, shapes
        self.kernel_slots |= kept
        self._index()


@dataclass(frozen=True)
class _Probe:
    """Just enough of a session for :func:`client_shape` to say whether its address can have a class."""

    ip: str
    slot: int = 1
    mac: str = ""
    down: int = 0
    up: int = 0
    weight: float = 1.0


def _moved(new: int, old: int) -> bool:
    return abs(new - old) > new * RATE_TOLERANCE
