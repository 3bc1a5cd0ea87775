"""Every Redis key the project uses, in one place: the schema of the source of truth.

Redis holds what *should* be (sessions, vouchers, accounts); the kernel holds what
*is* enforced, and the gateway's reconcile loop makes the second match the first.

Keys (``hs:`` prefix, one namespace per router):

=============================  ======  ==========================================================
key                            type    what
=============================  ======  ==========================================================
hs:session:<sid>               hash    one session (fields: see :mod:`gateway.model.sessions`)
hs:sessions:online             set     sids that should be online now (the desired state)
hs:sessions:bymac:<mac>        string  sid of the online session of a device
hs:commands                    stream  portal/CLI -> gateway requests (authorize, deauthorize, ...)
hs:ack:<request id>            list    gateway -> requester reply, one JSON item, short TTL
hs:gateway:heartbeat           string  JSON about the running gateway (and its last pass), expires if it stops
hs:gateway:cursor              string  stream id of the last command the gateway handled
hs:gateway:acct                hash    sid -> JSON: kernel counters last seen per element (accounting)
hs:gateway:ruleset             string  JSON: fingerprint of the table the gateway loaded (doctor)
hs:events                      stream  session start/end records (source of the session log)
hs:voucher:<code>              hash    one voucher (fields: see :mod:`gateway.model.vouchers`)
hs:voucher:<code>:devices      set     MACs that have used the voucher
hs:voucher:id:<voucher id>     string  code of a voucher, by its public id
hs:vouchers                    zset    codes by issue time (the voucher list)
hs:rl:<scope>:<who>:*          mixed   rate-limit counters and lockouts (gateway.model.ratelimit)
hs:counters                    hash    monotonic counters for metrics: logins_ok, logins_failed, ...
hs:batch:<batch>               hash    one batch of vouchers: plan, count, note, issued_at, issued_by
hs:batch:<batch>:codes         list    the batch's codes in print order
hs:batches                     zset    batch ids by issue time
hs:batch:request:<id>          string  batch id issued for a form's one-time request id (1 day)
hs:audit                       stream  who did what: actor, action, voucher/batch ids (never a code)
hs:account:<name>              hash    a librarian account: role, argon2 hash (gateway.model.accounts)
hs:accounts                    set     account names
hs:desk:session:<token>        hash    a desk login: account, times; expires with the login
hs:desk:sessions:<name>        set     tokens of an account's desk logins (to end them all)
hs:plans:disabled              set     plans an admin switched off (runtime, not in the file)
hs:report:h:<YYYYMMDDHH>       hash    per-UTC-hour aggregates for reports (gateway.model.reports)
hs:report:dev:<YYYYMMDDHH>     hll     keyed hashes of the devices that started a session then
hs:report:salt                 string  the key of those device hashes (random, made once)
hs:survey:<YYYY-MM-DD>         hash    anonymous survey answers of a day: "<question>:<answer>" -> count
                                       (model.survey; an older field "<answer>" answers "purpose")
hs:survey:done:<sid>           set     the questions a session has answered (no answer kept), expires
hs:survey:answered:<sid>       string  (older) a session has answered "purpose" (no answer kept), expires
hs:free:<YYYY-MM-DD>:<mac>     string  free sessions a device started that day (gateway.model.free)
hs:free:hour:<hour>            string  free sessions started library-wide in that hour (gateway.model.free)
hs:portal:next:<mac>@<ip>      string  the page a device asked for before login, 30 min (portal)
hs:portal:acked:<sid>          string  the gateway confirmed this session's login, short TTL (portal)
hs:portal:retry:<mac>          string  stale-connection retries of an online device, 30 s (portal)
=============================  ======  ==========================================================

Modules that add keys (rate limits, accounts, reports) add them here.
"""

from __future__ import annotations

