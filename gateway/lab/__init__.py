"""The lab: network namespaces standing in for a library (``hotspotctl lab``, ``make demo``, tests).

Development only: left out of the installed package, so it never reaches a router
(contract ``lab``: only :mod:`gateway.cli.lab` imports it, lazily).

- :mod:`~gateway.lab.tls`: a self-signed certificate for the router's LAN address (TLS tests, benches)
- :mod:`~gateway.lab.topology`: the lab's shape as data (namespaces, links, addresses)
- :mod:`~gateway.lab.netns`: make the kernel's namespaces and links match it
- :mod:`~gateway.lab.lab`: bring the lab up and down, with its processes (Redis, gateway, portal...)
- :mod:`~gateway.lab.upstream`: the lab's "internet" (answers the OS connectivity probes)
- :mod:`~gateway.lab.probe`: what a lab phone can reach (tests, benches, the demo)
- :mod:`~gateway.lab.measure`: iperf3 goodput, ping, fairness
- :mod:`~gateway.lab.demo`, :mod:`~gateway.lab.demo_visit`: ``make demo``, step by step
- :mod:`~gateway.lab.routeroot`: the Debian package installed for real in a lab router (a Debian
  root run in the router's namespace), and steady UDP streams from the phones (upgrade tests)
- :mod:`~gateway.lab.unitctl`: the stand-in ``systemctl`` copied into such a root

May import: every wing below the CLI. Imported by: :mod:`gateway.cli.lab`, tests, benches.
"""
