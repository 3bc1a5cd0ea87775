"""Plan the set elements of online sessions and the nft batches that make the kernel match.

Pure: sessions, time and observations in; elements, diffs and nft batch text out.

Each online session has, for its IPv4 address (and for every global IPv6 address its MAC
shows in the neighbour table):

- ``auth4``/``auth6``: ``MAC . IP``: lets it through and counts its upload;
- ``down4``/``down6``: ``IP``: lets replies in and counts its download.

Every element carries the session id as its comment (so counters are attributed to the
right session and ``nft list`` says whose it is) and a kernel timeout of the session's
end plus :data:`GRACE`: if the daemon is dead, the kernel still ends access on time.

Batches only ever use ``add element`` and ``delete element`` in one transaction. A
delete is written as ``add X; delete X`` so it succeeds whether or not X is still there
(an element may time out between the read and the write), and a fresh element as
``add X; delete X; add X counter 0 comment sid``, which resets its counter and comment
atomically (a plain ``add`` of an existing element keeps both).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.firewall.ruleset import TABLE, shape_fingerprint
from gateway.model.record import Session, normalize_mac
from gateway.names import AUTH_SET4, AUTH_SET6, DOWN_SET4, DOWN_SET6, WALLED_SET4
from gateway.neighbours import usable_ip6

__all__ = [
    "ACCOUNTED_SETS",
    "DOWNLOAD_SETS",
    "GRACE",
    "MAX_TIMEOUT",
    "REFRESH_TOLERANCE",
    "UPLOAD_SETS",
    "Element",
    "ElementDiff",
    "KernelView",
    "Present",
    "Want",
    "delete_batch",
    "diff_batch",
    "diff_elements",
    "fresh_batch",
    "get_elements",
    "json_documents",
    "login_elements",
    "parse_got",
    "parse_set",
    "plan_elements",
    "rebuild_batch",
    "session_elements",
]

GRACE = 60.0  # seconds an element outlives its session in the kernel (the daemon ends it first)
REFRESH_TOLERANCE = 30.0  # re-set a kernel timeout only when it is off by more than this
MAX_TIMEOUT = 30 * 86400.0  # nft takes timeouts < 2**32 ms; longer sessions are refreshed
UPLOAD_SETS = (AUTH_SET4, AUTH_SET6)
DOWNLOAD_SETS = (DOWN_SET4, DOWN_SET6)
ACCOUNTED_SETS = UPLOAD_SETS + DOWNLOAD_SETS
_SID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, order=True)
class Element:
    """One set element: the set's name and the key (``(mac, ip)`` or ``(ip,)``)."""

    set: str
    key: tuple[str, ...]

    def text(self) -> str:
        return " . ".join(self.key)


@dataclass(frozen=True)
class Want:
    """What an element should carry: its session's id and its timeout (seconds from now)."""

    sid: str
    timeout: float


@dataclass(frozen=True)
class Present:
    """An element as the kernel has it: comment, seconds left (None: no timeout), counter."""

    comment: str = ""
    expires: float | None = None
    bytes: int = 0
    packets: int = 0


@dataclass
class ElementDiff:
    """What a batch must change: fresh elements, timeouts to re-set, elements to delete."""

    add: list[tuple[Element, Want]] = field(default_factory=list)  # missing
    replace: list[tuple[Element, Want]] = field(default_factory=list)  # present with another sid
    refresh: list[tuple[Element, Want]] = field(default_factory=list)  # timeout off
    remove: list[Element] = field(default_factory=list)
    unchanged: int = 0

    def __bool__(self) -> bool:
        return bool(self.add or self.replace or self.refresh or self.remove)

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.add),
            "replaced": len(self.replace),
            "refreshed": len(self.refresh),
            "removed": len(self.remove),
            "unchanged": self.unchanged,
        }


