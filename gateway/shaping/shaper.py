"""The shaping component of the reconcile loop: tc classes for the online sessions.

It follows the loop's ``Component`` protocol (``docs/gateway.md``): ``reconcile`` on
every pass, ``login``/``logout`` as the fast paths of ``authorize``/``deauthorize``.

A thin orchestrator: the :class:`~gateway.shaping.book.ShareBook` (pure) decides slots,
shares, rates and which tc objects to send; the
:class:`~gateway.shaping.apply.TcApplier` reads the kernel and sends; this module reads
and writes Redis and puts the two together.

A pass (level-triggered, from the kernel and Redis, nothing remembered that matters):

1. read both tc trees back (classes with their byte counters, leaves, filters);
2. ask the book (:meth:`~gateway.shaping.book.ShareBook.begin_pass`): slots for the
   sessions without one (written to Redis), each client's current rate (written to
   Redis when it moved), and the plan of both trees;
3. apply the plan's difference from what was read, and tell the book it is in place.

The fast paths read nothing: the book says which objects to send (the newcomers', or
the leaver's deletes, and the others' classes whose share moved), the slot goes to Redis,
and the applier sends the lot in one netlink batch (:meth:`TcApplier.queue` /
:meth:`TcApplier.commit`). A login sends only the newcomers' own objects (within what the
line has free) and keeps the split of the line among everyone for :meth:`Shaper.settle`,
which the reconcile loop calls right after the requester has its answer
(:meth:`gateway.daemon.reconcile.Reconciler.run_deferred`); anything that touches the
trees before that sends it first. The next pass checks the fast paths' work against the
kernel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis

from gateway.config import Config
from gateway.logs import get_logger
from gateway.model import keys
from gateway.model.sessions import Session
from gateway.shaping.apply import TcApplier, slot_counters
from gateway.shaping.book import EXACT_UP_TO, Entry, ShareBook, TcChange
from gateway.shaping.plan import settings_from_config
from gateway.shaping.rates import write_rates

__all__ = ["EXACT_UP_TO", "Shaper"]

log = get_logger("shaping")


class Shaper:
    """Keeps the router's tc trees in step with the online sessions (component "tc")."""

    name = "tc"

    def __init__(self, config: Config, r: redis.Redis, applier: TcApplier | None = None):
        self.redis = r
        self.applier = applier if applier is not None else TcApplier.for_network(config.network)
        self.leaf_kind = ""  # probed at the first pass: building a Shaper touches nothing
        self.config = config
        self.book = ShareBook(settings_from_config(config, "pfifo"))
        self.later: tuple[TcChange, ...] = ()  # the last login's split of the line, for settle()

    def configure(self, config: Config) -> None:
        """Take a (reloaded) config: uplink rates and interfaces apply at the next pass."""
        self.config = config
        self.book.configure(settings_from_config(config, self.leaf_kind or "pfifo"))

    def _probe(self) -> None:
        if not self.leaf_kind:
            self.leaf_kind = self.applier.probe_leaf_kind()
            self.book.configure(settings_from_config(self.config, self.leaf_kind))

    def close(self) -> None:
        self.applier.close()

    # -- the pass ------------------------------------------------------------------------

    def reconcile(self, sessions: Sequence[Session], now: float) -> dict[str, int]:
        """Make both trees match ``sessions``; return counts of tc objects changed."""
        self._probe()
        self.later = ()  # a login's split not sent yet: this pass plans everyone from the kernel
        settings = self.book.settings
        down = self.applier.read(settings.lan_interface)
        up = self.applier.read(settings.ifb_interface)
        step = self.book.begin_pass(sessions, slot_counters(down, up), now)
        self._store_slots(step.slots)
        write_rates(self.redis, step.rates, now)
        result = self.applier.apply(step.plan, states=(down, up))
        self.book.end_pass(step)
        if not result.unchanged:
            log.info(
                "tc_applied", added=result.added, changed=result.changed, removed=result.removed,
                clients=len(step.sessions), leaf=self.leaf_kind,
            )  # fmt: skip
        plan = step.plan
        total = sum(len(t.classes) + len(t.leaves) + len(t.filters) for t in (plan.down, plan.up))
        return {
            "added": result.added,
            "changed": result.changed,
            "removed": result.removed,
            "unchanged": max(0, total - result.added - result.changed),
        }

    # -- fast paths ----------------------------------------------------------------------

    def login(self, session: Session, now: float) -> None:
        """Give ``session`` its own classes now, within what the line has free (no kernel read, no
        full plan); its fair share, and the others' shrinking to make room, wait for :meth:`settle`.

        A device logging in again has its old session's classes taken away in the same
        batch; with every slot taken, nothing is sent (the default class carries it).
        """
        self._send(self.book.login(session))

    def login_many(self, sessions: Sequence[Session], now: float) -> dict[str, str]:
        """Give all ``sessions`` their own classes in one netlink batch (a class logging in
        together), the line split once for them all by :meth:`settle`; raise if the batch failed
        (tc has no transactions: the rest was sent, and the next pass finishes the job)."""
        self._send(self.book.login_many(sessions))
        return {}

    def settle(self) -> None:
        """Send what the last logins left for after the reply: the line split among everyone (the
        others' classes, shrinking first; the newcomers' fair share). Raise if tc refused some
        of it: the next pass finishes the job."""
        later, self.later = self.later, ()
        if later:
            self.applier.queue(later)
            self.applier.commit()

    def logout(self, session: Session, now: float) -> None:
        """Take ``session``'s classes away now (and, up to :data:`EXACT_UP_TO`, give its share back)."""
        self._send(self.book.logout(session))

    def _send(self, entry: Entry) -> None:
        self._store_slots(entry.slots)  # recorded first: a restart finds the slot owned
        # a split not sent yet goes first: the book counts on the kernel holding it
        changes, self.later = (*self.later, *entry.changes), entry.later
        if changes:
            self.applier.queue(changes)
            self.applier.commit()

    def _store_slots(self, slots: Mapping[str, int]) -> None:
        if not slots:
            return
        with self.redis.pipeline(transaction=True) as pipe:
            for sid, slot in slots.items():
                pipe.hset(keys.session(sid), "slot", slot)
            pipe.execute()
