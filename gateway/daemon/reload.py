"""Reloading the config in a running daemon: the new file, or the old one and the reasons.

A reload re-reads the file with the same loader the daemons start with. A file with any
problem is rejected as a whole and the running config stays in force (faucet's
``parse_configs``: "New config bad - rejecting"), so a typo never drops the firewall.
A good file replaces the running config; the next reconcile pass applies what changed
(plans, caps, walled garden, timeouts) without dropping anyone. A few keys are bound
when the process starts (where Redis is, where files and /metrics go, the namespace):
a change to those is reported as needing a restart and the old value stays.

Triggers: SIGHUP (``systemctl reload hotspot-gateway``) and the ``reload`` command on
the ``hs:commands`` stream (``hotspotctl reload``, which waits for the reply).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from gateway import config as config_mod
from gateway.config import Config

__all__ = ["RESTART_KEYS", "ReloadResult", "reload_config"]

# (dotted key, getter): values the daemon binds at start
RESTART_KEYS = {
    "redis.url": lambda c: c.redis_url,
    "metrics.listen": lambda c: c.metrics.listen,
    "paths.state_dir": lambda c: c.paths.state_dir,
    "paths.log_dir": lambda c: c.paths.log_dir,
    "network.netns": lambda c: c.network.netns,
}


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did: ``config`` is the one now in force (the old one when rejected)."""

    ok: bool
    config: Config
    problems: list[str] = field(default_factory=list)  # "file: key: message" lines when rejected
    restart_needed: list[str] = field(default_factory=list)  # keys whose new value waits for a restart
    changed: list[str] = field(default_factory=list)  # top-level sections that changed

    def reply(self) -> dict:
        """Return the result as the JSON reply of the ``reload`` command."""
        return {
            "ok": self.ok,
            "op": "reload",
            "path": str(self.config.path),
            "problems": self.problems,
            "restart_needed": self.restart_needed,
            "changed": self.changed,
        }


def reload_config(current: Config, path: str | os.PathLike[str] | None = None) -> ReloadResult:
    """Load ``path`` (default: the running config's file); return the result, never raise."""
    try:
        new = config_mod.load(path if path is not None else current.path)
    except config_mod.ConfigError as err:
        return ReloadResult(ok=False, config=current, problems=err.lines())
    restart = [key for key, get in RESTART_KEYS.items() if get(new) != get(current)]
    if restart:
        # keep what the process bound at start; the rest of the new file takes effect
        new = replace(
            new,
            redis_url=current.redis_url,
            metrics=current.metrics,
            paths=current.paths,
            network=replace(new.network, netns=current.network.netns),
        )
    changed = [
        name
        for name in Config.__dataclass_fields__
        if name != "path" and getattr(new, name) != getattr(current, name)
    ]
    return ReloadResult(ok=True, config=new, restart_needed=restart, changed=changed)