def session_elements(session: Session, ip6: Iterable[str] = ()) -> list[Element]:
    """Return the elements that let ``session`` through; raise ValueError on a bad MAC or IP."""
    mac = normalize_mac(session.mac)
    ip = ipaddress.ip_address(session.ip)
    addresses = [ip] + [ipaddress.IPv6Address(a) for a in sorted(set(ip6)) if usable_ip6(a)]
    out = []
    for addr in dict.fromkeys(addresses):
        if addr.version == 4:
            out += [Element(AUTH_SET4, (mac, str(addr))), Element(DOWN_SET4, (str(addr),))]
        else:
            out += [Element(AUTH_SET6, (mac, str(addr))), Element(DOWN_SET6, (str(addr),))]
    return out


def element_timeout(session: Session, now: float) -> float:
    """Return the kernel timeout for ``session``'s elements: its end plus grace, capped."""
    return min(MAX_TIMEOUT, max(1.0, session.expires_at - now + GRACE))


def plan_elements(
    sessions: Sequence[Session],
    now: float,
    ip6_by_mac: Mapping[str, Iterable[str]] | None = None,
) -> tuple[dict[Element, Want], list[str]]:
    """Return the wanted elements of online ``sessions`` and the sids skipped as invalid.

    Sessions whose time is up get no element. When two sessions claim one element (an IP
    handed to a new phone while an old session still names it), the newest session wins.
    """
    ip6_by_mac = ip6_by_mac or {}
    wanted: dict[Element, Want] = {}
    invalid: list[str] = []
    for session in sorted(sessions, key=lambda s: (s.started_at, s.sid)):
        if session.expires_at <= now:
            continue
        try:
            if not _SID.match(session.sid):
                raise ValueError(f"bad session id {session.sid!r}")
            elements = session_elements(session, ip6_by_mac.get(session.mac.lower(), ()))
        except ValueError:
            invalid.append(session.sid)
            continue
        want = Want(session.sid, element_timeout(session, now))
        for element in elements:
            wanted[element] = want
    return wanted, invalid


def login_elements(
    sessions: Sequence[Session],
    now: float,
    ip6_by_mac: Mapping[str, Iterable[str]] | None = None,
) -> tuple[dict[str, list[tuple[Element, Want]]], dict[str, str]]:
    """Return the elements the login fast path adds for each of ``sessions``, and who is refused.

    The first dict maps each sid to its elements with their timeout, in the order given
    (a sid given twice keeps its last session); the second maps the sids refused to why
    (a bad MAC, IP or session id). Unlike :func:`plan_elements` nothing is decided between
    sessions: logins apply in the order given, so a later login of a shared element wins,
    as it would one command after the other.
    """
    ip6_by_mac = ip6_by_mac or {}
    out: dict[str, list[tuple[Element, Want]]] = {}
    refused: dict[str, str] = {}
    for session in sessions:
        out.pop(session.sid, None)
        refused.pop(session.sid, None)
        try:
            if not _SID.match(session.sid):
                raise ValueError(f"bad session id {session.sid!r}")
            elements = session_elements(session, ip6_by_mac.get(session.mac.lower(), ()))
        except ValueError as err:
            refused[session.sid] = str(err)
            continue
        want = Want(session.sid, element_timeout(session, now))
        out[session.sid] = [(element, want) for element in elements]
    return out, refused


def diff_elements(wanted: Mapping[Element, Want], present: Mapping[Element, Present]) -> ElementDiff:
    """Return what turns the ``present`` accounted elements into the ``wanted`` ones."""
    diff = ElementDiff()
    for element, want in wanted.items():
        have = present.get(element)
        if have is None:
            diff.add.append((element, want))
        elif have.comment != want.sid:
            diff.replace.append((element, want))
        elif have.expires is None or abs(have.expires - want.timeout) > REFRESH_TOLERANCE:
            diff.refresh.append((element, want))
        else:
            diff.unchanged += 1
    diff.remove = sorted(e for e in present if e.set in ACCOUNTED_SETS and e not in wanted)
    for changes in (diff.add, diff.replace, diff.refresh):
        changes.sort()  # batches in a stable order (the lists are small; the whole set is not sorted)
    return diff


