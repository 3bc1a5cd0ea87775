"""The shaping component of the reconcile loop: tc classes for the online sessions.

It follows the loop's ``Component`` protocol (``docs/gateway.md``): ``reconcile`` on
every pass, ``login``/``logout`` as the fast paths of ``authorize``/``deauthorize``.

A pass (level-triggered, from the kernel and Redis, nothing remembered that matters):

1. read both tc trees back (classes with their byte counters, leaves, filters);
2. give every session without one a slot (the number its tc handles derive from),
   never one whose class is still in the kernel, and write it to Redis;
3. store each client's current rate (growth of its counters since the last pass);
4. plan both trees (:func:`gateway.tc_plan.plan_tc`) and apply the difference.

The fast paths read nothing: they plan with the sessions of the last pass plus (or
minus) the one logging in (out), diff that against the last plan and apply it, so a
phone has its class, at its fair share, as soon as it is let through. The next pass
checks their work against the kernel.
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
from gateway.tc_apply import TcApplier, slot_counters
from gateway.tc_diff import TreeState, diff_tree, filter_key
from gateway.tc_model import TcPlan, TcTree, slot_of_class
from gateway.tc_plan import assign_slots, plan_tc, settings_from_config

__all__ = ["Shaper"]

log = get_logger("shaping")


def _as_state(tree: TcTree) -> TreeState:
    """Return the kernel state a tree leaves once applied (what the fast paths diff against)."""
    return TreeState(
        root_ok=True,
        classes=tree.class_map(),
        leaves={leaf.parent: leaf for leaf in tree.leaves},
        filters={filter_key(f): f for f in tree.filters},
    )


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
        self.sessions: dict[str, Session] = {}  # as planned last, with their slots
        self.plan: TcPlan | None = None  # what the kernel has, as far as we know
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
        if not result.unchanged:
            log.info(
                "tc_applied", added=result.added, changed=result.changed, removed=result.removed,
                clients=len(sessions),
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
        """Give ``session`` its classes now, at its fair share (no kernel read)."""
        if self.plan is None:
            return  # no pass yet: the first one does it
        # a device logging in again replaces its old session (same MAC or same address)
        others = [
            s for s in self.sessions.values()
            if s.sid != session.sid and s.mac != session.mac and s.ip != session.ip
        ]  # fmt: skip
        slot = session.slot
        if not slot or any(s.slot == slot for s in others):
            taken = {s.slot for s in others}
            in_kernel = {slot_of_class(c.handle) for c in self.plan.down.classes} - {None}
            slot = assign_slots({session.sid: 0}, [session.sid], reserved=taken | in_kernel)[session.sid]
            self._store_slots({session.sid: slot})
        self._apply_fast([*others, replace(session, slot=slot)])

    def logout(self, session: Session, now: float) -> None:
        """Take ``session``'s classes away now (no kernel read)."""
        if self.plan is None or session.sid not in self.sessions:
            return
        self._apply_fast([s for s in self.sessions.values() if s.sid != session.sid])

    def _apply_fast(self, sessions: list[Session]) -> None:
        plan = plan_tc(self.settings, sessions)
        for tree, before in ((plan.down, self.plan.down), (plan.up, self.plan.up)):
            state = _as_state(before)
            diff = diff_tree(tree, state)
            if not diff.is_empty():
                self.applier.apply_diff(tree, state, diff)
        self.plan = plan
        self.sessions = {s.sid: s for s in sessions}
