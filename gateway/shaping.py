"""The shaping step of the gateway's reconcile pass: slots, tc tree, accounting, quotas.

One :meth:`Shaper.reconcile` call per pass, with the online sessions and ``now``:

1. read both tc trees back from the kernel (classes with their byte counters);
2. account: add what each client's counters grew to its session in Redis, with its
   current rate (every ``gateway.accounting_interval``), and end the sessions whose
   data quota is used up (reason ``quota``);
3. give every session without one a slot (the number its tc handles derive from),
   never one whose class is still in the kernel;
4. plan both trees (:func:`gateway.tc_plan.plan_tc`) and apply the difference.

Level-triggered like the rest of the loop: each pass starts from Redis and the
kernel, so a restart, a hand-deleted qdisc or a missed command heals on the next.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import redis

from gateway import accounting, keys
from gateway.config import Config
from gateway.logs import get_logger
from gateway.sessions import Session, end_session
from gateway.tc_apply import ApplyResult, TcApplier, slot_counters
from gateway.tc_plan import assign_slots, plan_tc, settings_from_config

__all__ = ["ShapingPass", "Shaper"]

log = get_logger("shaping")


@dataclass(frozen=True)
class ShapingPass:
    """What one pass did: tc changes, sessions accounted, sessions ended for quota."""

    result: ApplyResult
    accounted: int
    quota_ended: tuple[str, ...]
    slots_assigned: int


class Shaper:
    """Keeps the router's tc trees and the sessions' byte counts in step with Redis."""

    def __init__(self, config: Config, r: redis.Redis, applier: TcApplier | None = None):
        self.config = config
        self.redis = r
        net = config.network
        if applier is None:
            from gateway.names import ifb_name

            applier = TcApplier(net.netns, net.lan_interface, ifb_name(net.lan_interface))
        self.applier = applier
        self.settings = settings_from_config(config, applier.probe_leaf_kind())
        self.last_accounted = 0.0

    def close(self) -> None:
        self.applier.close()

    def reconcile(self, sessions: list[Session], now: float) -> ShapingPass:
        """Run the shaping step for the online ``sessions``; return what it did."""
        down = self.applier.read(self.settings.lan_interface)
        up = self.applier.read(self.settings.ifb_interface)
        counters = slot_counters(down, up)

        accounted, ended = 0, []
        if now - self.last_accounted >= self.config.gateway.accounting_interval:
            accounted, ended = self._account(sessions, counters, now)
            self.last_accounted = now
        if ended:
            sessions = [s for s in sessions if s.sid not in ended]

        in_kernel = set(counters)
        sessions, assigned = self._assign_slots(sessions, in_kernel, now)
        plan = plan_tc(self.settings, sessions)
        result = self.applier.apply(plan, states=(down, up))
        if not result.unchanged:
            log.info(
                "tc_applied", added=result.added, changed=result.changed, removed=result.removed,
                clients=len(sessions),
            )  # fmt: skip
        return ShapingPass(result, accounted, tuple(ended), assigned)

    def _account(
        self, sessions: list[Session], counters: dict[int, tuple[int, int]], now: float
    ) -> tuple[int, list[str]]:
        marks = accounting.read_marks(self.redis, (s.sid for s in sessions))
        usages = accounting.account(sessions, counters, marks, now)
        accounting.write_usage(self.redis, usages)
        by_sid = {s.sid: s for s in sessions}
        ended = []
        for usage in usages:
            session = by_sid[usage.sid]
            if accounting.over_quota(session, usage):
                done = end_session(
                    self.redis, usage.sid, "quota", now,
                    bytes_up=usage.bytes_up, bytes_down=usage.bytes_down,
                )  # fmt: skip
                if done is not None:
                    ended.append(usage.sid)
                    log.info(
                        "session_ended", sid=usage.sid, mac=session.mac, reason="quota",
                        bytes_total=usage.total, quota=session.quota,
                    )  # fmt: skip
        return len(usages), ended

    def _assign_slots(
        self, sessions: list[Session], in_kernel: set[int], now: float
    ) -> tuple[list[Session], int]:
        current = {s.sid: s.slot for s in sessions}
        own = {s.slot for s in sessions if s.slot}
        changes = assign_slots(current, [s.sid for s in sessions], reserved=in_kernel - own)
        if not changes:
            return sessions, 0
        with self.redis.pipeline(transaction=True) as pipe:
            for sid, slot in changes.items():
                pipe.hset(keys.session(sid), "slot", slot)
                accounting.reset_marks(pipe, sid, now)
            pipe.execute()
        return [replace(s, slot=changes.get(s.sid, s.slot)) for s in sessions], len(changes)
