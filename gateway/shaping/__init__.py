"""The shaping wing: tc (HTB, IFB, u32) gives each online client its fair share of the line.

Pure (the planners; contract ``planners``: no applier, no Redis, no kernel library):

- :mod:`~gateway.shaping.model`: the tc tree as records, handles and their text
- :mod:`~gateway.shaping.shares`: weighted fair shares of the line, slots for tc handles
- :mod:`~gateway.shaping.plan`: the tc tree for the config and the online sessions
- :mod:`~gateway.shaping.diff`: planned tree against the kernel's, the changes in order
- :mod:`~gateway.shaping.book`: ``ShareBook``, slots, shares and rates remembered between
  passes; says which tc objects a pass or a login/logout sends and what to record

Touch the kernel or Redis (the appliers, in the daemon):

- :mod:`~gateway.shaping.netlink`: many tc changes at once, rtnetlink packed with struct
- :mod:`~gateway.shaping.dump`: read the tc tree back (raw netlink dumps parsed with struct)
  and the root qdiscs' drops (pyroute2); read-only
- :mod:`~gateway.shaping.apply`: ``TcApplier``, make tc match a plan (pyroute2), send a
  book's changes (``queue()``/``commit()``); counters
- :mod:`~gateway.shaping.shaper`: ``Shaper``, the reconcile component: reads Redis and the
  kernel, asks the book, sends, records
- :mod:`~gateway.shaping.rates`: each client's current rate, written to and read from Redis

May import: the ground floor, the model, pyroute2 (only this wing and
:mod:`gateway.neighbour_reader` may, contract ``pyroute2``). Must not import: firewall,
ops, daemon, cli, lab. Imported by: the daemon, the CLI (``limit``, ``top``, ``clients``), the lab.
"""
