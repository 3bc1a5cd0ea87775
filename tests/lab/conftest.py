"""Fixtures shared by the lab tests (the lab itself and ``gw`` are ``tests/conftest.py``'s)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def hq_lab(lab):
    """The session's lab with the program's headquarters added (FreeRADIUS + PostgreSQL in <prefix>hq).

    The gateway and portal restart to read the config's ``[radius]`` section. After the
    module HQ is stopped by PID, its namespace removed and the lab put back as it was, so
    the other lab tests see the library on its own (its database stays in the lab dir).
    """
    from gateway.lab.lab import Lab
    from gateway.lab.netns import delete_namespaces
    from gateway.lab.topology import LabSpec

    spec = LabSpec(prefix=lab.spec.prefix, clients=lab.spec.clients, uplink=lab.spec.uplink, hq=True)
    with_hq = Lab(spec, lab.dir)
    try:
        with_hq.up()
        with_hq.restart("gateway")
        with_hq.restart("portal")
        yield with_hq
    finally:
        for name in ("freeradius", "postgres"):
            with_hq.stop(name)
        delete_namespaces([spec.hq_ns])
        lab.up()  # the config without [radius]
        lab.restart("gateway")
        lab.restart("portal")
