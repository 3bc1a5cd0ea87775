"""``hotspotctl status | clients | auth | kick | doctor``: who is online, and the firewall.

The CLI talks to the gateway through Redis (the same command stream the portal uses).
When the gateway is down (no fresh heartbeat in Redis) it falls back to Redis and the
kernel directly (``network.netns`` names the router's namespace in the lab), so an admin
can still see and repair things while the daemon is down. A gateway that beats but is
slow to answer is not down: ``kick`` and ``doctor`` then say so and exit 3 rather than
write the kernel beside it (two writers would race; the request stays queued for it).
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import redis
from rich.console import Console
from rich.table import Table

from gateway.cli import EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE, Context, fail, pass_ctx, print_json
from gateway.cli.complete import complete_online, complete_plan
from gateway.cli.tables import Column, print_table
from gateway.model import commands, keys
from gateway.model.leases import HostNames
from gateway.model.sessions import (
    Session,
    new_session,
    normalize_mac,
    online_sessions,
    session_for_mac,
    start_session,
)
from gateway.model.store import connect
from gateway.nsenter import in_netns
from gateway.shaping.rates import read_rates
from gateway.units import format_duration, format_rate, format_size

__all__ = ["COMMANDS"]

ASK_TIMEOUT = 3.0  # seconds to wait for the gateway's answer


def _live_gateway(r, config) -> dict | None:
    """Return the gateway's heartbeat if it is fresh, else None (the gateway is down).

    Stale also covers a heartbeat whose process is gone from this router (killed with -9,
    its heartbeat not yet expired): the CLI runs on the router the gateway runs on.
    """
    info = commands.live_gateway(r, time.time(), config.gateway.reconcile_interval)
    if info is not None and not _process_exists(info.get("pid")):
        return None
    return info


def _process_exists(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # no usable pid: go by the heartbeat's age alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user (the gateway's)
    try:  # a killed process not yet reaped by its parent is a zombie: gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True  # no /proc to ask: go by the signal


def _gateway_info(ctx: Context) -> dict | None:
    return _live_gateway(ctx.redis, ctx.config)


def _ask(ctx: Context, op: str, timeout: float = ASK_TIMEOUT, **fields: str) -> dict | None:
    """Send ``op`` to the gateway and return its reply; None only when the gateway is down.

    Down is a missing or stale heartbeat: the caller may then act on Redis and the kernel
    itself. A gateway with a fresh heartbeat that does not answer within ``timeout`` is
    slow, not down: this fails (exit 3) and never falls back, so no second writer runs
    beside it.
    """
    info = _gateway_info(ctx)
    if info is None:
        return None
    reply = commands.request(ctx.redis, op, timeout, **fields)
    if reply is None:
        fail(
            f"the gateway (pid {info.get('pid', '?')}) is running but did not answer within {timeout:g} s; "
            f"nothing was done here (the {op} request stays queued for it): try again, or see "
            "hotspotctl status and journalctl -u hotspot-gateway",
            EXIT_UNAVAILABLE,
        )
    return reply


def _portal_health(ctx: Context) -> str:
    url = f"{ctx.config.portal.url}/healthz"
    try:
        with in_netns(ctx.config.network.netns):
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own URL)
                body = json.loads(response.read() or b"{}")
    except (OSError, ValueError, urllib.error.URLError) as err:
        return f"down ({getattr(err, 'reason', err)})"
    return "ok" if body.get("portal") == "ok" else f"unhealthy ({body})"


def _target(text: str) -> tuple[str | None, str | None]:
    """Return (mac, ip) from what the admin typed (one of them)."""
    try:
        return normalize_mac(text), None
    except ValueError:
        pass
    try:
        return None, str(ipaddress.ip_address(text))
    except ValueError:
        raise click.BadParameter(f'"{text}" is neither a MAC (02:00:00:00:01:01) nor an IP address') from None


def _resolve(ctx: Context, mac: str | None, ip: str | None) -> tuple[str | None, str | None]:
    """Fill in the other half of (mac, ip) from the gateway, else the neighbour table directly."""
    reply = _ask(ctx, "resolve", **({"mac": mac} if mac else {"ip": ip or ""}))
    if reply is not None:
        return reply.get("mac") or mac, reply.get("ip") or ip
    # deliberate: pyroute2 costs ~160 ms at start-up; only the gateway-down path reads neighbours here
    from gateway.neighbour_reader import NeighbourReader

    net = ctx.config.network
    reader = NeighbourReader(net.netns, net.lan_interface)
    try:
        table = reader.read()
    finally:
        reader.close()
    if mac:
        ips = table.ip4_of(mac)
        return mac, ips[0] if ips else None
    return table.mac_at(ip or ""), ip


def _find_online(ctx: Context, mac: str | None, ip: str | None) -> Session | None:
    if mac:
        return session_for_mac(ctx.redis, mac)
    return next((s for s in online_sessions(ctx.redis) if s.ip == ip), None)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def status(ctx: Context, as_json: bool) -> None:
    """Show whether the gateway, the portal and Redis run, and how many clients are online.

    Exits 3 when one of them is down.
    """
    now = time.time()
    started = time.monotonic()
    try:  # Redis down is a state to report, like the others (the portal is still asked)
        r = connect(ctx.config, timeout=2)
        r.ping()
        redis_ms = (time.monotonic() - started) * 1000
        info = _live_gateway(r, ctx.config)  # None: down (no heartbeat, or a stale one)
        online = r.scard(keys.ONLINE)
        redis_state = {"state": "ok", "ping_ms": round(redis_ms, 2)}
    except redis.RedisError as err:
        info, online, redis_state = None, None, {"state": "down", "error": str(err)}
    portal = _portal_health(ctx)
    last = (info or {}).get("pass") or {}
    gateway_state = "ok" if info else "down" if online is not None else "unknown"
    warnings = gateway_warnings(info or {}, ctx.config)
    data = {
        "redis": redis_state,
        "gateway": {"state": gateway_state, **(info or {})},
        "portal": {"state": portal, "url": ctx.config.portal.url},
        "clients_online": online,
        "warnings": warnings,
    }
    if as_json:
        print_json(data)
    else:
        console = Console()
        table = Table("service", "state", "details", show_header=False, box=None)
        if online is None:
            table.add_row("redis", "[red]down[/]", f"{redis_state['error']} (systemctl status redis-server)")
        else:
            table.add_row("redis", "[green]ok[/]", f"ping {redis_ms:.1f} ms")
        if online is None:
            table.add_row("gateway", "[yellow]unknown[/]", "its heartbeat is in Redis")
        elif info:
            age = now - last.get("at", now)
            details = (
                f"pid {info['pid']}, up {format_duration(now - info['started_at'])}, "
                f"last pass {age:.0f}s ago ({last.get('duration_ms', 0)} ms)"
            )
            table.add_row("gateway", "[green]ok[/]", details)
        else:
            hint = "no fresh heartbeat in Redis (systemctl status hotspot-gateway)"
            table.add_row("gateway", "[red]down[/]", hint)
        colour = "green" if portal == "ok" else "red"
        table.add_row("portal", f"[{colour}]{portal}[/]", ctx.config.portal.url)
        table.add_row("clients", "?" if online is None else str(online), "online")
        for warning in warnings:
            table.add_row(warning["what"], "[yellow]warning[/]", warning["message"])
        console.print(table)
    if not info or portal != "ok":
        raise SystemExit(EXIT_UNAVAILABLE)


NOT_SYNCHRONISED = "not synchronised by NTP (the kernel says)"


def gateway_warnings(info: dict, config) -> list[dict]:
    """Return what the running gateway's heartbeat says is wrong but not down (status still 0)."""
    warnings = []
    session_log = info.get("session_log") or {}
    if session_log and not session_log.get("ok", True):
        warnings.append({
            "what": "session log",
            "message": f"cannot be written to {config.paths.log_dir}: {session_log.get('error')}; "
                       f"{session_log.get('waiting', '?')} records wait in Redis and are written when it "
                       "works again (df -h; docs/fleet-ops.md#session-log)",
        })  # fmt: skip
    clock = info.get("clock") or {}
    if clock.get("synchronised") is False:
        warnings.append({
            "what": "clock",
            "message": f"{NOT_SYNCHRONISED} (no NTP yet after a power cut?): timedatectl; "
                       "systemctl status systemd-timesyncd",
        })  # fmt: skip
    if clock.get("problem"):
        warnings.append({"what": "clock", "message": f"{clock['problem']} (docs/fleet-ops.md#clock)"})
    if clock.get("jumped"):
        at = datetime.fromtimestamp(clock["jumped_at"], ZoneInfo(config.library.timezone))
        warnings.append({
            "what": "clock",
            "message": f"jumped by {format_duration(abs(clock['jumped']))} "
                       f"{'forward' if clock['jumped'] > 0 else 'back'} at {at:%Y-%m-%d %H:%M}; "
                       "online sessions and new vouchers were moved with it",
        })  # fmt: skip
    return warnings


