"""The firewall wing: table ``inet hotspot`` in nftables, following Redis.

Pure (the planners; contract ``planners``: no applier, no Redis, no kernel library):

- :mod:`~gateway.firewall.ruleset`: render the ruleset template (``rules/hotspot.nft``), fingerprint it
- :mod:`~gateway.firewall.plan`: set elements of online sessions, their diff and nft batches;
  ``KernelView``, what one read of the table found
- :mod:`~gateway.firewall.doctor`: how the kernel differs from Redis, as a report

Touch the kernel (the appliers, in the daemon; root or CAP_NET_ADMIN):

- :mod:`~gateway.firewall.nft`: libnftables through ``import nftables``, in the router's namespace
- :mod:`~gateway.firewall.enforce`: ``NftEnforcer``, the reconcile component; ``read_kernel``
- :mod:`~gateway.firewall.monitor`: notices a hand edit of the table (``nft -j monitor``)
- :mod:`~gateway.firewall.guard`: the fail-closed policy-routing rules (pyroute2; they
  outlive a deleted table or a flushed ruleset); ``wanted_rules`` is pure

May import: the ground floor, the model (it uses only the pure record), nftables (only
this wing may, contract ``nftables``). Must not import: shaping, ops, daemon, cli, lab. Imported by: the
daemon, the CLI (doctor and kick when the gateway is down), the lab.
"""
