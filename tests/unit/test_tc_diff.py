"""Diffing a planned tc tree against the kernel's: what changes, in which order."""

from __future__ import annotations

import dataclasses

from gateway.shaping.diff import RATE_TOLERANCE, TreeState, diff_tree, filter_key
from gateway.shaping.model import LOCAL_CLASS, UNAUTH_CLASS, UPLINK_CLASS, TcClass, client_class
from gateway.shaping.plan import plan_tc

from .test_tc_plan import LAB_SESSIONS, SETTINGS


def _state(tree, **changes) -> TreeState:
    """The kernel state that exactly matches ``tree``."""
    state = TreeState(
        root_ok=True,
        classes=tree.class_map(),
        leaves={leaf.parent: leaf for leaf in tree.leaves},
        filters={filter_key(f): f for f in tree.filters},
    )
    return dataclasses.replace(state, **changes)


def test_nothing_to_do_when_the_kernel_matches():
    tree = plan_tc(SETTINGS, LAB_SESSIONS).down
    diff = diff_tree(tree, _state(tree))
    assert diff.is_empty() and (diff.added, diff.changed, diff.removed) == (0, 0, 0)


def test_no_tree_builds_everything_in_order():
    tree = plan_tc(SETTINGS, LAB_SESSIONS).down
    diff = diff_tree(tree, TreeState(root_ok=False, classes={UPLINK_CLASS: tree.classes[0]}))
    assert diff.rebuild_root
    assert diff.del_classes == () and diff.del_filters == ()
    assert set(diff.add_classes) == set(tree.classes) and set(diff.add_leaves) == set(tree.leaves)
    # parents before children
    order = [c.handle for c in diff.add_classes]
    assert order.index(UPLINK_CLASS) < order.index(UNAUTH_CLASS) < order.index(client_class(1))
    # the hash table before the nodes in it, those before the root node linking to it
    kinds = ["table" if f.divisor else ("bucket" if f.ht else "root") for f in diff.add_filters]
    for prio, roots in ((2, ["root", "root"]), (3, ["root"])):
        got = [k for f, k in zip(diff.add_filters, kinds, strict=True) if f.prio == prio]
        assert got == ["table", "bucket", "bucket", "bucket", *roots]


def test_a_client_leaving_removes_its_filter_then_its_class():
    before = plan_tc(SETTINGS, LAB_SESSIONS).down
    after = plan_tc(SETTINGS, LAB_SESSIONS[1:]).down
    diff = diff_tree(after, _state(before))
    assert [c.handle for c in diff.del_classes] == [client_class(1)]
    assert [f.target for f in diff.del_filters] == [client_class(1)] * 2  # its IPv4 and IPv6 nodes
    assert diff.add_classes == () and diff.add_filters == ()
    # the others' shares grew: their rates change, their caps do not
    assert {c.handle for c in diff.change_classes} == {client_class(2)}


def test_small_share_moves_are_left_alone_but_caps_are_not():
    tree = plan_tc(SETTINGS, LAB_SESSIONS).down
    c = tree.class_map()[client_class(1)]
    nudged = dataclasses.replace(c, rate=int(c.rate * (1 + RATE_TOLERANCE / 2)))
    assert diff_tree(tree, _state(tree, classes=tree.class_map() | {c.handle: nudged})).is_empty()
    moved = dataclasses.replace(c, rate=int(c.rate * (1 + RATE_TOLERANCE * 2)))
    assert diff_tree(tree, _state(tree, classes=tree.class_map() | {c.handle: moved})).change_classes == (c,)
    capped = dataclasses.replace(c, ceil=c.ceil - 8)
    assert diff_tree(tree, _state(tree, classes=tree.class_map() | {c.handle: capped})).change_classes == (c,)


def test_a_changed_filter_is_replaced():
    tree = plan_tc(SETTINGS, LAB_SESSIONS).down
    node = next(f for f in tree.filters if f.target == client_class(2))
    stale = dataclasses.replace(node, target=client_class(1))
    diff = diff_tree(tree, _state(tree, filters=_state(tree).filters | {filter_key(node): stale}))
    assert diff.del_filters == (stale,) and diff.add_filters == (node,)


def test_leaves_change_in_place_or_are_replaced():
    tree = plan_tc(SETTINGS, LAB_SESSIONS).down
    leaf = tree.leaves[-1]
    longer = dataclasses.replace(leaf, limit=leaf.limit + 5)
    diff = diff_tree(tree, _state(tree, leaves=_state(tree).leaves | {leaf.parent: longer}))
    assert diff.change_leaves == (leaf,) and diff.del_leaves == ()
    other = dataclasses.replace(leaf, kind="tbf")
    diff = diff_tree(tree, _state(tree, leaves=_state(tree).leaves | {leaf.parent: other}))
    assert diff.del_leaves == (other,) and diff.add_leaves == (leaf,)


def test_a_class_under_the_wrong_parent_is_rebuilt():
    tree = plan_tc(SETTINGS, LAB_SESSIONS).down
    classes = tree.class_map()
    c = classes[client_class(1)]
    moved = dataclasses.replace(c, parent=LOCAL_CLASS)
    diff = diff_tree(tree, _state(tree, classes=classes | {c.handle: moved}))
    assert diff.del_classes == (moved,) and diff.add_classes == (c,)
    assert [f.target for f in diff.del_filters] == [c.handle] * 2
    assert [f.target for f in diff.add_filters] == [c.handle] * 2
    assert [leaf.parent for leaf in diff.add_leaves] == [c.handle]


def test_a_stray_class_goes_with_its_children():
    tree = plan_tc(SETTINGS, LAB_SESSIONS).down
    classes = tree.class_map()
    stray = TcClass(0x10005, UPLINK_CLASS, 8000, 8000, 300)
    c = classes[client_class(2)]
    under_stray = dataclasses.replace(c, parent=stray.handle)
    diff = diff_tree(tree, _state(tree, classes=classes | {stray.handle: stray, c.handle: under_stray}))
    assert diff.del_classes == (under_stray, stray)  # the child first
    assert diff.add_classes == (c,)
