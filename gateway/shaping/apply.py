"""Make the kernel's tc state match a :class:`~gateway.shaping.plan.TcPlan`, through pyroute2.

The only module that talks tc to the kernel. Each :meth:`TcApplier.apply` reads the
trees back (qdiscs, classes with their byte counters, u32 filters), lets
:func:`gateway.shaping.diff.diff_tree` say what differs, and applies just that, in that
order. Applying the same plan twice changes nothing. tc has no transactions: if a
call fails the pass stops with :class:`TcError` and the next pass, which reads the
kernel again, finishes the job.

The fast paths send no diff: a share book (:mod:`gateway.shaping.book`) returns the
few objects to add or delete as :class:`~gateway.shaping.model.TcChange` records, and
:meth:`TcApplier.queue` / :meth:`TcApplier.commit` send them in one netlink batch, on
the device indexes the last pass looked up.

Besides the two HTB trees it keeps the plumbing they need: the IFB device, and the
LAN's ingress qdisc whose filters redirect IPv4 and IPv6 to the IFB (upload).

Reading back and the few one-off operations (root and ingress qdiscs, the redirect
action, the IFB) go through pyroute2; the bulk of a diff (classes, leaves, u32 nodes)
goes through :class:`gateway.shaping.netlink.TcBatch`, which packs those messages itself:
pyroute2 0.9.7 cannot express u32 hash tables or negative key offsets through its
``tc()`` kwargs, and spends ~0.3 ms of Python per message. pyroute2's u32 key decoder
reads 4 bytes too early, so keys are decoded from the raw attribute
(:mod:`gateway.shaping.dump`). See ``../shared/notes/kernel-facts.md``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from gateway.logs import get_logger
from gateway.names import ifb_name
from gateway.nsenter import in_netns
from gateway.shaping.diff import TreeDiff, TreeState, diff_tree, filter_key
from gateway.shaping.dump import TC_H_INGRESS, TC_H_ROOT, read_tree
from gateway.shaping.model import (
    ETH_P_IP,
    ETH_P_IPV6,
    ROOT_QDISC,
    TcChange,
    TcClass,
    TcFilter,
    TcLeaf,
    TcPlan,
    TcTree,
    slot_of_class,
)
from gateway.shaping.netlink import TcBatch, TcError

__all__ = ["ApplyResult", "TcApplier", "TcError", "read_counters", "slot_counters"]

log = get_logger("tc")

INGRESS_QDISC = 0xFFFF0000
TCA_EGRESS_REDIR = 1
REDIRECTS = ((1, ETH_P_IP), (2, ETH_P_IPV6))  # (prio, protocol) of the LAN -> IFB filters
AGGREGATION = ("rx-gro", "rx-lro", "rx-gro-hw", "rx-gro-list")  # receive offloads that merge frames
PROBE_DEVICE = "hs-tcprobe"


@dataclass(frozen=True)
class ApplyResult:
    """What one :meth:`TcApplier.apply` did, and the byte counters it read on the way."""

    added: int
    changed: int
    removed: int
    # slot -> (download bytes, upload bytes) as counted by the client's classes
    counters: dict[int, tuple[int, int]]

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.changed or self.removed)


class TcApplier:
    """Reads and writes the shaping trees of one router (in ``netns``, "" = this one)."""

    def __init__(self, netns: str, lan: str, ifb: str, wan: str = ""):
        self.netns = netns
        self.lan = lan
        self.ifb = ifb
        self.wan = wan
        self.frames_checked = False
        # a socket opened inside the namespace stays bound to it; unlike IPRoute(netns=),
        # this needs no CAP_SYS_ADMIN when the daemon already runs there (the lab's gateway)
        with in_netns(netns):
            self.ipr = IPRoute()
        self.batch = TcBatch(netns)
        self.indexes: dict[str, int] = {}  # device -> ifindex, as last looked up (each pass does)

    @classmethod
    def for_network(cls, net) -> TcApplier:
        """Return the applier of the router ``net`` (a config's ``network`` section) describes."""
        return cls(net.netns, net.lan_interface, ifb_name(net.lan_interface), net.wan_interface)

    def close(self) -> None:
        self.ipr.close()
        self.batch.close()

    def __enter__(self) -> TcApplier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- devices ------------------------------------------------------------------------

    def index(self, ifname: str) -> int | None:
        """Look up ``ifname``'s index now (and remember it for :meth:`queue`); None if absent."""
        found = self.ipr.link_lookup(ifname=ifname)
        if not found:
            self.indexes.pop(ifname, None)
            return None
        self.indexes[ifname] = found[0]
        return found[0]

    def _ensure_ifb(self) -> int:
        index = self.index(self.ifb)
        if index is None:
            self._call("create ifb", self.ipr.link, "add", ifname=self.ifb, kind="ifb")
            index = self.index(self.ifb)
            log.info("tc_ifb_created", device=self.ifb)
        link = self.ipr.get_links(index)[0]
        if not link["flags"] & 1:  # IFF_UP
            self._call("ifb up", self.ipr.link, "set", index=index, state="up")
        return index

    def probe_leaf_kind(self) -> str:
        """Return "fq_codel" if this kernel has it, else "pfifo" (tried on a throwaway IFB)."""
        if self.index(PROBE_DEVICE) is None:
            try:
                self.ipr.link("add", ifname=PROBE_DEVICE, kind="ifb")
            except NetlinkError:
                return "pfifo"
        index = self.index(PROBE_DEVICE)
        try:
            self.ipr.tc("add", "fq_codel", index, 0x10000)
            kind = "fq_codel"
        except NetlinkError:
            kind = "pfifo"
        finally:
            self.ipr.link("del", index=index)
        return kind

    # -- reading ------------------------------------------------------------------------

    def read(self, device: str) -> TreeState:
        """Return the tree on ``device`` as the planner's records, with class counters."""
        index = self.index(device)
        if index is None:
            return TreeState(root_ok=False)
        try:
            return read_tree(self.batch.socket(), index)
        except TcError as err:
            raise TcError(f"{device}: {err.op}", err.detail) from err

    def counters(self) -> dict[int, tuple[int, int]]:
        """Return slot -> (download bytes, upload bytes) from the client classes."""
        return slot_counters(self.read(self.lan), self.read(self.ifb))

    # -- the fast paths' changes --------------------------------------------------------

    def queue(self, changes: Iterable[TcChange]) -> None:
        """Queue tc objects to send with the next :meth:`commit`, in order (a book's changes).

        Devices are found by the index the last lookup gave (every pass reads both trees),
        so a fast path costs no lookup; a device never seen is looked up now.
        """
        batch = self.batch
        for change in changes:
            index = self.indexes.get(change.device)
            if index is None and (index := self.index(change.device)) is None:
                raise TcError("lookup", f"no device {change.device}")
            item = change.item
            if isinstance(item, TcClass):
                batch.klass(change.op, index, item)
            elif isinstance(item, TcLeaf):
                batch.leaf(change.op, index, item)
            elif isinstance(item, TcFilter):
                batch.filter(change.op, index, ROOT_QDISC, item)
            else:
                raise TypeError(f"not a tc object: {item!r}")

    def commit(self) -> int:
        """Send what :meth:`queue` collected in one netlink batch; return how many objects went.

        Raises :class:`TcError` naming the first failure (the others are still sent).
        """
        return self.batch.commit()

    # -- applying -----------------------------------------------------------------------

    def apply(self, plan: TcPlan, states: tuple[TreeState, TreeState] | None = None) -> ApplyResult:
        """Make both trees and the upload redirect match ``plan``; return what changed.

        ``states`` are the trees as just read back (:meth:`read`), to save reading twice.
        """
        ifb_index = self._ensure_ifb()
        redirect_changes = self._ensure_redirect(ifb_index)
        if not self.frames_checked:
            self.frames_checked = True
            self._ensure_frame_sized([self.lan, self.wan] if self.wan else [self.lan])
        if states is None:
            states = (self.read(plan.down.device), self.read(plan.up.device))
        down_state, up_state = states
        counters = slot_counters(down_state, up_state)
        added = changed = removed = 0
        for tree, state in ((plan.down, down_state), (plan.up, up_state)):
            diff = diff_tree(tree, state)
            if not diff.is_empty():
                self.apply_diff(tree, state, diff)
            added += diff.added
            changed += diff.changed
            removed += diff.removed
        return ApplyResult(added + redirect_changes, changed, removed, counters)

    def diff(self, plan: TcPlan) -> tuple[TreeDiff, TreeDiff]:
        """Return what :meth:`apply` would change on each device (for ``doctor``)."""
        return (
            diff_tree(plan.down, self.read(plan.down.device)),
            diff_tree(plan.up, self.read(plan.up.device)),
        )

    def apply_diff(self, tree: TcTree, state: TreeState, diff: TreeDiff) -> None:
        """Apply one device's ``diff`` (from :func:`diff_tree` against ``state``), in its order."""
        index = self.index(tree.device)
        if index is None:
            raise TcError("lookup", f"no device {tree.device}")
        if diff.rebuild_root:
            root = self._root_handle(index)
            if root is not None:
                self._call(f"{tree.device}: delete root qdisc", self.ipr.tc, "del", index=index, handle=root,
                           parent=TC_H_ROOT)  # fmt: skip
            self._call(f"{tree.device}: add htb root", self.ipr.tc, "add", "htb", index, ROOT_QDISC,
                       default=tree.default)  # fmt: skip
            log.info("tc_root_created", device=tree.device)
        batch = self.batch
        for f in diff.del_filters:
            batch.filter("del", index, ROOT_QDISC, f, handle=state.handles.get(filter_key(f), f.handle))
        for op, queue, items in (
            ("del", batch.klass, diff.del_classes),
            ("del", batch.leaf, diff.del_leaves),
            ("add", batch.klass, diff.add_classes),
            ("change", batch.klass, diff.change_classes),
            ("add", batch.leaf, diff.add_leaves),
            ("change", batch.leaf, diff.change_leaves),
        ):
            for item in items:
                queue(op, index, item)
        for f in diff.add_filters:
            batch.filter("add", index, ROOT_QDISC, f)
        try:
            batch.commit()
        except TcError as err:
            raise TcError(f"{tree.device}: {err.op}", err.detail) from err

    def _root_handle(self, index: int) -> int | None:
        for q in self.ipr.get_qdiscs(index=index):
            if q["parent"] == TC_H_ROOT and q["handle"]:
                return q["handle"]
        return None

    def _ensure_redirect(self, ifb_index: int) -> int:
        """Keep the LAN's ingress qdisc redirecting IPv4 and IPv6 to the IFB; return changes."""
        lan = self.index(self.lan)
        if lan is None:
            raise TcError("lookup", f"no device {self.lan}")
        # the filters say it all (no ingress qdisc: no filters), and dumping them is
        # much cheaper than dumping the LAN's qdiscs, a leaf per client
        found = set()
        for f in self.ipr.get_filters(index=lan, parent=INGRESS_QDISC):
            opts = f.get_attr("TCA_OPTIONS")
            acts = opts.get_attr("TCA_U32_ACT") if opts is not None else None
            for _name, act in (acts or {}).get("attrs", []):
                parms = act.get_attr("TCA_ACT_OPTIONS").get_attr("TCA_MIRRED_PARMS")
                if act.get_attr("TCA_ACT_KIND") == "mirred" and parms["ifindex"] == ifb_index:
                    found.add((f["info"] >> 16, parms["eaction"]))
        if found == {(prio, TCA_EGRESS_REDIR) for prio, _proto in REDIRECTS}:
            return 0
        try:
            self.ipr.tc("del", index=lan, handle=INGRESS_QDISC, parent=TC_H_INGRESS)
        except NetlinkError:
            pass  # there was none
        self._call("add ingress", self.ipr.tc, "add", "ingress", lan, INGRESS_QDISC)
        for prio, protocol in REDIRECTS:
            self._call(
                "add redirect", self.ipr.tc, "add-filter", "u32", lan, parent=INGRESS_QDISC,
                prio=prio, protocol=protocol, target=ROOT_QDISC, keys=["0x0/0x0+0"],
                action={"kind": "mirred", "direction": "egress", "action": "redirect",
                        "ifindex": ifb_index},
            )  # fmt: skip
        log.info("tc_redirect_installed", device=self.lan, ifb=self.ifb)
        return 1 + len(REDIRECTS)

    def _ensure_frame_sized(self, devices: list[str]) -> None:
        """Turn receive aggregation (GRO, LRO) off where the shaped traffic comes in.

        Aggregated, a burst of packets from the uplink (or from a phone) reaches the
        shaper as one 64 KB super-frame: HTB sends it at once, and a leaf counted in
        packets holds many times the bytes it should. At library rates the CPU it saves
        is not needed. Best effort: a device that cannot say is left as it is.
        """
        from pyroute2.ethtool import Ethtool  # deliberate: its ioctl bindings are needed once, at start

        with in_netns(self.netns):
            ethtool = Ethtool()
        try:
            for device in devices:
                try:
                    features = ethtool.get_features(device)
                    found = features.features
                    on = [n for n in AGGREGATION if n in found and found[n].enable and found[n].available]
                    if on:
                        for name in on:
                            features.features[name].enable = False
                        ethtool.set_features(device, features)
                        log.info("tc_aggregation_off", device=device, features=on)
                except Exception as err:  # noqa: BLE001 - ethtool support varies by driver
                    log.warning("tc_aggregation_unknown", device=device, error=str(err))
        finally:
            ethtool.close()

    def remove(self) -> None:
        """Delete the trees, the redirect and the IFB (``hotspotctl`` repairs, tests)."""
        lan = self.index(self.lan)
        if lan is not None:
            for handle, parent in ((ROOT_QDISC, TC_H_ROOT), (INGRESS_QDISC, TC_H_INGRESS)):
                try:
                    self.ipr.tc("del", index=lan, handle=handle, parent=parent)
                except NetlinkError:
                    pass  # not there
        ifb = self.index(self.ifb)
        if ifb is not None:
            self.ipr.link("del", index=ifb)

    def _call(self, op: str, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except NetlinkError as err:
            raise TcError(op, f"{os.strerror(err.code) if err.code > 0 else err}") from err


def slot_counters(down: TreeState, up: TreeState) -> dict[int, tuple[int, int]]:
    """Return slot -> (download bytes, upload bytes) from two trees' class counters."""
    found: dict[int, tuple[int, int]] = {}
    for handle, (nbytes, _packets) in down.counters.items():
        slot = slot_of_class(handle)
        if slot is not None:
            found[slot] = (nbytes, 0)
    for handle, (nbytes, _packets) in up.counters.items():
        slot = slot_of_class(handle)
        if slot is not None:
            found[slot] = (found.get(slot, (0, 0))[0], nbytes)
    return found


def read_counters(config) -> dict[int, tuple[int, int]] | None:
    """Return slot -> (download, upload) bytes of the router in ``config``, or None if unreadable.

    For tools (``hotspotctl top``): None when not allowed (not root), or when the
    namespace, the devices or the trees are not there.
    """
    try:
        with TcApplier.for_network(config.network) as applier:
            return applier.counters()
    except (OSError, NetlinkError, TcError):
        return None
