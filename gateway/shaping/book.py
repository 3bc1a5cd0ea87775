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
  objects to send now, in order, in one batch, the slot to record, and (a login) the
  objects to send right after the requester has its answer. Up to :data:`EXACT_UP_TO`
  clients online, everyone's shares are split again and the classes whose share moved
  by more than the diff's tolerance are sent too. Beyond, each share moves by less than
  that, so only the client coming or going is dealt with (its share from the water the
  last split left): the cost does not grow with the number online. A device logging in
  again (same MAC or address) has its old session logged out in the same entry. When
  every slot is taken a newcomer gets none and no objects: its traffic stays in the
  small default class until a slot frees up.
- :meth:`ShareBook.login_many` is a row of logins in one entry (commands that arrived
  together): the line is split once for all the newcomers, not once per newcomer.

A login's entry comes in two parts (issue 16: the answer should not wait for the others'
classes). ``changes``, sent before the reply, give each newcomer its own class, leaf and
filters, so its first packets are shaped as its own, at a guarantee that fits in what the
line has free at that moment: its fair share if that is free (nobody else online, or
the others held at their caps), else an equal part of what is free, and when not even
:data:`~gateway.shaping.shares.MIN_CLIENT_RATE` each is free, a sliver lent by the
not-logged-in class 1:2 (at most half its guarantee, for the milliseconds until the
reply has gone). Its ceil is its cap as always, so it borrows what nobody uses.
``later``, sent right after the reply, is the split among everyone: the others'
classes whose share moved (the shrinking ones first), the newcomers raised to their
share, 1:2 given back. Sent in this order the two end exactly where the whole split
sent before the reply would, and the guarantees fit the line after every object.
Logouts stay in one part: freeing a share overcommits nothing.

