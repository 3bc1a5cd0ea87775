"""PerpuSeru Hotspot gateway: one house, a shared ground floor and wings.

The privilege boundary is drawn in the tree. The portal (``portal/``, unprivileged, no
capability) may import the model and the ground floor only; the kernel wings (firewall,
shaping) run in the gateway daemon, the one process with CAP_NET_ADMIN. The map below is
the only copy: each wing's ``__init__`` says what it owns and what it may import, and
``[tool.importlinter]`` in ``pyproject.toml`` enforces it (``make lint``, ``make test``;
see CONTRIBUTING.md for where new code goes).

Ground floor (importable by every wing and the portal; imports no wing, except that
:mod:`gateway.neighbours` uses the pure :mod:`gateway.model.record`):

- :mod:`gateway.config`: load and validate ``hotspot.toml`` into frozen records (a package)
- :mod:`gateway.units`: parse and format rates, sizes and durations
- :mod:`gateway.names`: nftables table/set names and the IFB name, shared with dnsmasq and admins
- :mod:`gateway.logs`: structlog set-up
- :mod:`gateway.days`: the library's calendar (which day, when it ends), pure
- :mod:`gateway.nsenter`: enter the router's network namespace for a moment
- :mod:`gateway.neighbours`: who is at which LAN address: the rule and the table (pure)
- :mod:`gateway.neighbour_reader`: reads the kernel's neighbour table and the router's
  IPv6 address (pyroute2; read-only, no capability), for the daemon, the CLI and the portal

Wings, top to bottom (a wing imports only the ones below it):

- :mod:`gateway.cli`: ``hotspotctl``, the admin's command line
- :mod:`gateway.lab`: the network-namespace lab (development only, not installed on routers)
- :mod:`gateway.daemon`: the gateway daemon (``python -m gateway.daemon``), privileged
- :mod:`gateway.firewall` | :mod:`gateway.shaping` | :mod:`gateway.ops` |
  :mod:`gateway.binding` | :mod:`gateway.radius` | :mod:`gateway.hq`: nftables, tc,
  installing on a router, which addresses a session may use, RADIUS with the program's HQ
  (the portal may use its login), and HQ's reach reports; independent of each other
- :mod:`gateway.model`: the domain on Redis, the portal's only wing
"""

__version__ = "0.1.0"
