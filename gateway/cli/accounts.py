"""``hotspotctl librarian``: desk accounts (add, passwd, role, remove, list) and ``hotspotctl audit``.

The first admin is made here, over SSH: ``hotspotctl librarian add NAME --role admin``
prompts for the password twice; scripts pass ``--password-stdin`` and pipe it in.
"""

from __future__ import annotations

import sys
import time

import click

from gateway.cli import EXIT_FAILED, EXIT_USAGE, Context, fail, pass_ctx, print_json
from gateway.cli.tables import Column, print_table
from gateway.cli.vouchers import actor, local_time
from gateway.model import audit
from gateway.model.accounts import (
    ROLES,
    AccountConflict,
    AccountError,
    AccountNotFound,
    change_role,
    check_name,
    check_password,
    create_account,
    list_accounts,
    remove_account,
    set_password,
)

__all__ = ["COMMANDS"]

password_stdin = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin (for scripts)."
)


def _password(name: str, from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    try:
        return check_password(password, name)
    except AccountError as err:
        fail(str(err), EXIT_USAGE)


def _account_error(err: AccountError) -> None:
    fail(str(err), EXIT_FAILED if isinstance(err, AccountConflict | AccountNotFound) else EXIT_USAGE)


@click.group("librarian")
def librarian_group() -> None:
    """Desk accounts: librarians and admins."""


@librarian_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="librarian", show_default=True)
@password_stdin
@pass_ctx
def add(ctx: Context, name: str, role: str, password_stdin: bool) -> None:
    """Create desk account NAME (lowercase letters, digits, ".", "-", "_")."""
    r = ctx.redis
    try:
        check_name(name)  # before asking for a password that would be thrown away
    except AccountError as err:
        _account_error(err)
    if any(a.name == name for a in list_accounts(r)):
        fail(f"account {name} already exists (hotspotctl librarian passwd {name} to set its password)")
    password = _password(name, password_stdin)
    try:
        create_account(r, name, password, role, actor=actor(), now=time.time())
    except AccountError as err:
        _account_error(err)
    click.echo(f"account {name} ({role}) created; sign in at {ctx.config.portal.url}/desk")


@librarian_group.command("passwd")
@click.argument("name")
@password_stdin
@pass_ctx
def passwd(ctx: Context, name: str, password_stdin: bool) -> None:
    """Set a new password for NAME (its desk logins end)."""
    r = ctx.redis
    password = _password(name, password_stdin)
    try:
        set_password(r, name, password, actor=actor(), now=time.time())
    except AccountError as err:
        _account_error(err)
    click.echo(f"password of {name} changed")


@librarian_group.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@pass_ctx
def role(ctx: Context, name: str, role: str) -> None:
    """Make NAME a librarian or an admin (its desk logins end)."""
    try:
        change_role(ctx.redis, name, role, actor=actor(), now=time.time())
    except AccountError as err:
        _account_error(err)
    click.echo(f"{name} is now {role}")


@librarian_group.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_ctx
def remove(ctx: Context, name: str, yes: bool) -> None:
    """Remove desk account NAME (the last admin cannot be removed)."""
    r = ctx.redis
    if not yes and sys.stdin.isatty():
        click.confirm(f"Remove account {name}?", abort=True)
    try:
        remove_account(r, name, actor=actor(), now=time.time())
    except AccountError as err:
        _account_error(err)
    click.echo(f"account {name} removed")


@librarian_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def list_cmd(ctx: Context, as_json: bool) -> None:
    """List desk accounts."""
    tz = ctx.config.library.timezone
    rows = [
        {"name": a.name, "role": a.role, "created": local_time(a.created_at, tz), "created_by": a.created_by,
         "last_login": local_time(a.last_login, tz)}
        for a in list_accounts(ctx.redis)
    ]  # fmt: skip
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no accounts yet: hotspotctl librarian add NAME --role admin")
        return
    drops = {"created": 2, "created_by": 3, "last_login": 1}
    columns = [Column(c.replace("_", " "), key=c == "name", drop=drops.get(c, 0)) for c in rows[0]]
    print_table(columns, [list(row.values()) for row in rows])


@click.command("audit")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--actor", "who", help='Only what this account did (CLI: "cli:<user>").')
@click.option("--target", help="Only entries about this voucher id, batch id or account.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def audit_cmd(ctx: Context, limit: int, who: str | None, target: str | None, as_json: bool) -> None:
    """Show who did what with vouchers, clients, plans and accounts, newest first."""
    tz = ctx.config.library.timezone
    entries = audit.recent(ctx.redis, limit=limit, actor=who, target=target)
    rows = [
        {"time": local_time(e.time, tz), "actor": e.actor, "action": e.action, **e.details} for e in entries
    ]
    if as_json:
        print_json(rows)
        return
    columns = [Column("time"), Column("actor", key=True), Column("action", key=True), Column("details")]
    print_table(
        columns,
        [
            (
                local_time(e.time, tz),
                e.actor,
                e.action,
                " ".join(f"{k}={v}" for k, v in sorted(e.details.items())),
            )
            for e in entries
        ],
    )


COMMANDS = [librarian_group, audit_cmd]
