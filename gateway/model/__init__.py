"""The model: the domain on Redis (the single source of truth), the only wing the portal may import.

Nothing here touches the kernel: the gateway's reconcile loop makes nftables and tc follow
what these modules write. Pure modules need no Redis at all.

- :mod:`~gateway.model.keys`: every Redis key, in one place (the schema)
- :mod:`~gateway.model.store`: connect to Redis from the config
- :mod:`~gateway.model.commands`: the request/ack protocol with the gateway; its heartbeat
- :mod:`~gateway.model.record`: the ``Session`` record, ``normalize_mac``, end reasons (pure)
- :mod:`~gateway.model.sessions`: start, end, find and account sessions
- :mod:`~gateway.model.vouchers`: voucher codes, batches, redeeming, a voucher's quota across devices
- :mod:`~gateway.model.voucher_admin`: what staff do with vouchers and clients (revoke, extend, kick)
- :mod:`~gateway.model.accounts`: desk logins and their sessions
- :mod:`~gateway.model.audit`: the audit trail of staff actions
- :mod:`~gateway.model.plans`: which plans may be issued now
- :mod:`~gateway.model.free`: free sessions, limited per device per day
- :mod:`~gateway.model.limits`: live throttling of one session
- :mod:`~gateway.model.survey`: the survey's anonymous counts per day, question and answer
- :mod:`~gateway.model.ratelimit`: failure-based rate limiting (logins, codes)
- :mod:`~gateway.model.reports`: day and month reports for the program
- :mod:`~gateway.model.clock`: a clock far off: what can be known, moving times on a jump
- :mod:`~gateway.model.report_csv`: the reports as CSV

May import: the ground floor, redis. Must not import: the kernel wings (firewall, shaping),
daemon, ops, cli, lab, the portal, pyroute2, nftables, scapy, subprocess (contract
``model``). Imported by: the portal, every wing.
"""
