"""Shell completion for the values admins type most: plan names, online MACs, voucher codes.

Turn it on with ``eval "$(_HOTSPOTCTL_COMPLETE=bash_source hotspotctl)"`` (zsh: ``zsh_source``;
see docs/install.md). Completion runs before any command, so these functions read the
config named by ``--config`` (else the usual places) themselves and never print an error
or exit: no config or no Redis simply means no suggestions.
"""

from __future__ import annotations

import time

import click
import redis
from click.shell_completion import CompletionItem

from gateway import config as config_mod
from gateway.model.sessions import online_sessions
from gateway.model.store import connect
from gateway.model.voucher_admin import list_vouchers
from gateway.model.vouchers import format_code

__all__ = ["complete_code", "complete_online", "complete_plan"]

MAX_CODES = 200  # the newest usable vouchers; more is noise in a shell


def _config(click_ctx: click.Context) -> config_mod.Config | None:
    path = click_ctx.find_root().params.get("config_path")
    try:
        return config_mod.load(path) if path else config_mod.load()
    except (config_mod.ConfigError, OSError):
        return None


def _redis(config: config_mod.Config) -> redis.Redis:
    return connect(config, timeout=1)


def complete_plan(click_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Plan names from the config's [plans]."""
    config = _config(click_ctx)
    if config is None:
        return []
    return [CompletionItem(name, help=plan.label_for("en")) for name, plan in config.plans.items()
            if name.startswith(incomplete)]  # fmt: skip


def complete_online(
    click_ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """MACs of the clients online now (with their IP as the help text)."""
    config = _config(click_ctx)
    if config is None:
        return []
    try:
        sessions = online_sessions(_redis(config))
    except redis.RedisError:
        return []
    wanted = incomplete.lower()
    return [
        CompletionItem(s.mac, help=s.ip)
        for s in sessions
        if s.mac.startswith(wanted) or s.ip.startswith(wanted)
    ]


def complete_code(click_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Codes of the newest vouchers that still work (``ABCD-EFGH``)."""
    config = _config(click_ctx)
    if config is None:
        return []
    try:
        rows, _more = list_vouchers(_redis(config), config.plans, now=time.time(), limit=MAX_CODES)
    except redis.RedisError:
        return []
    wanted = incomplete.upper()
    codes = (format_code(row.voucher.code) for row in rows if row.state in ("unused", "in_use"))
    return [CompletionItem(code) for code in codes if code.startswith(wanted)]