# -- batch text ------------------------------------------------------------------------


def _timeout(seconds: float) -> str:
    return f"timeout {max(1, int(seconds * 1000))}ms"


def _add(element: Element, extra: str = "") -> str:
    return f"add element {TABLE} {element.set} {{ {element.text()}{' ' + extra if extra else ''} }}"


def _delete(element: Element) -> list[str]:
    return [_add(element), f"delete element {TABLE} {element.set} {{ {element.text()} }}"]


def _full(element: Element, want: Want, packets: int = 0, nbytes: int = 0) -> str:
    return _add(
        element, f'counter packets {packets} bytes {nbytes} {_timeout(want.timeout)} comment "{want.sid}"'
    )


def fresh_batch(items: Iterable[tuple[Element, Want]]) -> list[str]:
    """Return statements that (re)create elements with a zero counter and their sid."""
    out: list[str] = []
    for element, want in items:
        out += [*_delete(element), _full(element, want)]
    return out


def delete_batch(elements: Iterable[Element]) -> list[str]:
    """Return statements that delete ``elements`` whether or not they are still there."""
    out: list[str] = []
    for element in elements:
        out += _delete(element)
    return out


def diff_batch(diff: ElementDiff) -> str:
    """Return the one-transaction nft batch for ``diff`` ("" when there is nothing to do)."""
    lines = delete_batch(diff.remove)
    lines += fresh_batch(diff.add + diff.replace)
    lines += [_add(element, _timeout(want.timeout)) for element, want in diff.refresh]
    return "\n".join(lines) + "\n" if lines else ""


def rebuild_batch(
    ruleset: str,
    config_statements: Sequence[str],
    wanted: Mapping[Element, Want],
    present: Mapping[Element, Present],
) -> str:
    """Return one transaction that replaces the whole table and refills its sets.

    Wanted elements keep the counter the kernel had for them (same sid), and walled-garden
    addresses dnsmasq had added keep their time left, so replacing the ruleset (an upgrade,
    a repair) loses neither a client nor a byte of accounting.
    """
    lines = [f"table {TABLE}", f"delete table {TABLE}", ruleset.rstrip(), *config_statements]
    for element, want in wanted.items():
        have = present.get(element)
        if have is not None and have.comment == want.sid:
            lines.append(_full(element, want, have.packets, have.bytes))
        else:
            lines.append(_full(element, want))
    for element, have in sorted(present.items()):
        if element.set == WALLED_SET4 and (have.expires is None or have.expires >= 1):
            timeout = _timeout(have.expires) if have.expires is not None else ""
            lines.append(_add(element, timeout))
    return "\n".join(lines) + "\n"


# -- reading the kernel's JSON -----------------------------------------------------------


def parse_set(listing: Mapping[str, Any], set_name: str) -> dict[Element, Present]:
    """Return the elements of ``set_name`` in a ``list set`` JSON listing, keyed as planned."""
    found: dict[Element, Present] = {}
    for item in listing.get("nftables", []):
        body = item.get("set")
        if not body or body.get("name") != set_name:
            continue
        for raw in body.get("elem", []):
            attrs = raw.get("elem") if isinstance(raw, dict) and "elem" in raw else {"val": raw}
            key = _key(attrs.get("val"))
            if key is None:
                continue
            counter = attrs.get("counter") or {}
            expires = attrs.get("expires")
            if expires is None and "timeout" in attrs:
                expires = attrs["timeout"]
            found[Element(set_name, key)] = Present(
                comment=str(attrs.get("comment", "")),
                expires=float(expires) if expires is not None else None,
                bytes=int(counter.get("bytes", 0)),
                packets=int(counter.get("packets", 0)),
            )
    return found


def get_elements(elements: Iterable[Element]) -> list[str]:
    """Return the ``get element`` commands that read ``elements`` (each must be in the kernel)."""
    return [f"get element {TABLE} {e.set} {{ {e.text()} }}" for e in elements]


