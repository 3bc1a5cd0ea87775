"""Librarian accounts for the desk, and the desk's login sessions. Stored in Redis.

Passwords are kept only as argon2id hashes (argon2-cffi's RFC 9106 low-memory
profile) and checked in about the same time whether the account exists or not.
Roles: ``librarian`` (vouchers, clients, reports) and ``admin`` (also accounts and
plans). The first admin is made over SSH: ``hotspotctl librarian add NAME --role admin``.

A desk login is a random token in the browser's signed cookie pointing at
``hs:desk:session:<token>``, which expires on its own after ``desk.session_lifetime``.
Changing a password, changing a role or removing an account ends every login of it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.logs import get_logger
from gateway.model import audit, keys

__all__ = [
    "MIN_PASSWORD",
    "ROLES",
    "Account",
    "AccountConflict",
    "AccountError",
    "AccountNotFound",
    "DeskLogin",
    "LastAdmin",
    "authenticate",
    "change_role",
    "check_name",
    "check_password",
    "close_all_logins",
    "close_login",
    "create_account",
    "get_account",
    "list_accounts",
    "login_account",
    "open_login",
    "remove_account",
    "set_password",
]

ROLES = ("librarian", "admin")
MIN_PASSWORD = 8
MAX_PASSWORD = 256
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
_hasher = PasswordHasher()
_dummy_hash: str | None = None
log = get_logger("accounts")


class AccountError(ValueError):
    """An account change cannot be made; the message says why, for the person who asked."""


class AccountConflict(AccountError):
    """The change conflicts with what exists: the name is taken, or it is the last admin."""


class LastAdmin(AccountConflict):
    """The change would leave the desk without an admin."""


class AccountNotFound(AccountError):
    """There is no account with this name."""


@dataclass(frozen=True)
class Account:
    """A desk account (the hash stays in Redis; it is not part of this object)."""

    name: str
    role: str
    created_at: float
    created_by: str
    last_login: float = 0.0

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class DeskLogin:
    """A signed-in desk session: who, and until when."""

    token: str
    account: Account
    created_at: float
    expires_at: float


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid account name, else raise AccountError."""
    if not _NAME.match(name or ""):
        raise AccountError('account names are 2-32 lowercase letters, digits, ".", "-" or "_" (e.g. "siti")')
    return name


def check_password(password: str, name: str = "") -> str:
    """Return ``password`` if it is acceptable, else raise AccountError saying why."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"the password must have at most {MAX_PASSWORD} characters")
    if name and password.lower() == name.lower():
        raise AccountError("the password must not be the account name")
    return password


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f'unknown role "{role}"; one of {", ".join(ROLES)}')
    return role


def _from_redis(data: dict[str, str]) -> Account:
    return Account(
        name=data["name"],
        role=data["role"],
        created_at=float(data.get("created_at") or 0),
        created_by=data.get("created_by", ""),
        last_login=float(data.get("last_login") or 0),
    )


def get_account(r: redis.Redis, name: str) -> Account | None:
    """Return the account ``name``, or None."""
    if not _NAME.match(name or ""):
        return None
    data = r.hgetall(keys.account(name))
    return _from_redis(data) if data else None


def list_accounts(r: redis.Redis) -> list[Account]:
    """Return every account, by name."""
    names = sorted(r.smembers(keys.ACCOUNTS))
    with r.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(keys.account(name))
        rows = pipe.execute()
    return [_from_redis(row) for row in rows if row]


def create_account(r: redis.Redis, name: str, password: str, role: str, *, actor: str, now: float) -> Account:
    """Create an account; raise AccountError if the name is taken or a value is not acceptable."""
    check_name(name)
    check_password(password, name)
    _check_role(role)
    account = Account(name=name, role=role, created_at=now, created_by=actor)
    hashed = _hasher.hash(password)
    key = keys.account(name)

    def attempt(pipe: redis.client.Pipeline) -> None:
        if pipe.exists(key):
            raise AccountConflict(f'there is already an account "{name}"')
        pipe.multi()
        pipe.hset(key, mapping={"name": name, "role": role, "hash": hashed, "created_at": str(now),
                                "created_by": actor, "last_login": "0"})  # fmt: skip
        pipe.sadd(keys.ACCOUNTS, name)
        audit.record(pipe, actor, "account_add", now=now, account=name, role=role)

    r.transaction(attempt, key)
    log.info("account_add", actor=actor, account=name, role=role)
    return account


def _admins_left_without(r: redis.Redis, name: str) -> int:
    return sum(1 for a in list_accounts(r) if a.is_admin and a.name != name)


def set_password(r: redis.Redis, name: str, password: str, *, actor: str, now: float) -> None:
    """Set a new password and end the account's desk logins; AccountError if it cannot be set."""
    check_password(password, name)
    hashed = _hasher.hash(password)
    key = keys.account(name)

    def attempt(pipe: redis.client.Pipeline) -> None:
        if not pipe.exists(key):
            raise AccountNotFound(f'there is no account "{name}"')
        pipe.multi()
        pipe.hset(key, "hash", hashed)
        audit.record(pipe, actor, "account_passwd", now=now, account=name)

    r.transaction(attempt, key)
    close_all_logins(r, name)
    log.info("account_passwd", actor=actor, account=name)


