"""The share book: who has which slot and share of the line, and the tc changes that follow.

Pure, like the planners: no kernel, no Redis, no clock (``now`` is passed in). The
:class:`~gateway.shaping.shaper.Shaper` reads Redis and the kernel, asks the book, sends
what it returns through the applier and records in Redis what it says to record. The
book only remembers what the last pass planned and what the fast paths did since.

- :meth:`ShareBook.begin_pass` takes the online sessions and the class counters just
  read back; it gives every session that can have a class a slot (never one whose class
  is still in the kernel), works out each client's current rate and returns a
  :class:`Pass`: the sessions with their slots, the slots and rates to record, and the
  plan of both trees (:func:`gateway.shaping.plan.plan_tc`). Once the plan is applied,
  :meth:`ShareBook.end_pass` makes it what the fast paths start from.
- :meth:`ShareBook.login` and :meth:`ShareBook.logout` return an :class:`Entry`: the tc
  objects to send now, in order, in one batch, and the slot to record. Up to
  :data:`EXACT_UP_TO` clients online, everyone's shares are split again and the classes
  whose share moved by more than the diff's tolerance are sent too. Beyond, each share
  moves by less than that, so only the client coming or going is dealt with (its share
  from the water the last split left): the cost does not grow with the number online.
  A device logging in again (same MAC or address) has its old session logged out in the
  same entry. When every slot is taken a newcomer gets none and no objects: its traffic
  stays in the small default class until a slot frees up.
- :meth:`ShareBook.login_many` is a row of logins in one entry (commands that arrived
  together): the line is split once for all the newcomers, not once per newcomer.

Guarantees never add up to more than the line: HTB charges the uplink class for what
its children send at their guaranteed rates, so an overcommitted tree leaves it in debt
and nobody can borrow for seconds. The next pass checks the fast paths' work against
the kernel.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from gateway.shaping.diff import RATE_TOLERANCE
from gateway.shaping.model import TcChange, TcPlan, client_class, slot_of_class
from gateway.shaping.plan import (
    ClientShape,
    ShapingSettings,
    client_caps,
    client_objects,
    client_rates,
    client_shape,
    plan_tc,
)
from gateway.shaping.rates import Sample, rates, worth_writing
from gateway.shaping.shares import Water, assign_slots

__all__ = ["EXACT_UP_TO", "Entry", "Pass", "ShareBook", "TcChange"]

# Up to this many clients online, a login or logout splits the line again among all of
# them (a fraction of a millisecond); beyond, each share moves by less than the applier's
# tolerance, so only the client coming or going is dealt with, in constant time.
EXACT_UP_TO = 50


class SessionLike(Protocol):
    """What the book reads of a session (a dataclass: slots are given with ``replace``)."""

    sid: str
    mac: str
    ip: str
    slot: int
    down: int
    up: int
    weight: float


@dataclass(frozen=True)
class Entry:
    """What a fast path asks for: tc changes to send in this order, and slots to record."""

    changes: tuple[TcChange, ...] = ()
    slots: dict[str, int] = field(default_factory=dict)  # sid -> slot, for the session's hash


@dataclass(frozen=True)
class Pass:
    """What a reconcile pass asks for, before its plan is applied."""

    sessions: tuple  # the online sessions, each with the slot it has from now on
    slots: dict[str, int]  # sid -> slot: slots given or taken away, to record
    rates: dict[str, tuple[float, float]]  # sid -> (down, up) bits/s worth recording
    plan: TcPlan


class ShareBook:
    """Remembers the shares of the line and the slots given out; says what to send and record."""

    def __init__(self, settings: ShapingSettings):
        self.settings = settings
        self.ready = False  # a pass has been applied: the fast paths have a base to work from
        self.sessions: dict[str, SessionLike] = {}  # as planned last (plus fast paths), with slots
        self.shapes: dict[str, ClientShape] = {}  # sid -> what the planner needs of it
        self.owner: dict[tuple[str, object], str] = {}  # ("mac"|"ip"|"slot", value) -> sid
        self.rates: dict[int, tuple[int, int]] = {}  # slot -> (down, up) guarantee sent to the kernel
        self.waters: tuple[Water, ...] = ()  # what the last split left, (download, upload)
        self.kernel_slots: set[int] = set()  # slots whose classes are in the kernel
        self.samples: dict[int, Sample] = {}  # slot -> counters at the last pass
        self.written: dict[str, tuple[float, float, float]] = {}  # sid -> rates last recorded, and when

    def configure(self, settings: ShapingSettings) -> None:
        """Take new settings (a reloaded config, the probed leaf kind): they apply from the next pass."""
        self.settings = settings

    # -- the pass ------------------------------------------------------------------------

    def begin_pass(
        self, sessions: Sequence[SessionLike], counters: Mapping[int, tuple[int, int]], now: float
    ) -> Pass:
        """Return the slots, rates and plan for ``sessions``, given the kernel's class counters.

        ``counters`` is slot -> (download bytes, upload bytes) of the client classes
        in the kernel now (:func:`gateway.shaping.apply.slot_counters`).
        """
        sessions, slots = self._assign_slots(list(sessions), set(counters))
        current = {s.slot: Sample(s.sid, *counters[s.slot], now) for s in sessions if s.slot in counters}
        found = worth_writing(rates(self.samples, current), self.written, now)
        self.samples = current
        live = {s.sid for s in sessions}
        self.written = {sid: w for sid, w in self.written.items() if sid in live}
        self.written.update({sid: (down, up, now) for sid, (down, up) in found.items()})
        return Pass(tuple(sessions), slots, found, plan_tc(self.settings, sessions))

    def end_pass(self, done: Pass) -> None:
        """Remember ``done``'s plan as applied: the fast paths work from it until the next pass."""
        sessions, plan = done.sessions, done.plan
        # only the sessions that have classes: the fast paths go through these
        self.shapes = {s.sid: c for s in sessions if (c := client_shape(self.settings, s))}
        self.sessions = {s.sid: s for s in sessions if s.sid in self.shapes}
        self._index()
        self.waters = client_rates(self.settings, list(self.shapes.values()))[1]
        down_rates = {c.handle: c.rate for c in plan.down.classes}
        up_rates = {c.handle: c.rate for c in plan.up.classes}
        self.rates = {
            s.slot: (down_rates[client_class(s.slot)], up_rates[client_class(s.slot)])
            for s in sessions if s.slot and client_class(s.slot) in down_rates
        }  # fmt: skip
        self.kernel_slots = {slot for c in plan.down.classes if (slot := slot_of_class(c.handle))}
        self.ready = True

    def _assign_slots(
        self, sessions: list[SessionLike], in_kernel: set[int]
    ) -> tuple[list[SessionLike], dict[str, int]]:
        # a slot a fast path gave may not be in the caller's copy of the session yet
        current = {s.sid: s.slot or getattr(self.sessions.get(s.sid), "slot", 0) for s in sessions}
        own = {slot for slot in current.values() if slot}
        # only sessions that can have a class take a slot (not one without an address on the LAN)
        order = [s.sid for s in sessions if self.on_lan(s.ip)]
        changes = assign_slots(current, order, reserved=in_kernel - own)
        final = {**current, **changes}
        return [s if final[s.sid] == s.slot else replace(s, slot=final[s.sid]) for s in sessions], changes

    def on_lan(self, ip: str) -> bool:
        """Say whether a session at ``ip`` can have a class (an IPv4 address on the LAN)."""
        return client_shape(self.settings, _Probe(ip)) is not None

    # -- fast paths ----------------------------------------------------------------------

    def login(self, session: SessionLike) -> Entry:
        """Return what gives ``session`` its classes now, at its fair share (no kernel read, no full plan)."""
        if not self.ready:
            return Entry()  # no pass yet: the first one does it
        changes, slots, admitted = self._admit(session)
        if admitted is None:
            return Entry(tuple(changes), slots)
        if len(self.shapes) < EXACT_UP_TO:
            changes += self._resplit({**self.sessions, admitted.sid: admitted}, fresh={admitted.sid})
            return Entry(tuple(changes), slots)
        client = client_shape(self.settings, admitted)
        assert client is not None  # noqa: S101 - _admit admits only sessions that have a shape
        caps = client_caps(self.settings, client)
        (down, water_down), (up, water_up) = (
            w.admit(client.weight, c) for w, c in zip(self.waters, caps, strict=True)
        )
        changes += self._put(client, (down, up), fresh=True)
        self.waters = (water_down, water_up)
        self._known(admitted, client, (down, up))
        return Entry(tuple(changes), slots)

    def login_many(self, sessions: Sequence[SessionLike]) -> Entry:
        """Return what gives all ``sessions`` their classes now: the same as their logins one
        after the other, in one entry, with the line split once for them all.

        A class logging in together (issue 16) would otherwise split the line again at each
        login and resend everyone's class each time (n logins, n^2/2 classes). Up to
        :data:`EXACT_UP_TO` clients in all, the newcomers are admitted (old sessions of the
        same device replaced, slots given) and the line is split once; beyond, each login
        costs constant time anyway and they go one after the other. A batch that crosses
        :data:`EXACT_UP_TO` (a second class logging in while the first is online) is split
        there: the newcomers that fit are admitted with one split, the rest in constant time
        each (in a row, each of the first would split the line again for everyone). Within
        the batch a later login of the same session, MAC or address replaces an earlier one,
        as it would in a row.
        """
        if not self.ready or not sessions:
            return Entry()
        room = EXACT_UP_TO - len(self.shapes)
        if len(sessions) == 1 or room <= 1:
            return _merge([self.login(session) for session in sessions])
        if len(sessions) > room:
            head = self.login_many(sessions[:room])
            return _merge([head, *(self.login(session) for session in sessions[room:])])
        changes: list[TcChange] = []
        slots: dict[str, int] = {}
        joining: dict[str, SessionLike] = {}
        for session in sessions:
            # an earlier login in this batch of the same session or device never got its classes
            for other in [o for o in joining.values() if session.sid == o.sid or
                          session.mac == o.mac or session.ip == o.ip]:  # fmt: skip
                del joining[other.sid]
            more, given, admitted = self._admit(session, set(slots.values()))
            changes += more
            slots.update(given)
            if admitted is not None:
                joining[admitted.sid] = admitted
        if joining:
            changes += self._resplit({**self.sessions, **joining}, fresh=set(joining))
        return Entry(tuple(changes), slots)

    def _admit(
        self, session: SessionLike, taken: set[int] | None = None
    ) -> tuple[list[TcChange], dict[str, int], SessionLike | None]:
        """Get ``session`` ready to have classes: replace the device's old session, give a slot.

        Returns the changes that take an old session of the same MAC or address away, the
        slot to record, and the session with its slot (None when it gets no class: no IPv4
        address on the LAN, or every slot taken). ``taken``: slots given in the same batch.
        """
        taken = taken or set()
        changes: list[TcChange] = []
        # a device logging in again replaces its old session (same MAC or same address)
        for key in (("mac", session.mac), ("ip", session.ip)):
            old = self.sessions.get(self.owner.get(key, ""))
            if old is not None and old.sid != session.sid:
                changes += self.logout(old).changes
        if not self.on_lan(session.ip):
            return changes, {}, None  # no IPv4 address on the LAN: its traffic stays in the default class
        slot, slots = session.slot, {}
        if not slot or slot in taken or self.owner.get(("slot", slot), session.sid) != session.sid:
            given = assign_slots({session.sid: 0}, [session.sid], reserved=self.kernel_slots | taken)
            slot = given.get(session.sid, 0)
            if not slot:
                return changes, {}, None  # all slots taken: its traffic stays in the default class
            slots = {session.sid: slot}
        session = replace(session, slot=slot)
        if client_shape(self.settings, session) is None:
            return changes, slots, None
        return changes, slots, session

    def logout(self, session: SessionLike) -> Entry:
        """Return what takes ``session``'s classes away now (and, up to :data:`EXACT_UP_TO`,
        gives its share back to the others)."""
        known = self.sessions.get(session.sid, session)
        client = self.shapes.get(session.sid) or client_shape(self.settings, known)
        if not self.ready or client is None:
            self.sessions.pop(session.sid, None)
            return Entry()
        changes = self._delete(client)
        if len(self.shapes) <= EXACT_UP_TO:
            changes += self._resplit({sid: s for sid, s in self.sessions.items() if sid != session.sid})
            return Entry(tuple(changes))
        rates = self.rates.get(client.slot)
        if rates is not None:
            caps = client_caps(self.settings, client)
            self.waters = tuple(
                w.release(client.weight, c, r) for w, c, r in zip(self.waters, caps, rates, strict=True)
            )  # fmt: skip
        self._forget(session.sid, client.slot)
        return Entry(tuple(changes))

    # -- fast path helpers ---------------------------------------------------------------

    def _known(self, session: SessionLike, client: ClientShape, rates: tuple[int, int]) -> None:
        self.sessions[session.sid] = session
        self.shapes[session.sid] = client
        self.rates[client.slot] = rates
        self.kernel_slots.add(client.slot)
        self.owner.update({("mac", session.mac): session.sid, ("ip", session.ip): session.sid,
                           ("slot", client.slot): session.sid})  # fmt: skip

    def _forget(self, sid: str, slot: int) -> None:
        session = self.sessions.pop(sid, None)
        self.shapes.pop(sid, None)
        self.rates.pop(slot, None)
        self.kernel_slots.discard(slot)
        if session is not None:
            for key in (("mac", session.mac), ("ip", session.ip), ("slot", slot)):
                if self.owner.get(key) == sid:
                    del self.owner[key]

    def _index(self) -> None:
        """Rebuild who owns which MAC, address and slot (for the fast paths' O(1) lookups)."""
        self.owner = {}
        for s in self.sessions.values():
            self.owner.update({("mac", s.mac): s.sid, ("ip", s.ip): s.sid, ("slot", s.slot): s.sid})

    def _put(self, client: ClientShape, rates: tuple[int, int], *, fresh: bool) -> list[TcChange]:
        """Return ``client``'s class and leaf at ``rates`` (and, if ``fresh``, its filters) to send."""
        objects = client_objects(self.settings, client, rates)
        out = []
        for tree in (objects.down, objects.up):
            out.append(TcChange("replace", tree.device, tree.classes[0]))
            out.append(TcChange("replace", tree.device, tree.leaves[0]))
            if fresh:
                out += (TcChange("replace", tree.device, f) for f in tree.filters)
        return out

    def _delete(self, client: ClientShape) -> list[TcChange]:
        """Return the deletes of ``client``'s filters, then of its class (which takes its leaf)."""
        objects = client_objects(self.settings, client, (0, 0))
        out = []
        for tree in (objects.down, objects.up):
            # filters first: a class a filter points to cannot go
            out += (TcChange("del", tree.device, f) for f in tree.filters)
            out.append(TcChange("del", tree.device, tree.classes[0]))
        return out

    def _resplit(self, sessions: dict[str, SessionLike], fresh: Collection[str] = ()) -> list[TcChange]:
        """Split the line again among ``sessions``; return the ``fresh`` ones' objects and the
        classes whose share moved."""
        shapes = {}
        for sid, s in sessions.items():
            known = self.shapes.get(sid)
            same = known is not None and (known.slot, known.ip, known.mac, known.down, known.up) == (
                s.slot, s.ip, s.mac, s.down, s.up,
            )  # fmt: skip
            shape = known if same else client_shape(self.settings, s)
            if shape is not None:
                shapes[sid] = shape
        rates, self.waters = client_rates(self.settings, list(shapes.values()))
        kept = {shape.slot for shape in shapes.values()}
        for slot in [slot for slot in self.rates if slot not in kept]:
            self.rates.pop(slot)
            self.kernel_slots.discard(slot)
        out = []
        for sid, client in shapes.items():
            new, old = rates[client.slot], self.rates.get(client.slot)
            moved = old is None or any(_moved(n, o) for n, o in zip(new, old, strict=True))
            if sid in fresh or moved:
                out += self._put(client, new, fresh=sid in fresh)
                self.rates[client.slot] = new
        self.sessions, self.shapes = {sid: sessions[sid] for sid in shapes}, shapes
        self.kernel_slots |= kept
        self._index()
        return out


@dataclass(frozen=True)
class _Probe:
    """Just enough of a session for :func:`client_shape` to say whether its address can have a class."""

    ip: str
    slot: int = 1
    mac: str = ""
    down: int = 0
    up: int = 0
    weight: float = 1.0


def _merge(entries: Sequence[Entry]) -> Entry:
    """Return one entry doing what ``entries`` do in this order."""
    changes = tuple(change for entry in entries for change in entry.changes)
    return Entry(changes, {sid: slot for entry in entries for sid, slot in entry.slots.items()})


def _moved(new: int, old: int) -> bool:
    return abs(new - old) > new * RATE_TOLERANCE
