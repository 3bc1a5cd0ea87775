"""Make the kernel's tc state match a :class:`~gateway.tc_plan.TcPlan`, through pyroute2.

The only module that talks tc to the kernel. Each :meth:`TcApplier.apply` reads the
trees back (qdiscs, classes with their byte counters, u32 filters), lets
:func:`gateway.tc_diff.diff_tree` say what differs, and applies just that, in that
order. Applying the same plan twice changes nothing. tc has no transactions: if a
call fails the pass stops with :class:`TcError` and the next pass, which reads the
kernel again, finishes the job.

Besides the two HTB trees it keeps the plumbing they need: the IFB device, and the
LAN's ingress qdisc whose filters redirect IPv4 and IPv6 to the IFB (upload).

pyroute2 0.9.7 notes (see ``../shared/notes/kernel-facts.md``): u32 hash tables need
extra attributes the ``tc()`` kwargs do not expose (:func:`_install_u32_extensions`
adds ``divisor``, ``ht``, ``link``, ``hashkey``); its u32 key decoder reads 4 bytes too
early, so keys are decoded here from the raw attribute (:func:`_u32_keys`); deleting
classes and filters works only without ``kind`` (or with a dummy target).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink import nla
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.tcmsg import cls_u32

from gateway.logs import get_logger
from gateway.tc_diff import TreeDiff, TreeState, diff_tree, filter_key
from gateway.tc_model import (
    ETH_P_IP,
    ETH_P_IPV6,
    ROOT_QDISC,
    TcClass,
    TcFilter,
    TcLeaf,
    TcPlan,
    TcTree,
    U32Key,
    slot_of_class,
)

__all__ = ["ApplyResult", "TcApplier", "TcError", "read_counters", "slot_counters"]

log = get_logger("tc")

TC_H_ROOT = 0xFFFFFFFF
TC_H_INGRESS = 0xFFFFFFF1
INGRESS_QDISC = 0xFFFF0000
TCA_EGRESS_REDIR = 1
REDIRECTS = ((1, ETH_P_IP), (2, ETH_P_IPV6))  # (prio, protocol) of the LAN -> IFB filters
PROBE_DEVICE = "hs-tcprobe"


class TcError(Exception):
    """A tc operation failed: ``op`` says which, ``detail`` what the kernel answered."""

    def __init__(self, op: str, detail: str):
        self.op = op
        self.detail = detail
        super().__init__(f"{op}: {detail}")


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


def _install_u32_extensions() -> None:
    """Teach pyroute2's u32 plugin what the kernel can do and its kwargs cannot say.

    - hash tables: ``divisor``, ``ht`` (table and bucket of a node), ``link``, ``hashkey``;
    - keys given as :class:`U32Key` records, encoded as is. pyroute2's own key parser
      packs keys into a 256-byte array indexed by offset, so it cannot express the
      negative offsets that reach the Ethernet header (IPv6 is classified by MAC), and
      it fails on a zero mask.
    """
    if getattr(cls_u32.get_parameters, "_hotspot", False):
        return
    original = cls_u32.get_parameters
    original_encode = cls_u32.options.u32_sel.encode

    def get_parameters(kwarg: dict) -> dict:
        if "divisor" in kwarg:
            return {"attrs": [["TCA_U32_DIVISOR", kwarg["divisor"]]]}
        ret = original(kwarg)
        if "ht" in kwarg:
            ret["attrs"].append(["TCA_U32_HASH", kwarg["ht"]])
        if "link" in kwarg:
            ret["attrs"].append(["TCA_U32_LINK", struct.pack("I", kwarg["link"])])
        if "hashkey" in kwarg:
            sel = next(a for a in ret["attrs"] if a[0] == "TCA_U32_SEL")[1]
            sel["hmask"], sel["hoff"] = kwarg["hashkey"]
        return ret

    def encode(sel) -> None:
        keys = sel["keys"]
        if not keys or not isinstance(keys[0], U32Key):
            return original_encode(sel)
        # struct tc_u32_sel, then one struct tc_u32_key {be32 mask, be32 val, int off, offmask}
        sel["nkeys"] = len(keys)
        sel["flags"] = 1  # TC_U32_TERMINAL: a match ends the search
        nla.encode(sel)
        for key in keys:
            sel.data.extend(
                struct.pack(">II", key.mask, key.value & key.mask) + struct.pack("=ii", key.offset, 0)
            )
        sel.length = 20 + 16 * len(keys)
        struct.pack_into("H", sel.data, sel.offset, sel.length)

    get_parameters._hotspot = True  # type: ignore[attr-defined]
    cls_u32.get_parameters = get_parameters
    cls_u32.options.u32_sel.encode = encode


_install_u32_extensions()


def _u32_keys(sel) -> tuple[U32Key, ...]:
    # struct tc_u32_sel is 16 bytes after the 4-byte attribute header; each key is
    # {__be32 mask, __be32 val, int off, int offmask}
    keys = []
    for i in range(sel["nkeys"]):
        at = sel.offset + 20 + 16 * i
        mask, value = struct.unpack_from(">II", sel.data, at)
        (offset,) = struct.unpack_from("=i", sel.data, at + 8)
        keys.append(U32Key(value, mask, offset))
    return tuple(keys)


class TcApplier:
    """Reads and writes the shaping trees of one router (in ``netns``, "" = this one)."""

    def __init__(self, netns: str, lan: str, ifb: str):
        self.netns = netns
        self.lan = lan
        self.ifb = ifb
        self.ipr = IPRoute(netns=netns, flags=0) if netns else IPRoute()

    def close(self) -> None:
        self.ipr.close()

    def __enter__(self) -> TcApplier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- devices ------------------------------------------------------------------------

    def index(self, ifname: str) -> int | None:
        found = self.ipr.link_lookup(ifname=ifname)
        return found[0] if found else None

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
        log.info("tc_leaf_probed", leaf=kind)
        return kind

    # -- reading ------------------------------------------------------------------------

    def read(self, device: str) -> TreeState:
        """Return the tree on ``device`` as the planner's records, with class counters."""
        index = self.index(device)
        if index is None:
            return TreeState(root_ok=False)
        root_ok = False
        leaves: dict[int, TcLeaf] = {}
        for q in self.ipr.get_qdiscs(index=index):
            kind = q.get_attr("TCA_KIND")
            if q["parent"] == TC_H_ROOT:
                init = (q.get_attr("TCA_OPTIONS") or {}).get_attr("TCA_HTB_INIT") if kind == "htb" else None
                root_ok = q["handle"] == ROOT_QDISC and init is not None and init["defcls"] & 0xFFFF == 2
            elif q["parent"] != TC_H_INGRESS and kind in ("pfifo", "fq_codel"):
                limit = q.get_attr("TCA_OPTIONS")["limit"] if kind == "pfifo" else 0
                leaves[q["parent"]] = TcLeaf(q["parent"], q["handle"], kind, limit)
            elif q["parent"] != TC_H_INGRESS:
                leaves[q["parent"]] = TcLeaf(q["parent"], q["handle"], kind or "?")
        if not root_ok:
            return TreeState(root_ok=False)
        classes: dict[int, TcClass] = {}
        counters: dict[int, tuple[int, int]] = {}
        for c in self.ipr.get_classes(index=index):
            parms = c.get_attr("TCA_OPTIONS").get_attr("TCA_HTB_PARMS")
            rate = c.get_attr("TCA_OPTIONS").get_attr("TCA_HTB_RATE64") or parms["rate"]
            ceil = c.get_attr("TCA_OPTIONS").get_attr("TCA_HTB_CEIL64") or parms["ceil"]
            parent = ROOT_QDISC if c["parent"] == TC_H_ROOT else c["parent"]
            classes[c["handle"]] = TcClass(
                c["handle"], parent, rate * 8, ceil * 8, parms["quantum"], parms["prio"]
            )
            basic = c.get_attr("TCA_STATS2").get_attr("TCA_STATS_BASIC")
            counters[c["handle"]] = (basic["bytes"], basic["packets"])
        filters, handles = self._read_filters(index)
        return TreeState(True, classes, leaves, filters, counters, handles)

    def _read_filters(self, index: int) -> tuple[dict[tuple, TcFilter], dict[tuple, int]]:
        filters: dict[tuple, TcFilter] = {}
        handles: dict[tuple, int] = {}
        for f in self.ipr.get_filters(index=index, parent=ROOT_QDISC):
            opts = f.get_attr("TCA_OPTIONS")
            if f.get_attr("TCA_KIND") != "u32" or not f["handle"] or opts is None:
                continue
            prio, protocol = f["info"] >> 16, struct.unpack(">H", struct.pack("=H", f["info"] & 0xFFFF))[0]
            handle = f["handle"]
            htid = handle >> 20
            divisor = opts.get_attr("TCA_U32_DIVISOR")
            if divisor:
                if htid >= 0x800:
                    continue  # a prio's root table: the kernel makes and names those
                record = TcFilter(prio, protocol, handle, divisor=divisor)
            else:
                sel = opts.get_attr("TCA_U32_SEL")
                link = opts.get_attr("TCA_U32_LINK")
                in_root = htid >= 0x800
                record = TcFilter(
                    prio, protocol,
                    handle & 0xFFF if in_root else handle,
                    ht=0 if in_root else handle & 0xFFFFF000,
                    target=opts.get_attr("TCA_U32_CLASSID") or 0,
                    keys=_u32_keys(sel) if sel is not None else (),
                    link=int.from_bytes(bytes.fromhex(link.replace(":", "")), "little") if link else 0,
                    hashkey=(sel["hmask"], sel["hoff"]) if sel is not None and sel["hmask"] else None,
                )  # fmt: skip
            filters[filter_key(record)] = record
            handles[filter_key(record)] = handle
        return filters, handles

    def counters(self) -> dict[int, tuple[int, int]]:
        """Return slot -> (download bytes, upload bytes) from the client classes."""
        return slot_counters(self.read(self.lan), self.read(self.ifb))

    # -- applying -----------------------------------------------------------------------

    def apply(self, plan: TcPlan, states: tuple[TreeState, TreeState] | None = None) -> ApplyResult:
        """Make both trees and the upload redirect match ``plan``; return what changed.

        ``states`` are the trees as just read back (:meth:`read`), to save reading twice.
        """
        ifb_index = self._ensure_ifb()
        redirect_changes = self._ensure_redirect(ifb_index)
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
        """Apply one device's ``diff`` (from :func:`diff_tree` against ``state``)."""
        index = self.index(tree.device)
        if index is None:
            raise TcError("lookup", f"no device {tree.device}")
        ipr = self.ipr
        if diff.rebuild_root:
            if self._root_handle(index) is not None:
                self._call(f"{tree.device}: delete root qdisc", ipr.tc, "del", index=index,
                           handle=self._root_handle(index), parent=TC_H_ROOT)  # fmt: skip
            self._call(f"{tree.device}: add htb root", ipr.tc, "add", "htb", index, ROOT_QDISC,
                       default=tree.default)  # fmt: skip
            log.info("tc_root_created", device=tree.device)
        for f in diff.del_filters:
            self._call(
                f"{tree.device}: delete filter {f.handle:#x}", ipr.tc, "del-filter", "u32", index,
                state.handles.get(filter_key(f), f.handle), parent=ROOT_QDISC, prio=f.prio,
                protocol=f.protocol, target=0, keys=[],
            )  # fmt: skip
        for c in diff.del_classes:
            self._call(f"{tree.device}: delete class {c.handle:#x}", ipr.tc, "del-class",
                       index=index, handle=c.handle)  # fmt: skip
        for leaf in diff.del_leaves:
            self._call(f"{tree.device}: delete leaf {leaf.handle:#x}", ipr.tc, "del",
                       index=index, handle=leaf.handle, parent=leaf.parent)  # fmt: skip
        for c in diff.add_classes:
            self._class(index, tree.device, "add-class", c)
        for c in diff.change_classes:
            self._class(index, tree.device, "change-class", c)
        for leaf in diff.add_leaves:
            self._leaf(index, tree.device, "add", leaf)
        for leaf in diff.change_leaves:
            self._leaf(index, tree.device, "change", leaf)
        for f in diff.add_filters:
            self._filter(index, tree.device, f)

    def _root_handle(self, index: int) -> int | None:
        for q in self.ipr.get_qdiscs(index=index):
            if q["parent"] == TC_H_ROOT and q["handle"]:
                return q["handle"]
        return None

    def _class(self, index: int, device: str, op: str, c: TcClass) -> None:
        self._call(
            f"{device}: {op} {c.handle:#x}", self.ipr.tc, op, "htb", index, c.handle,
            parent=c.parent, rate=c.rate // 8, ceil=c.ceil // 8, quantum=c.quantum, prio=c.prio,
            **({"burst": c.burst, "cburst": c.cburst} if c.burst else {}),
        )  # fmt: skip

    def _leaf(self, index: int, device: str, op: str, leaf: TcLeaf) -> None:
        extra = {"limit": leaf.limit} if leaf.kind == "pfifo" else {}
        self._call(f"{device}: {op} leaf {leaf.handle:#x}", self.ipr.tc, op, leaf.kind, index,
                   leaf.handle, parent=leaf.parent, **extra)  # fmt: skip

    def _filter(self, index: int, device: str, f: TcFilter) -> None:
        args: dict = {"parent": ROOT_QDISC, "prio": f.prio, "protocol": f.protocol}
        if f.divisor:
            args["divisor"] = f.divisor
        else:
            args.update(target=f.target, keys=list(f.keys))
            if f.ht:
                args["ht"] = f.ht
            if f.link:
                args["link"] = f.link
            if f.hashkey:
                args["hashkey"] = f.hashkey
        self._call(f"{device}: add filter {f.handle:#x}", self.ipr.tc, "add-filter", "u32", index,
                   f.handle, **args)  # fmt: skip

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
                prio=prio, protocol=protocol, target=ROOT_QDISC, keys=[U32Key(0, 0, 0)],
                action={"kind": "mirred", "direction": "egress", "action": "redirect",
                        "ifindex": ifb_index},
            )  # fmt: skip
        log.info("tc_redirect_installed", device=self.lan, ifb=self.ifb)
        return 1 + len(REDIRECTS)

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
    from gateway.names import ifb_name

    net = config.network
    try:
        with TcApplier(net.netns, net.lan_interface, ifb_name(net.lan_interface)) as applier:
            return applier.counters()
    except (OSError, NetlinkError, TcError):
        return None
