"""The shaping component of the reconcile loop: tc classes for the online sessions.

It follows the loop's ``Component`` protocol (``docs/gateway.md``): ``reconcile`` on
every pass, ``login``/``logout`` as the fast paths of ``authorize``/``deauthorize``.

A pass (level-triggered, from the kernel and Redis, nothing remembered that matters):

1. read both tc trees back (classes with their byte counters, leaves, filters);
2. give every session without one a slot (the number its tc handles derive from),
   never one whose class is still in the kernel, and write it to Redis;
3. store each client's current rate (growth of its counters since the last pass);
4. plan both trees (:func:`gateway.tc_plan.plan_tc`) and apply the difference.

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
from dataclasses import replace

import redis

from gateway import keys
from gateway.config import Config
from gateway.logs import get_logger
from gateway.rates import Sample, rates, write_rates
from gateway.sessions import Session
from gateway.tc_apply import TcApplier, TcError, slot_counters
from gateway.tc_diff import RATE_TOLERANCE
from gateway.tc_model import ROOT_QDISC, TcPlan, client_class, slot_of_class
from gateway.tc_plan import client_objects, client_rates, client_shape, plan_tc, settings_from_config
from gateway.tc_shares import assign_slots

__all__ = ["Shaper"]

log = get_logger("shaping")


class Shaper:
    """Keeps the router's tc trees in step with the online sessions (component "tc")."""

    name = "tc"

    def __init__(self, config: Config, r: redis.Redis, applier: TcApplier | None = None):
        self.redis = r
        net = config.network
        if applier is None:
            from gateway.names import ifb_name

            applier = TcApplier(net.netns, net.lan_interface, ifb_name(net.lan_interface))
        self.applier = applier
        self.leaf_kind = ""  # probed at the first pass: building a Shaper touches nothing
        self.configure(config)
        self.sessions: dict[str, Session] = {}  # as planned last (plus fast paths), with their slots
        self.plan: TcPlan | None = None  # the last pass's plan
        self.rates: dict[int, tuple[int, int]] = {}  # slot -> (down, up) guarantee in the kernel
        self.kernel_slots: set[int] = set()  # slots whose classes are in the kernel
        self.samples: dict[int, Sample] = {}  # slot -> counters at the last pass

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
        found = rates(self.samples, current)
        self.samples = current
        if found:
            write_rates(self.redis, found, now)

        plan = plan_tc(self.settings, sessions)
        result = self.applier.apply(plan, states=(down, up))
        self.plan = plan
        self.sessions = {s.sid: s for s in sessions}
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
        own = {s.slot for s in sessions if s.slot}
        changes = assign_slots(
            {s.sid: s.slot for s in sessions}, [s.sid for s in sessions], reserved=in_kernel - own
        )
        if not changes:
            return sessions
        self._store_slots(changes)
        return [replace(s, slot=changes.get(s.sid, s.slot)) for s in sessions]

    def _store_slots(self, changes: dict[str, int]) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            for sid, slot in changes.items():
                pipe.hset(keys.session(sid), "slot", slot)
            pipe.execute()

    # -- fast paths ----------------------------------------------------------------------

    def login(self, session: Session, now: float) -> None:
        """Give ``session`` its classes now, at its fair share, and move the others' shares.

        No kernel read and no full plan: the shares of everyone are computed again (a
        fraction of a millisecond for 1000 clients) and only the classes whose share
        moved by more than the diff's tolerance are changed, so the cost stays a few
        netlink messages however many are online.
        """
        if self.plan is None:
            return  # no pass yet: the first one does it
        # a device logging in again replaces its old session (same MAC or same address)
        for old in [
            s for s in self.sessions.values()
            if s.sid != session.sid and (s.mac == session.mac or s.ip == session.ip)
        ]:  # fmt: skip
            self.logout(old, now)
        slot = session.slot
        if not slot or any(s.slot == slot for s in self.sessions.values() if s.sid != session.sid):
            taken = {s.slot for s in self.sessions.values()} | self.kernel_slots
            slot = assign_slots({session.sid: 0}, [session.sid], reserved=taken).get(session.sid, 0)
            if not slot:
                return  # all slots taken: its traffic stays in the default class
            self._store_slots({session.sid: slot})
        session = replace(session, slot=slot)
        if client_shape(self.settings, session) is None:
            return
        self._move_shares({**self.sessions, session.sid: session}, add=session)

    def logout(self, session: Session, now: float) -> None:
        """Take ``session``'s classes away now, and give its share back to the others."""
        known = self.sessions.get(session.sid, session)
        client = client_shape(self.settings, known)
        if self.plan is None or client is None:
            self.sessions.pop(session.sid, None)
            return
        remaining = {sid: s for sid, s in self.sessions.items() if sid != session.sid}
        self._move_shares(remaining, remove=client)

    def _move_shares(self, sessions: dict[str, Session], add: Session | None = None, remove=None) -> None:
        """Apply one login or logout: the client's objects, and the shares that moved."""
        shapes = {sid: c for sid, s in sessions.items() if (c := client_shape(self.settings, s))}
        rates = client_rates(self.settings, list(shapes.values()))
        batch = self.applier.batch
        indexes = [
            self.applier.index(self.settings.lan_interface),
            self.applier.index(self.settings.ifb_interface),
        ]
        if None in indexes:
            raise TcError("lookup", "the LAN interface or its IFB is missing")
        if remove is not None:
            gone = client_objects(self.settings, remove, (0, 0))
            for tree, index in zip((gone.down, gone.up), indexes, strict=True):
                for f in tree.filters:  # filters first: a class a filter points to cannot go
                    batch.filter("del", index, ROOT_QDISC, f)
                batch.klass("del", index, tree.classes[0])
            self.rates.pop(remove.slot, None)
            self.kernel_slots.discard(remove.slot)
        for sid, client in shapes.items():
            new, old = rates[client.slot], self.rates.get(client.slot)
            fresh = add is not None and sid == add.sid
            if not fresh and old is not None and not any(_moved(n, o) for n, o in zip(new, old, strict=True)):
                continue
            objects = client_objects(self.settings, client, new)
            for tree, index in zip((objects.down, objects.up), indexes, strict=True):
                batch.klass("replace", index, tree.classes[0])
                batch.leaf("replace", index, tree.leaves[0])
                if fresh:
                    for f in tree.filters:
                        batch.filter("replace", index, ROOT_QDISC, f)
            self.rates[client.slot] = new
        batch.commit()
        self.sessions = sessions
        if add is not None:
            self.kernel_slots.add(add.slot)


def _moved(new: int, old: int) -> bool:
    return abs(new - old) > new * RATE_TOLERANCE