__all__ = [
    "PREFIX",
    "ACCOUNTS",
    "AUDIT",
    "BATCHES",
    "COMMANDS",
    "COUNTERS",
    "EVENTS",
    "GATEWAY_ACCT",
    "GATEWAY_CURSOR",
    "GATEWAY_HEARTBEAT",
    "GATEWAY_RULESET",
    "ONLINE",
    "PLANS_DISABLED",
    "REPORT_SALT",
    "VOUCHERS",
    "account",
    "account_desk_sessions",
    "ack",
    "batch",
    "batch_codes",
    "batch_request",
    "desk_session",
    "free_hour",
    "free_used",
    "portal_acked",
    "portal_next",
    "portal_retry",
    "report_devices",
    "report_hour",
    "session",
    "session_by_mac",
    "survey_answered",
    "survey_day",
    "survey_done",
    "voucher",
    "voucher_by_id",
    "voucher_devices",
]

PREFIX = "hs:"
ONLINE = "hs:sessions:online"
COMMANDS = "hs:commands"
EVENTS = "hs:events"
GATEWAY_HEARTBEAT = "hs:gateway:heartbeat"
GATEWAY_CURSOR = "hs:gateway:cursor"
GATEWAY_ACCT = "hs:gateway:acct"
GATEWAY_RULESET = "hs:gateway:ruleset"
VOUCHERS = "hs:vouchers"
# Monotonic counters (HINCRBY) exported as Prometheus counters. Field names in use:
# logins_ok, logins_failed (wrong/unusable codes), logins_rate_limited, free_logins,
# free_logins_refused_hour, gateway_ack_timeouts; add yours here.
COUNTERS = "hs:counters"
BATCHES = "hs:batches"
AUDIT = "hs:audit"
ACCOUNTS = "hs:accounts"
PLANS_DISABLED = "hs:plans:disabled"
REPORT_SALT = "hs:report:salt"


def session(sid: str) -> str:
    return f"hs:session:{sid}"


def session_by_mac(mac: str) -> str:
    return f"hs:sessions:bymac:{mac}"


def ack(request_id: str) -> str:
    return f"hs:ack:{request_id}"


def voucher(code: str) -> str:
    return f"hs:voucher:{code}"


def voucher_devices(code: str) -> str:
    return f"hs:voucher:{code}:devices"


def voucher_by_id(voucher_id: str) -> str:
    return f"hs:voucher:id:{voucher_id}"


def batch(batch_id: str) -> str:
    return f"hs:batch:{batch_id}"


def batch_codes(batch_id: str) -> str:
    return f"hs:batch:{batch_id}:codes"


def batch_request(request_id: str) -> str:
    return f"hs:batch:request:{request_id}"


def account(name: str) -> str:
    return f"hs:account:{name}"


def desk_session(token: str) -> str:
    return f"hs:desk:session:{token}"


def account_desk_sessions(name: str) -> str:
    return f"hs:desk:sessions:{name}"


def report_hour(hour: str) -> str:
    """Aggregates of the UTC hour ``hour`` (``YYYYMMDDHH``)."""
    return f"hs:report:h:{hour}"


def report_devices(hour: str) -> str:
    """HyperLogLog of the device hashes seen starting a session in the UTC hour ``hour``."""
    return f"hs:report:dev:{hour}"


def survey_day(day: str) -> str:
    return f"hs:survey:{day}"


def survey_answered(sid: str) -> str:
    return f"hs:survey:answered:{sid}"


def survey_done(sid: str) -> str:
    return f"hs:survey:done:{sid}"


def free_used(day: str, mac: str) -> str:
    return f"hs:free:{day}:{mac}"


def free_hour(hour: int) -> str:
    return f"hs:free:hour:{hour}"


def portal_next(device: str) -> str:
    """Key of the page ``device`` ("<mac>@<ip>") asked for before login."""
    return f"hs:portal:next:{device}"


def portal_acked(sid: str) -> str:
    return f"hs:portal:acked:{sid}"


def portal_retry(mac: str) -> str:
    return f"hs:portal:retry:{mac}"
