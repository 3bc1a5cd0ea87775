"""Compare a planned tc tree with what the kernel has, and order the changes.

Pure: :func:`diff_tree` takes the :class:`~gateway.shaping.plan.TcTree` the planner wants
and the :class:`TreeState` the applier read back, and returns a :class:`TreeDiff`
whose fields are already in the order the kernel needs (filters away before the
classes they point to, parents before children, hash tables before their nodes).
Like faucet's ``valve_flowreorder``, ordering lives here and only here.

A guaranteed rate that differs from the plan by no more than :data:`RATE_TOLERANCE`
is left alone: fair shares move a little with every login, and rewriting a thousand
classes for a 0.1 % change would cost more than it gives. Caps, quanta and leaves
must match exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.shaping.model import ROOT_QDISC, TcClass, TcFilter, TcLeaf, TcTree

__all__ = ["RATE_TOLERANCE", "TreeDiff", "TreeState", "diff_tree", "filter_key"]

RATE_TOLERANCE = 0.02


def filter_key(f: TcFilter) -> tuple[int, int, int, int]:
    """Return what identifies a filter node on a device: prio, protocol, table, handle."""
    return (f.prio, f.protocol, f.ht, f.handle)


@dataclass(frozen=True)
class TreeState:
    """What one device has, as read back: ``root_ok`` means our HTB root qdisc is there."""

    root_ok: bool
    classes: dict[int, TcClass] = field(default_factory=dict)
    leaves: dict[int, TcLeaf] = field(default_factory=dict)  # by parent class
    filters: dict[tuple, TcFilter] = field(default_factory=dict)  # by filter_key
    counters: dict[int, tuple[int, int]] = field(default_factory=dict)  # class -> (bytes, packets)
    handles: dict[tuple, int] = field(default_factory=dict)  # filter_key -> the kernel's own handle


@dataclass(frozen=True)
class TreeDiff:
    """The changes that make one device match its plan, each list in apply order."""

    rebuild_root: bool = False
    del_filters: tuple[TcFilter, ...] = ()
    del_classes: tuple[TcClass, ...] = ()
    add_classes: tuple[TcClass, ...] = ()
    change_classes: tuple[TcClass, ...] = ()
    del_leaves: tuple[TcLeaf, ...] = ()
    add_leaves: tuple[TcLeaf, ...] = ()
    change_leaves: tuple[TcLeaf, ...] = ()
    add_filters: tuple[TcFilter, ...] = ()

    def is_empty(self) -> bool:
        return not (
            self.rebuild_root
            or self.del_filters
            or self.del_classes
            or self.add_classes
            or self.change_classes
            or self.del_leaves
            or self.add_leaves
            or self.change_leaves
            or self.add_filters
        )

    @property
    def added(self) -> int:
        return len(self.add_classes) + len(self.add_leaves) + len(self.add_filters)

    @property
    def removed(self) -> int:
        return len(self.del_classes) + len(self.del_leaves) + len(self.del_filters)

    @property
    def changed(self) -> int:
        return len(self.change_classes) + len(self.change_leaves)


def _class_differs(want: TcClass, have: TcClass) -> bool:
    if (want.ceil, want.quantum, want.prio) != (have.ceil, have.quantum, have.prio):
        return True
    return abs(want.rate - have.rate) > want.rate * RATE_TOLERANCE


def _depth(c: TcClass, classes: dict[int, TcClass]) -> int:
    depth, parent = 0, c.parent
    while parent != ROOT_QDISC and parent in classes and depth < 16:
        depth, parent = depth + 1, classes[parent].parent
    return depth


def diff_tree(desired: TcTree, actual: TreeState) -> TreeDiff:
    """Return what to delete, add and change so the device's tree becomes ``desired``."""
    if not actual.root_ok:
        # no tree (or someone else's root qdisc): build ours from nothing
        actual = TreeState(root_ok=False)
    want_classes = desired.class_map()
    recreate: set[int] = set()  # classes that must go and come back (moved to another parent)
    changes: list[TcClass] = []
    adds: list[TcClass] = []
    for handle, want in want_classes.items():
        have = actual.classes.get(handle)
        if have is None:
            adds.append(want)
        elif have.parent != want.parent:
            recreate.add(handle)
            adds.append(want)
        elif _class_differs(want, have):
            changes.append(want)
    # a class that goes takes its children with it (the kernel refuses to delete a parent)
    gone = {h for h in actual.classes if h not in want_classes} | recreate
    while True:
        orphans = {h for h, c in actual.classes.items() if c.parent in gone and h not in gone}
        if not orphans:
            break
        gone |= orphans
        adds.extend(want_classes[h] for h in orphans if h in want_classes)
        changes = [c for c in changes if c.handle not in orphans]
    # children before parents on the way out, parents before children on the way in
    dels = sorted((actual.classes[h] for h in gone), key=lambda c: -_depth(c, actual.classes))
    adds.sort(key=lambda c: (_depth(c, want_classes), c.handle))

    want_filters = {filter_key(f): f for f in desired.filters}
    del_filters = [f for key, f in actual.filters.items() if want_filters.get(key) != f or f.target in gone]
    kept = {filter_key(f) for f in actual.filters.values()} - {filter_key(f) for f in del_filters}
    add_filters = [f for key, f in want_filters.items() if key not in kept]

    del_leaves: list[TcLeaf] = []
    add_leaves: list[TcLeaf] = []
    change_leaves: list[TcLeaf] = []
    for want in desired.leaves:
        have = None if want.parent in gone else actual.leaves.get(want.parent)
        if have is None:
            add_leaves.append(want)
        elif (have.kind, have.handle) != (want.kind, want.handle):
            del_leaves.append(have)
            add_leaves.append(want)
        elif have.limit != want.limit:
            change_leaves.append(want)
    return TreeDiff(
        rebuild_root=not actual.root_ok,
        del_filters=tuple(sorted(del_filters, key=_delete_order)),
        del_classes=tuple(dels),
        add_classes=tuple(adds),
        change_classes=tuple(sorted(changes)),
        del_leaves=tuple(sorted(del_leaves)),
        add_leaves=tuple(sorted(add_leaves)),
        change_leaves=tuple(sorted(change_leaves)),
        add_filters=tuple(sorted(add_filters, key=_add_order)),
    )


def _add_order(f: TcFilter) -> tuple:
    # hash tables first, then the nodes living in them, then the root nodes linking to them
    return (f.prio, f.protocol, 0 if f.divisor else (1 if f.ht else 2), f.ht, f.handle)


def _delete_order(f: TcFilter) -> tuple:
    # links and nodes before the tables they use
    return (f.prio, f.protocol, 1 if f.divisor else 0, f.ht, f.handle)
