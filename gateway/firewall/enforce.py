"""The nftables component of the reconcile loop: table ``inet hotspot`` follows Redis.

A thin applier around the pure planners in :mod:`gateway.firewall.ruleset` and
:mod:`gateway.firewall.plan`. Each :meth:`NftEnforcer.reconcile` reads the whole table back
(one ``list table`` JSON: rules, sets, elements and their counters), then either

- the table is not exactly the ruleset this daemon loaded (missing after a reboot, flushed
  or edited by hand, or this is the first pass after a start or an upgrade): it is
  replaced with its elements in ONE transaction (:func:`~gateway.firewall.plan.rebuild_batch`),
  so nobody online is cut off and nobody else gets in while it is replaced; or
- only elements differ: one batch adds, refreshes and deletes exactly the difference.

:meth:`login` and :meth:`logout` are the command handler's fast paths: one small batch
through the in-process binding, no read; :meth:`login_many` lets the logins that arrived
together through in one transaction. The next pass checks their work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.config import Config
from gateway.firewall.guard import Guard, wanted_rules
from gateway.firewall.nft import ApplyError, Nft
from gateway.firewall.plan import (
    Element,
    KernelView,
    Present,
    Want,
    delete_batch,
    diff_batch,
    diff_elements,
    element_timeout,
    fresh_batch,
    get_elements,
    login_elements,
    parse_got,
    parse_set,
    plan_elements,
    rebuild_batch,
    session_elements,
)
from gateway.firewall.ruleset import TABLE, config_statements, render_ruleset, shape_fingerprint
from gateway.logs import get_logger
from gateway.model.record import Session
from gateway.neighbours import NeighbourTable

__all__ = ["ApplyError", "KernelView", "NftEnforcer", "read_kernel", "read_kernel_shape"]

log = get_logger("nft")


def read_kernel(nft: Nft) -> KernelView:
    """Return the current state of table ``inet hotspot`` (absent is a valid answer)."""
    return KernelView(nft.list_json(f"table {TABLE}"))


class NftEnforcer:
    """Keeps ``inet hotspot`` equal to the ruleset plus the online sessions' elements."""

    name = "nft"

    def __init__(self, config: Config, neighbours: NeighbourTable | None = None, nft: Nft | None = None):
        self.nft = nft or Nft(config.network.netns)
        self.guard = Guard(config.network.lan_interface, config.network.netns)
        self.configure(config)
        self.neighbours = neighbours or NeighbourTable()
        self.expected = ""  # fingerprint of the table as we last loaded it; "" = rebuild next pass
        self.view = KernelView(None)  # the last read, updated by the fast paths

    def configure(self, config: Config) -> None:
        """Take a (re)loaded config: the next pass replaces the table if its ruleset changed."""
        ruleset, statements = render_ruleset(config), config_statements(config)
        if getattr(self, "ruleset", None) != ruleset or getattr(self, "statements", None) != statements:
            self.expected = ""
        self.config, self.ruleset, self.statements = config, ruleset, statements
        net = config.network
        if (self.guard.lan, self.guard.netns) != (net.lan_interface, net.netns):
            self.guard.close()
            self.guard = Guard(net.lan_interface, net.netns)

    # -- the Component protocol ------------------------------------------------------------

    def reconcile(self, sessions: Sequence[Session], now: float) -> dict[str, int]:
        """Make the table match ``sessions``; return counts (added, removed, ..., rebuilt)."""
        view = read_kernel(self.nft)
        wanted, invalid = plan_elements(sessions, now, self.neighbours.ip6_by_mac)
        if invalid:
            log.warning("sessions_skipped", reason="bad MAC, IP or id in Redis", sids=invalid[:10])
        diff = diff_elements(wanted, view.accounted())
        counts = {**diff.counts(), "rebuilt": 0, "invalid": len(invalid)}
        if not self.expected or view.fingerprint != self.expected:
            self.rebuild(wanted, view, reason="start" if not self.expected else _why(view))
            counts["rebuilt"] = 1
        elif diff:
            self.nft.apply(diff_batch(diff), op="reconcile")
        counts["guard"] = self.guard.ensure()  # after the table: its marks exist before the blackhole
        self.view = view
        self._remember(wanted)
        return counts

    def login(self, session: Session, now: float) -> None:
        """Let ``session`` through at once (fresh elements, zero counters)."""
        want = Want(session.sid, element_timeout(session, now))
        ip6 = self.neighbours.ip6_by_mac.get(session.mac.lower(), ())
        self._add_fresh([(e, want) for e in session_elements(session, ip6)])

    def login_many(self, sessions: Sequence[Session], now: float) -> dict[str, str]:
        """Let all ``sessions`` through in ONE transaction; return ``{sid: why}`` for those refused.

        Commands that arrived together (a class logging in) cost one libnftables call, not
        one each. If that transaction fails (nftables applies all or nothing), each session
        is tried alone, so one bad element cannot keep the others out.
        """
        wanted, refused = login_elements(sessions, now, self.neighbours.ip6_by_mac)
        try:
            self._add_fresh([pair for pairs in wanted.values() for pair in pairs])
            return refused
        except ApplyError as err:
            log.warning("login_batch_refused", sessions=len(wanted), error=str(err)[:300], then="one by one")
        for sid, pairs in wanted.items():
            try:
                self._add_fresh(pairs)
            except ApplyError as err:
                refused[sid] = str(err)
        return refused

    def logout(self, session: Session, now: float) -> dict[Element, Present]:
        """Cut ``session`` off at once: delete its elements (those no other session holds).

        Returns their counters as the kernel had them at the delete: its elements are read
        (``get element``, constant time) in the same libnftables call that deletes
        (:meth:`Nft.get_then_apply`), so the bytes a session moved since the last pass are
        accounted too, however quickly a visitor logs out and in again (issue 16, item 10).
        If one of them is no longer there, the sets are listed instead (the whole set: slower
        with many online, :meth:`Nft.read_then_apply`).
        """
        mine = {e for e, p in self.view.elements.items() if p.comment == session.sid}
        try:
            mine.update(
                e for e in session_elements(session)
                if self.view.elements.get(e, Present(comment=session.sid)).comment == session.sid
            )  # fmt: skip
        except ValueError:
            pass  # a session with a bad MAC/IP never had elements of its own
        final: dict[Element, Present] = {}
        if mine:
            batch = "\n".join(delete_batch(sorted(mine)))
            known = sorted(e for e in mine if e in self.view.elements)
            try:
                # the elements we know are there, read one by one (constant time)
                got = parse_got(self.nft.get_then_apply(get_elements(known), batch, op="logout"))
            except ApplyError:
                # one of them is gone (expired, deleted by hand): list the sets, whatever is in them
                sets = sorted({e.set for e in mine})
                docs = self.nft.read_then_apply([f"set {TABLE} {name}" for name in sets], batch, op="logout")
                got = {e: p for doc in docs for name in sets for e, p in parse_set(doc, name).items()}
            final.update((e, p) for e, p in got.items() if e in mine and p.comment == session.sid)
        for element in mine:
            self.view.elements.pop(element, None)
        return final

    def close(self) -> None:
        """Release the binding; the table, its elements and the guard rules stay in the kernel."""
        self.guard.close()

    # -- more ------------------------------------------------------------------------------

    def ensure_ruleset(self) -> bool:
        """Install the ruleset if the table is missing or not ours, keeping the kernel's elements.

        Used at start before Redis answers: after a reboot the table must exist (and keep
        everyone out) even while the desired state cannot be read. Returns whether it rebuilt.
        """
        view = read_kernel(self.nft)
        if view.exists and self.expected and view.fingerprint == self.expected:
            return False
        carried = {
            e: Want(p.comment, p.expires if p.expires is not None else element_timeout_unknown())
            for e, p in view.accounted().items()
        }
        self.rebuild(carried, view, reason="start")
        self.guard.ensure()
        return True

    def rebuild(self, wanted: Mapping[Element, Want], view: KernelView, *, reason: str) -> None:
        """Replace the whole table and its elements in one transaction; remember its shape."""
        self.nft.apply(rebuild_batch(self.ruleset, self.statements, wanted, view.elements), op="rebuild")
        self.expected = read_kernel_shape(self.nft)
        log.info("ruleset_loaded", reason=reason, elements=len(wanted), fingerprint=self.expected)

    def guard_ok(self) -> bool:
        """Return whether the fail-closed routing rules are all in place (see guard.py)."""
        return self.guard.present() == wanted_rules(self.config.network.lan_interface)

    def counters(self) -> dict[str, dict[Element, Present]]:
        """Return the last read's accounted elements grouped by the session id they carry."""
        out: dict[str, dict[Element, Present]] = {}
        for element, present in self.view.accounted().items():
            if present.comment:
                out.setdefault(present.comment, {})[element] = present
        return out

    def _add_fresh(self, items: Sequence[tuple[Element, Want]]) -> None:
        """(Re)create ``items`` with zero counters in one transaction (in order: a later one wins)."""
        if items:
            self.nft.apply("\n".join(fresh_batch(items)), op="login")
            self._remember(dict(items))

    def _remember(self, wanted: Mapping[Element, Want]) -> None:
        for element, want in wanted.items():
            have = self.view.elements.get(element)
            if have is None or have.comment != want.sid:
                self.view.elements[element] = Present(comment=want.sid, expires=want.timeout)


def read_kernel_shape(nft: Nft) -> str:
    """Return the fingerprint of the table as the kernel has it now ("" if absent)."""
    return shape_fingerprint(nft.list_json(f"table {TABLE}", terse=True))


def element_timeout_unknown() -> float:
    """Timeout for elements carried without knowing their session (no Redis): one hour."""
    return 3600.0


def _why(view: KernelView) -> str:
    return "table_missing" if not view.exists else "table_changed"
