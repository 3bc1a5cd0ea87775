"""Putting the gateway on a router (Debian 12): install and the LAN's dnsmasq.

- :mod:`~gateway.ops.install`: ``make install`` / ``make uninstall`` (a venv, units, config,
  dnsmasq and Redis drop-ins); runs with the system python, so it imports only the ground floor
- :mod:`~gateway.ops.dnsmasq`: render the dnsmasq config (DHCP, DNS, option 114, walled garden)
- :mod:`~gateway.ops.debversion`: ``make deb DEB_VERSION=X`` sets the build copy's version

None runs in a daemon; they write files, not kernel state. May import: the standard
library, :mod:`gateway.config`, :mod:`gateway.units`, :mod:`gateway.names` (contract ``ops``:
no third-party package, no other wing). Imported by: the CLI, the lab.
"""
