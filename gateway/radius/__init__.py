"""The router's side of the program's headquarters: RADIUS (RFC 2865/2866/5176) through pyrad.

- :mod:`~gateway.radius.attributes` (pure): the shipped dictionary, what an Access-Accept
  grants (with bounds: absurd replies are refused), our end reasons as
  Acct-Terminate-Cause, the device id sent as Calling-Station-Id, Accounting-Request
  attributes from a queued record.
- :mod:`~gateway.radius.client`: Access-Request / Accounting-Request with failover over
  ``radius.servers`` and a stated total bound (``timeout x retries x servers``).
- :mod:`~gateway.radius.login`: a central code (not a local voucher) becomes a session.
- :mod:`~gateway.radius.accounting`: the durable outbox (a Redis stream) and the sender
  that replays it in order with Acct-Delay-Time (run by the gateway daemon).

May import: the ground floor (``gateway.config``, ``units``, ``names``, ``logs``),
``gateway.model`` and pyrad. Never pyroute2, nftables or subprocess: the unprivileged
portal imports :mod:`~gateway.radius.login` for central logins (an explicit exception to
"the portal imports only gateway.model", stated in the import-linter contract).
"""