def change_role(r: redis.Redis, name: str, role: str, *, actor: str, now: float) -> None:
    """Give an account another role and end its desk logins; the last admin stays an admin."""
    _check_role(role)
    account = get_account(r, name)
    if account is None:
        raise AccountNotFound(f'there is no account "{name}"')
    if account.role == role:
        return
    if account.is_admin and _admins_left_without(r, name) == 0:
        raise LastAdmin("this is the last admin account; make another admin first")
    r.hset(keys.account(name), "role", role)
    audit.record(r, actor, "account_role", now=now, account=name, role=role)
    close_all_logins(r, name)
    log.info("account_role", actor=actor, account=name, role=role)


def remove_account(r: redis.Redis, name: str, *, actor: str, now: float) -> None:
    """Remove an account and end its desk logins; the last admin cannot be removed."""
    account = get_account(r, name)
    if account is None:
        raise AccountNotFound(f'there is no account "{name}"')
    if account.is_admin and _admins_left_without(r, name) == 0:
        raise LastAdmin("this is the last admin account; make another admin first")
    with r.pipeline(transaction=True) as pipe:
        pipe.delete(keys.account(name))
        pipe.srem(keys.ACCOUNTS, name)
        audit.record(pipe, actor, "account_remove", now=now, account=name)
        pipe.execute()
    close_all_logins(r, name)
    log.info("account_remove", actor=actor, account=name)


def authenticate(r: redis.Redis, name: str, password: str) -> Account | None:
    """Return the account if ``password`` is right, else None (same work whether it exists or not)."""
    global _dummy_hash
    data = r.hgetall(keys.account(name)) if _NAME.match(name or "") else {}
    stored = data.get("hash") if data else None
    if stored is None:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash(secrets.token_hex(16))
        stored = _dummy_hash
    try:
        _hasher.verify(stored, password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return None
    if not data:
        return None
    if _hasher.check_needs_rehash(stored):
        r.hset(keys.account(name), "hash", _hasher.hash(password))
    return _from_redis(data)


# -- desk logins ---------------------------------------------------------------------


def open_login(r: redis.Redis, account: Account, *, lifetime: int, now: float) -> str:
    """Start a desk login for ``account`` lasting ``lifetime`` seconds; return its token."""
    token = secrets.token_urlsafe(32)
    with r.pipeline(transaction=True) as pipe:
        pipe.hset(keys.desk_session(token), mapping={"account": account.name, "created_at": str(now),
                                                     "expires_at": str(now + lifetime)})  # fmt: skip
        pipe.expire(keys.desk_session(token), lifetime)
        pipe.sadd(keys.account_desk_sessions(account.name), token)
        pipe.expire(keys.account_desk_sessions(account.name), lifetime)
        pipe.hset(keys.account(account.name), "last_login", str(now))
        pipe.execute()
    return token


def login_account(r: redis.Redis, token: str, *, now: float) -> DeskLogin | None:
    """Return the live desk login of ``token`` with its account as it is now, or None."""
    if not token or len(token) > 64:
        return None
    data = r.hgetall(keys.desk_session(token))
    if not data or float(data.get("expires_at") or 0) <= now:
        return None
    account = get_account(r, data.get("account", ""))
    if account is None:
        return None
    return DeskLogin(token, account, float(data["created_at"]), float(data["expires_at"]))


def close_login(r: redis.Redis, token: str) -> None:
    """End one desk login (logout)."""
    data = r.hgetall(keys.desk_session(token))
    with r.pipeline(transaction=True) as pipe:
        pipe.delete(keys.desk_session(token))
        if data.get("account"):
            pipe.srem(keys.account_desk_sessions(data["account"]), token)
        pipe.execute()


def close_all_logins(r: redis.Redis, name: str) -> int:
    """End every desk login of account ``name``; return how many there were."""
    tokens = r.smembers(keys.account_desk_sessions(name))
    with r.pipeline(transaction=True) as pipe:
        for token in tokens:
            pipe.delete(keys.desk_session(token))
        pipe.delete(keys.account_desk_sessions(name))
        pipe.execute()
    return len(tokens)
