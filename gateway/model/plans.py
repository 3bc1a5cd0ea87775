"""Which plans librarians may issue now: an admin's runtime switch, kept in Redis.

The config file defines every plan (``[plans.<name>]``); an admin switches single
plans off and on again at the desk or with ``hotspotctl plan disable/enable`` without
editing the file (``hs:plans:disabled``). A switched-off plan issues no new vouchers;
vouchers already issued on it keep working until they run out.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis

from gateway.config import Plan
from gateway.logs import get_logger
from gateway.model import audit, keys

__all__ = ["PlanUnavailable", "available_plans", "disabled_plans", "is_available", "set_available"]

log = get_logger("plans")


class PlanUnavailable(Exception):
    """The plan does not exist in the config, or an admin switched it off."""

    def __init__(self, name: str, exists: bool):
        super().__init__(f'plan "{name}" is switched off' if exists else f'no plan named "{name}"')
        self.name = name
        self.exists = exists


def disabled_plans(r: redis.Redis) -> set[str]:
    """Return the names of the plans an admin switched off."""
    return set(r.smembers(keys.PLANS_DISABLED))


def available_plans(r: redis.Redis, plans: Mapping[str, Plan]) -> list[Plan]:
    """Return the plans librarians may issue now, in the config's order."""
    off = disabled_plans(r)
    return [plan for name, plan in plans.items() if name not in off]


def is_available(r: redis.Redis, plans: Mapping[str, Plan], name: str) -> Plan:
    """Return the plan ``name`` if vouchers may be issued on it, else raise :class:`PlanUnavailable`."""
    plan = plans.get(name)
    if plan is None:
        raise PlanUnavailable(name, exists=False)
    if r.sismember(keys.PLANS_DISABLED, name):
        raise PlanUnavailable(name, exists=True)
    return plan


def set_available(
    r: redis.Redis, plans: Mapping[str, Plan], name: str, available: bool, *, actor: str, now: float
) -> bool:
    """Switch plan ``name`` on or off; return whether anything changed (recorded with ``actor``)."""
    if name not in plans:
        raise PlanUnavailable(name, exists=False)
    with r.pipeline(transaction=True) as pipe:
        if available:
            pipe.srem(keys.PLANS_DISABLED, name)
        else:
            pipe.sadd(keys.PLANS_DISABLED, name)
        changed = bool(pipe.execute()[0])
    if changed:
        action = "plan_enable" if available else "plan_disable"
        audit.record(r, actor, action, now=now, plan=name)
        log.info(action, actor=actor, plan=name)
    return changed
