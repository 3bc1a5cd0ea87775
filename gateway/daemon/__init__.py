"""The gateway daemon (``python -m gateway.daemon``): the only privileged process (CAP_NET_ADMIN).

- :mod:`~gateway.daemon.__main__`: the entry point
- :mod:`~gateway.daemon.loop`: the loop: passes on a timer, commands from Redis in between, heartbeat
- :mod:`~gateway.daemon.handlers`: what each command does (authorize, deauthorize...), in the loop's Daemon
- :mod:`~gateway.daemon.reconcile`: one pass: Redis -> plans -> kernel, then accounting and ends;
  ``build_reconciler`` is where components plug in
- :mod:`~gateway.daemon.lifecycle`: accounting and the end of sessions (pure)
- :mod:`~gateway.daemon.batch`: which commands that arrived together are applied together (pure)
- :mod:`~gateway.daemon.upkeep`: besides enforcing: the session log, /metrics, config reloads
- :mod:`~gateway.daemon.sessionlog`: the durable session log (JSON lines on disk; a full disk
  delays records, never loses or doubles them)
- :mod:`~gateway.daemon.clock`: a clock behind at start or jumping (NTP after a power cut)
- :mod:`~gateway.daemon.metrics`: Prometheus ``/metrics``
- :mod:`~gateway.daemon.reload`: reload the config without dropping anyone
- :mod:`~gateway.daemon.dhcp_hosts`: the reconcile component giving logged-in devices
  dnsmasq's long lease (one host file per MAC)

May import: the ground floor, the model, the firewall and shaping wings. Must not import:
cli, lab, the portal (contract ``layers``). Imported by: the CLI (its gateway-down
fallback, ``sessions``), the lab.
"""
