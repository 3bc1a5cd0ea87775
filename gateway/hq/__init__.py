"""The program's side of the fleet: what runs at HQ, next to FreeRADIUS and PostgreSQL.

- :mod:`~gateway.hq.reach`: central reach reports from ``radacct`` per library, district
  or province, per day or month (pure SQL builder and row shaping; the query runs through
  ``psql``, so HQ needs no Python database driver).
- ``program.sql``: what the program adds to FreeRADIUS's standard schema (library metadata).

May import: the ground floor only. Never the router's wings (``gateway.model`` and below):
HQ has no Redis.
"""