@click.command("clients")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def clients(ctx: Context, as_json: bool) -> None:
    """List the clients online: MAC, IP, plan, since, time left, bytes and current rate down/up, idle."""
    now = time.time()
    sessions = online_sessions(ctx.redis)
    current = read_rates(ctx.redis, [s.sid for s in sessions])  # the shaper's, from its last pass
    hosts = HostNames(ctx.config.dhcp.lease_file).get()  # DHCP host names, where phones gave one
    if as_json:
        print_json([
            {"sid": s.sid, "mac": s.mac, "ip": s.ip, "host": hosts.get(s.mac, ""), "kind": s.kind,
             "plan": s.plan,
             "voucher_id": s.voucher_id, "started_at": s.started_at, "expires_at": s.expires_at,
             "seconds_left": round(s.seconds_left(now)), "bytes_down": s.bytes_down, "bytes_up": s.bytes_up,
             "last_active": s.last_active, "rate_down": current.get(s.sid, (None,) * 3)[0],
             "rate_up": current.get(s.sid, (None,) * 3)[1]}
            for s in sessions
        ])  # fmt: skip
        return
    # addresses and plans are never cut short; in a narrow window the live rates go first
    columns = [
        Column("MAC", key=True), Column("IP", key=True), Column("plan", key=True), Column("since", drop=2),
        Column("left"), Column("down", drop=1), Column("up", drop=4), Column("down now", drop=5),
        Column("up now", drop=6), Column("idle", drop=3),
    ]  # fmt: skip
    rows = []
    zone = ZoneInfo(ctx.config.library.timezone)  # one zone everywhere, not the machine's
    for s in sessions:
        since = datetime.fromtimestamp(s.started_at, zone).strftime("%H:%M")  # the library's clock
        idle = now - max(s.last_active, s.started_at)
        down_now, up_now = (format_rate(x) for x in current[s.sid][:2]) if s.sid in current else ("-", "-")
        rows.append((
            s.mac, s.ip, s.plan or s.kind, since, format_duration(s.seconds_left(now)),
            format_size(s.bytes_down), format_size(s.bytes_up), down_now, up_now, format_duration(idle),
        ))  # fmt: skip
    console = Console()
    print_table(columns, rows, console=console)
    console.print(f"{len(sessions)} online")