_GOT_SET = re.compile(r"\bset (\S+) \{")
_GOT_ELEMENTS = re.compile(r"elements = \{ (.*?) \}\s*$", re.M)
_GOT_COUNTER = re.compile(r"^(?P<key>.+?) counter packets (?P<packets>\d+) bytes (?P<bytes>\d+)")
_GOT_COMMENT = re.compile(r'comment "(?P<comment>[^"]*)"')


def parse_got(text: str) -> dict[Element, Present]:
    """Return the elements in the (text) output of :func:`get_elements`' commands, keyed as planned.

    libnftables answers ``get element`` in nft's own syntax even with JSON output (nftables
    1.0.6): one ``table { set NAME { ... elements = { KEY counter ... comment "SID" } } }``
    block per command; a version that answers in JSON is read as a set listing. Expiry is
    not read from the text (``expires`` None): the caller wants the counters.
    """
    if text.lstrip().startswith("{"):  # a libnftables that answers gets in JSON
        return _parse_got_json(text)
    found: dict[Element, Present] = {}
    for block in text.split("\ntable "):
        named = _GOT_SET.search(block)
        listed = _GOT_ELEMENTS.search(block)
        if not named or not listed:
            continue
        counter = _GOT_COUNTER.match(listed.group(1))
        if not counter:
            continue
        key = tuple(_normal(part.strip()) for part in counter.group("key").split(" . "))
        if any(part is None for part in key):
            continue
        comment = _GOT_COMMENT.search(listed.group(1))
        found[Element(named.group(1), key)] = Present(  # type: ignore[arg-type]
            comment=comment.group("comment") if comment else "",
            bytes=int(counter.group("bytes")),
            packets=int(counter.group("packets")),
        )
    return found


def json_documents(text: str) -> list[dict[str, Any]]:
    """Return the JSON documents libnftables printed one after another (one per listing)."""
    docs, decoder, at = [], json.JSONDecoder(), 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return docs
        doc, at = decoder.raw_decode(text, at)
        docs.append(doc)


def _parse_got_json(text: str) -> dict[Element, Present]:
    found: dict[Element, Present] = {}
    for doc in json_documents(text):
        names = {item["set"].get("name") for item in doc.get("nftables", []) if "set" in item}
        for name in names:
            found.update(parse_set(doc, name))
    return found


def _key(val: Any) -> tuple[str, ...] | None:
    """Return a key normalized as the planner writes it (lowercase MAC, compressed IP)."""
    parts = val["concat"] if isinstance(val, dict) and "concat" in val else [val]
    out = []
    for part in parts:
        if not isinstance(part, str):
            return None  # a range or prefix: not one of ours
        normal = _normal(part)
        if normal is None:
            return None
        out.append(normal)
    return tuple(out)


@functools.lru_cache(maxsize=65536)
def _normal(part: str) -> str | None:
    # the same few thousand addresses come back every pass: remember their normal form
    try:
        return str(ipaddress.ip_address(part))
    except ValueError:
        try:
            return normalize_mac(part)
        except ValueError:
            return None


class KernelView:
    """What one read of the table found: its fingerprint and its elements (with counters).

    Built from ``nft list table`` JSON (None: the table is absent); the applier reads, the
    planners and :mod:`gateway.firewall.doctor` compare.
    """

    def __init__(self, listing: Mapping | None):
        self.exists = listing is not None
        self.fingerprint = shape_fingerprint(listing) if listing else ""
        self.elements: dict[Element, Present] = {}
        for name in (*ACCOUNTED_SETS, WALLED_SET4):
            self.elements.update(parse_set(listing or {}, name))

    def accounted(self) -> dict[Element, Present]:
        """Return the elements of the accounted (auth and down) sets."""
        return {e: p for e, p in self.elements.items() if e.set in ACCOUNTED_SETS}