Guarantees never add up to more than the line: HTB charges the uplink class for what
its children send at their guaranteed rates, so an overcommitted tree leaves it in debt
and nobody can borrow for seconds. Up to :data:`EXACT_UP_TO` the book holds to that after
every object it sends: a share that falls by less than the diff's tolerance is sent all
the same when keeping it would overcommit the line (a newcomer with a small cap moves
the others' shares by less than that). Beyond, a login's share comes from the water
and the others keep theirs until the next pass (each off by about 1/n). The next pass
checks the fast paths' work against the kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from gateway.shaping.diff import RATE_TOLERANCE
from gateway.shaping.model import TcChange, TcClass, TcPlan, client_class, slot_of_class
from gateway.shaping.plan import (
    ClientShape,
    ShapingSettings,
    client_caps,
    client_objects,
    client_rates,
    client_shape,
    plan_tc,
    unauth_classes,
)
from gateway.shaping.rates import Sample, rates, worth_writing
from gateway.shaping.shares import MIN_CLIENT_RATE, Water, assign_slots, bytes_rate

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
    """What a fast path asks for: tc changes to send now and right after the reply, and slots to record.

    ``changes`` go first, in this order, in one batch; ``later`` (a login's split of the
    line among everyone, module docstring) goes after them, before the book is asked
    anything else: the book counts on the kernel holding both when the next entry comes.
    ``later``'s objects are built when it is first read, so building the others' classes
    (most of a split's cost) comes after the reply too.
    """

    changes: tuple[TcChange, ...] = ()
    slots: dict[str, int] = field(default_factory=dict)  # sid -> slot, for the session's hash
    later: Sequence[TcChange] = ()  # built when first read (:class:`_Later`)


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
        """Return what gives ``session`` its classes now (within what the line has free) and, in
        ``later``, at its fair share (no kernel read, no full plan)."""
        if not self.ready:
            return Entry()  # no pass yet: the first one does it
        kernel = dict(self.rates)  # the guarantees in the kernel: the last entry was sent whole
        now, later, slots, admitted = self._admit(session)
        if admitted is None:
            return self._entry(now, slots, later, kernel)
        if len(self.shapes) < EXACT_UP_TO:
            later += self._resplit({**self.sessions, admitted.sid: admitted}, fresh={admitted.sid})
            return self._entry(now + self._fit([admitted.sid], kernel, now, later), slots, later, kernel)
        client = client_shape(self.settings, admitted)
        assert client is not None  # noqa: S101 - _admit admits only sessions that have a shape
        caps = client_caps(self.settings, client)
        (down, water_down), (up, water_up) = (
            w.admit(client.weight, c) for w, c in zip(self.waters, caps, strict=True)
        )
        now += self._put(client, (down, up), fresh=True)
        self.waters = (water_down, water_up)
        self._known(admitted, client, (down, up))
        return self._entry(now, slots, later, kernel)

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
        as it would in a row. As for one login, ``changes`` give the newcomers their own
        objects within what the line has free, ``later`` the split.
        """
        if not self.ready or not sessions:
            return Entry()
        room = EXACT_UP_TO - len(self.shapes)
        if len(sessions) == 1 or room <= 1:
            return _merge([self.login(session) for session in sessions])
        if len(sessions) > room:
            head = self.login_many(sessions[:room])
            return _merge([head, *(self.login(session) for session in sessions[room:])])
        kernel = dict(self.rates)  # the guarantees in the kernel: the last entry was sent whole
        now: list[TcChange] = []
        later: list[_Item] = []
        slots: dict[str, int] = {}
        joining: dict[str, SessionLike] = {}
        for session in sessions:
            # an earlier login in this batch of the same session or device never got its classes
            for other in [o for o in joining.values() if session.sid == o.sid or
                          session.mac == o.mac or session.ip == o.ip]:  # fmt: skip
                del joining[other.sid]
            more, after, given, admitted = self._admit(session, set(slots.values()))
            now += more
            later += after
            slots.update(given)
            if admitted is not None:
                joining[admitted.sid] = admitted
        if joining:
            later += self._resplit({**self.sessions, **joining}, fresh=set(joining))
            now += self._fit(list(joining), kernel, now, later)
        return self._entry(now, slots, later, kernel)

    def _admit(
        self, session: SessionLike, taken: set[int] | None = None
    ) -> tuple[list[TcChange], list[_Item], dict[str, int], SessionLike | None]:
        """Get ``session`` ready to have classes: replace the device's old session, give a slot.

        Returns the changes that take an old session of the same MAC or address away (now,
        and the others' shares growing back after the reply), the slot to record, and the
        session with its slot (None when it gets no class: no IPv4 address on the LAN, or
        every slot taken). ``taken``: slots given in the same batch.
        """
        taken = taken or set()
        now: list[TcChange] = []
        later: list[_Item] = []
        # a device logging in again replaces its old session (same MAC or same address)
        for key in (("mac", session.mac), ("ip", session.ip)):
            old = self.sessions.get(self.owner.get(key, ""))
            if old is not None and old.sid != session.sid:
                deletes, shares = self._leave(old)
                now += deletes
                later += shares
        if not self.on_lan(session.ip):
            return now, later, {}, None  # no IPv4 address on the LAN: its traffic stays in the default class
        slot, slots = session.slot, {}
        if not slot or slot in taken or self.owner.get(("slot", slot), session.sid) != session.sid:
            given = assign_slots({session.sid: 0}, [session.sid], reserved=self.kernel_slots | taken)
            slot = given.get(session.sid, 0)
            if not slot:
                return now, later, {}, None  # all slots taken: its traffic stays in the default class
            slots = {session.sid: slot}
        session = replace(session, slot=slot)
        if client_shape(self.settings, session) is None:
            return now, later, slots, None
        return now, later, slots, session

    def logout(self, session: SessionLike) -> Entry:
        """Return what takes ``session``'s classes away now (and, up to :data:`EXACT_UP_TO`,
        gives its share back to the others), all in ``changes``: nothing is left for later."""
        deletes, shares = self._leave(session)
        return Entry(tuple(deletes + _built(self.settings, shares)))

    def _leave(self, session: SessionLike) -> tuple[list[TcChange], list[_Item]]:
        """Return the deletes of ``session``'s objects and (up to :data:`EXACT_UP_TO`) the
        others' classes whose share grows once it is gone."""
        known = self.sessions.get(session.sid, session)
        client = self.shapes.get(session.sid) or client_shape(self.settings, known)
        if not self.ready or client is None:
            self.sessions.pop(session.sid, None)
            return [], []
        deletes = self._delete(client)
        if len(self.shapes) <= EXACT_UP_TO:
            return deletes, self._resplit({sid: s for sid, s in self.sessions.items() if sid != session.sid})
        rates = self.rates.get(client.slot)
        if rates is not None:
            caps = client_caps(self.settings, client)
            self.waters = tuple(
                w.release(client.weight, c, r) for w, c, r in zip(self.waters, caps, rates, strict=True)
            )  # fmt: skip
        self._forget(session.sid, client.slot)
        return deletes, []

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
        return _put(self.settings, client, rates, fresh=fresh)

    def _delete(self, client: ClientShape) -> list[TcChange]:
        """Return the deletes of ``client``'s filters, then of its class (which takes its leaf)."""
        objects = client_objects(self.settings, client, (0, 0))
        out = []
        for tree in (objects.down, objects.up):
            # filters first: a class a filter points to cannot go
            out += (TcChange("del", tree.device, f) for f in tree.filters)
            out.append(TcChange("del", tree.device, tree.classes[0]))
        return out

    def _resplit(self, sessions: dict[str, SessionLike], fresh: Collection[str] = ()) -> list[_Item]:
        """Split the line again among ``sessions``; return the classes whose share moved, not
        counting the ``fresh`` ones (:meth:`_fit` sends theirs)."""
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
        moved = set()
        for sid, client in shapes.items():
            old = self.rates.get(client.slot)
            if sid in fresh or old is None or any(map(_moved, rates[client.slot], old)):
                moved.add(sid)
        for i, water in enumerate(self.waters):
            # a share that falls by less than the tolerance still goes if keeping it overcommits the line
            total = sum((rates if sid in moved else self.rates)[c.slot][i] for sid, c in shapes.items())
            if total > water.pool:
                moved |= {
                    sid
                    for sid, c in shapes.items()
                    if sid not in moved and rates[c.slot][i] < self.rates[c.slot][i]
                }
        out = []
        for sid, client in shapes.items():
            if sid not in moved:
                continue
            if sid not in fresh:
                out.append(_Put(client, rates[client.slot]))
            self.rates[client.slot] = rates[client.slot]
        self.sessions, self.shapes = {sid: sessions[sid] for sid in shapes}, shapes
        self.kernel_slots |= kept
        self._index()
        return out

    def _fit(
        self,
        fresh: Sequence[str],
        kernel: Mapping[int, tuple[int, int]],
        now: Sequence[TcChange],
        later: list[_Item],
    ) -> list[TcChange]:
        """Return the ``fresh`` sessions' objects at guarantees that fit in what the line has
        free now; add to ``later`` what raises them to their share (and gives back what they
        borrowed).

        ``kernel``: slot -> the guarantees in the kernel before ``now`` (whose deletes free
        theirs). Call after :meth:`_resplit`, which gave the fresh ones their share.
        """
        gone = {slot_of_class(c.item.handle) for c in now if c.op == "del" and isinstance(c.item, TcClass)}
        clients = [self.shapes[sid] for sid in fresh]
        fair = [self.rates[c.slot] for c in clients]
        given = [list(share) for share in fair]
        lent = [0, 0]
        unauth = unauth_classes(self.settings)
        for i, water in enumerate(self.waters):
            free = max(0, int(water.pool) - sum(pair[i] for slot, pair in kernel.items() if slot not in gone))
            if sum(share[i] for share in fair) <= free:
                continue  # every newcomer's share is free already: nothing moves after the reply
            wanted = len(clients) * MIN_CLIENT_RATE - free
            if wanted > 0:  # not even a small guarantee each: 1:2 lends it (at most half its own)
                lent[i] = min(bytes_rate(wanted), unauth[i].rate // 16 * 8)
            each = max(8, (free + lent[i]) // len(clients) // 8 * 8)
            for pair in given:
                pair[i] = min(pair[i], each)
        out = []
        if any(lent):
            lowered = unauth_classes(self.settings, (lent[0], lent[1]))
            for i, device in enumerate(self._devices()):
                if lent[i]:
                    out.append(TcChange("replace", device, lowered[i]))  # before the newcomers take it
                    later.append(TcChange("replace", device, unauth[i]))
        for client, pair, share in zip(clients, given, fair, strict=True):
            out += self._put(client, (pair[0], pair[1]), fresh=True)
            if tuple(pair) != share:
                later.append(_Put(client, share))
        return out

    def _devices(self) -> tuple[str, str]:
        return self.settings.lan_interface, self.settings.ifb_interface

    def _entry(
        self,
        now: list[TcChange],
        slots: dict[str, int],
        later: list[_Item],
        kernel: Mapping[int, tuple[int, int]],
    ) -> Entry:
        """Return the entry sending ``now``, then ``later`` (built when first read: :func:`_settle`).

        ``kernel``: slot -> the guarantees in the kernel before ``now``.
        """
        if not later:
            return Entry(tuple(now), slots)
        settings, done, items = self.settings, tuple(now), tuple(later)
        return Entry(done, slots, _Later(lambda: _settle(settings, done, items, kernel)))


@dataclass(frozen=True)
class _Probe:
    """Just enough of a session for :func:`client_shape` to say whether its address can have a class."""

    ip: str
    slot: int = 1
    mac: str = ""
    down: int = 0
    up: int = 0
    weight: float = 1.0


@dataclass(frozen=True)
class _Put:
    """A class and leaf to send after the reply (built then: :func:`_put`)."""

    client: ClientShape
    rates: tuple[int, int]


_Item = TcChange | _Put  # what a split leaves for after the reply, before it is built


class _Later(Sequence[TcChange]):
    """An entry's ``later``: built when first read (by then the reply has gone), once.

    Never empty (an entry with nothing for later has ``()``), so truth costs nothing.
    """

    def __init__(self, build: Callable[[], tuple[TcChange, ...]]):
        self._build: Callable[[], tuple[TcChange, ...]] | None = build
        self._items: tuple[TcChange, ...] = ()

    def _built(self) -> tuple[TcChange, ...]:
        if self._build is not None:
            self._items, self._build = self._build(), None
        return self._items

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._built())

    def __getitem__(self, index):  # type: ignore[override]  # a tuple's indexing, slices too
        return self._built()[index]

    def __iter__(self) -> Iterator[TcChange]:
        return iter(self._built())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and self._built() == tuple(other)

    __hash__ = None  # type: ignore[assignment]  # like a list: compared by content

    def __repr__(self) -> str:
        return f"_Later({self._built()!r})"


def _put(
    settings: ShapingSettings, client: ClientShape, rates: tuple[int, int], *, fresh: bool
) -> list[TcChange]:
    """Return ``client``'s class and leaf at ``rates`` (and, if ``fresh``, its filters) to send."""
    objects = client_objects(settings, client, rates)
    out = []
    for tree in (objects.down, objects.up):
        out.append(TcChange("replace", tree.device, tree.classes[0]))
        out.append(TcChange("replace", tree.device, tree.leaves[0]))
        if fresh:
            out += (TcChange("replace", tree.device, f) for f in tree.filters)
    return out


def _built(settings: ShapingSettings, items: Sequence[_Item]) -> list[TcChange]:
    """Return the changes ``items`` stand for, in order."""
    out: list[TcChange] = []
    for item in items:
        out += [item] if isinstance(item, TcChange) else _put(settings, item.client, item.rates, fresh=False)
    return out


def _settle(
    settings: ShapingSettings,
    now: Sequence[TcChange],
    items: Sequence[_Item],
    kernel: Mapping[int, tuple[int, int]],
) -> tuple[TcChange, ...]:
    """Return what goes after ``now``: each object of ``items`` once (its last change), the
    classes whose guarantee falls first, so the line is never overcommitted midway.

    ``kernel``: slot -> the guarantees in the kernel before ``now``.
    """
    last: dict[tuple, TcChange] = {}
    for change in _built(settings, items):
        key = _object(change)
        last.pop(key, None)  # the last change counts, in its place
        last[key] = change
    devices = (settings.lan_interface, settings.ifb_interface)
    before = {
        (device, client_class(slot)): pair[i]
        for slot, pair in kernel.items()
        for i, device in enumerate(devices)
    }
    before.update({(c.device, c.item.handle): c.item.rate for c in now if isinstance(c.item, TcClass)})
    falls = {
        (c.device, c.item.handle) for c in last.values()
        if isinstance(c.item, TcClass) and c.item.rate < before.get((c.device, c.item.handle), 0)
    }  # fmt: skip

    def rises(change: TcChange) -> bool:
        item = change.item  # a leaf goes with its class
        handle = item.handle if isinstance(item, TcClass) else getattr(item, "parent", 0)
        return (change.device, handle) not in falls

    return tuple(sorted(last.values(), key=rises))


def _merge(entries: Sequence[Entry]) -> Entry:
    """Return one entry doing what ``entries`` do in this order.

    Each entry counts on the kernel holding the entries before it whole, so what they left
    for later goes first; only an entry that just adds a newcomer's own objects (a login in
    constant time: no deletes, nothing for later) goes ahead of it, as it touches nothing
    of theirs. A batch has at most one split (:meth:`ShareBook.login_many`), so its
    ``later`` normally stays for after the reply.
    """
    changes: list[TcChange] = []
    later: Sequence[TcChange] = ()
    for entry in entries:
        if entry.later or any(change.op == "del" for change in entry.changes):
            changes += later  # built now: the next entry counts on it
            later = ()
        changes += entry.changes
        later = entry.later or later
    return Entry(tuple(changes), {sid: slot for entry in entries for sid, slot in entry.slots.items()}, later)


def _object(change: TcChange) -> tuple:
    """Return what names ``change``'s object in the kernel (two changes of it: the last counts)."""
    item = change.item
    return change.device, type(item).__name__, getattr(item, "handle", None) or item


def _moved(new: int, old: int) -> bool:
    return abs(new - old) > new * RATE_TOLERANCE