@click.command("auth")
@click.argument("target", shell_complete=complete_online)
@click.option("--minutes", default=60, show_default=True, type=click.IntRange(1, 30 * 24 * 60),
              help="How long the client stays online.")  # fmt: skip
@click.option("--plan", "plan_name", default="", shell_complete=complete_plan,
              help="Caps from this plan [default: the whole uplink].")  # fmt: skip
@click.option("--replace", is_flag=True, help="End the device's current session first, if it has one.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def auth(ctx: Context, target: str, minutes: int, plan_name: str, replace: bool, as_json: bool) -> None:
    """Let a device online without a voucher: TARGET is its MAC or its IP.

    A device that is already online keeps its session unless --replace is given (its
    voucher's time would otherwise be thrown away without a word)."""
    config = ctx.config
    if plan_name and plan_name not in config.plans:
        fail(f'no plan named "{plan_name}" (plans: {", ".join(sorted(config.plans))})', EXIT_USAGE)
    mac, ip = _resolve(ctx, *_target(target))
    if not mac or not ip:
        fail(f"{target}: not seen on the LAN (no neighbour entry); is the device connected?", EXIT_FAILED)
    plan = config.plans.get(plan_name)
    now = time.time()
    current = session_for_mac(ctx.redis, mac)
    if current is not None and not replace:
        left = format_duration(current.seconds_left(now))
        fail(f"{mac} is already online ({current.kind} session, plan {current.plan or '-'}, {left} left); "
             "add --replace to end it and start this one", EXIT_FAILED)  # fmt: skip
    session = new_session(
        mac=mac, ip=ip, kind="admin", plan=plan_name, now=now, expires_at=now + minutes * 60,
        down=plan.down if plan else config.uplink.down, up=plan.up if plan else config.uplink.up,
        weight=plan.weight if plan else 1.0,
    )  # fmt: skip
    start_session(ctx.redis, session, now)
    reply = commands.request(ctx.redis, "authorize", ASK_TIMEOUT, sid=session.sid)
    result = {"sid": session.sid, "mac": mac, "ip": ip, "expires_at": session.expires_at, "gateway": reply}
    if as_json:
        print_json(result)
    elif reply and reply.get("ok"):
        click.echo(f"{mac} {ip}: online for {format_duration(minutes * 60)} (session {session.sid})")
    if reply is None:
        fail("session stored, but the gateway did not answer; it applies it when it runs", EXIT_UNAVAILABLE)
    if not reply.get("ok"):
        fail(f"gateway: {reply.get('error')}", EXIT_FAILED)


@click.command("kick")
@click.argument("target", shell_complete=complete_online)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def kick(ctx: Context, target: str, as_json: bool) -> None:
    """Log a device out now: TARGET is its MAC or its IP."""
    mac, ip = _target(target)
    session = _find_online(ctx, mac, ip)
    if session is None:
        fail(f"{target}: no client online with that {'MAC' if mac else 'IP'}", EXIT_FAILED)
    reply = _ask(ctx, "deauthorize", sid=session.sid, reason="kicked")
    if reply is None:
        # the gateway is down: cut it off in the kernel ourselves, counting its last bytes, and end it
        _local_logout(ctx, session)
        reply = {"ok": True, "sid": session.sid, "ended": True, "by": "hotspotctl (gateway down)"}
    if as_json:
        print_json({"mac": session.mac, "ip": session.ip, **reply})
    elif reply.get("ok"):
        click.echo(f"{session.mac} {session.ip}: logged out (session {session.sid})")
    if not reply.get("ok"):
        fail(f"gateway: {reply.get('error')}", EXIT_FAILED)


def _local_logout(ctx: Context, session: Session) -> None:
    # deliberate: the reconciler (nftables, tc, the binder) loads only on the gateway-down path (root)
    from gateway.daemon.reconcile import build_reconciler

    _need_root()
    reconciler = build_reconciler(ctx.config, ctx.redis)
    try:
        reconciler.finish(session, "kicked", time.time())
    finally:
        reconciler.close()


def _need_root() -> None:
    if os.geteuid() != 0:
        fail("the gateway is down and reading the kernel directly needs root", EXIT_UNAVAILABLE)


@click.command("doctor")
@click.option(
    "--repair", is_flag=True, help="Apply one reconcile pass (the gateway's, or our own if it is down)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def doctor(ctx: Context, repair: bool, as_json: bool) -> None:
    """Compare who should be online (Redis) with what the firewall enforces (kernel).

    Exits 1 when they differ (with --repair: when they still differ afterwards).
    """
    reply = _ask(ctx, "reconcile" if repair else "doctor", timeout=10.0)
    if reply is None:
        reply = _local_doctor(ctx, repair)
    if repair and reply.get("source") != "hotspotctl":
        reply = {**(_ask(ctx, "doctor", timeout=10.0) or {}), "repair": reply}
    report = reply.get("report", {})
    if as_json:
        print_json(reply)
    else:
        _print_report(reply, report)
    if not reply.get("ok") or not report.get("ok", False):
        raise SystemExit(EXIT_FAILED)


def _local_doctor(ctx: Context, repair: bool) -> dict:
    # deliberate: the daemon and the kernel libraries (~0.5 s) load only on the gateway-down path
    from gateway.daemon.reconcile import build_reconciler
    from gateway.firewall.doctor import diagnose
    from gateway.firewall.enforce import read_kernel

    _need_root()
    reconciler = build_reconciler(ctx.config, ctx.redis)
    stored = json.loads(ctx.redis.get(keys.GATEWAY_RULESET) or "{}")
    reconciler.enforcer.expected = stored.get("fingerprint", "")
    note = "the gateway is down; read the kernel directly"
    reply: dict = {"ok": True, "source": "hotspotctl", "note": note}
    try:
        if repair:
            reply["repair"] = reconciler.run_pass().summary()
        table = reconciler.neighbours.read() if reconciler.neighbours else None
        if table is not None and reconciler.binder is not None:  # IPv6: only addresses that answer
            verified = reconciler.binder.ip6(online_sessions(ctx.redis), table.ip6_by_mac, time.time())
            table = replace(table, ip6_by_mac=verified)
        reply["report"] = diagnose(
            online_sessions(ctx.redis), read_kernel(reconciler.enforcer.nft), reconciler.enforcer.expected,
            time.time(), table, reconciler.enforcer.guard_ok(),
        )  # fmt: skip
    finally:
        reconciler.close()
    return reply


def _print_report(reply: dict, report: dict) -> None:
    console = Console()
    if reply.get("note"):
        console.print(f"[yellow]{reply['note']}[/]")
    if "repair" in reply:
        counts = reply["repair"].get("counts", {})
        console.print(f"repair pass: {json.dumps(counts)}")
    colour = "green" if report.get("table") == "ok" else "red"
    console.print(f"table inet hotspot: [{colour}]{report.get('table')}[/]")
    if "guard" in report:
        colour = {"ok": "green", "missing": "red"}.get(report["guard"], "yellow")
        console.print(f"fail-closed routing rules (ip rule pref 1000/1001): [{colour}]{report['guard']}[/]")
    console.print(f"online sessions: {report.get('online')}, kernel elements: {report.get('elements')}")
    for key, label in (
        ("missing", "missing in the kernel (client cut off)"),
        ("extra", "in the kernel but not online (client let in)"),
        ("wrong_session", "element of another session"),
        ("timeout_off", "kernel timeout differs"),
    ):
        rows = report.get(key) or []
        if rows:
            console.print(f"[red]{label}: {len(rows)}[/]")
            for row in rows[:20]:
                console.print(f"  {row['set']} {row['element']}  ({row.get('sid') or 'no session'})")
    if report.get("invalid_sessions"):
        console.print(f"[red]sessions with a bad MAC/IP: {', '.join(report['invalid_sessions'])}[/]")
    verdict = "[green]kernel matches Redis[/]" if report.get("ok") else "[red]kernel differs from Redis[/]"
    console.print(verdict)


COMMANDS = [status, clients, auth, kick, doctor]
