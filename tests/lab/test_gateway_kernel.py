"""The nftables component on a real kernel, in a scratch namespace: apply, read back, apply again.

No daemon runs here: the test drives :class:`NftEnforcer` itself, so it owns the table.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import replace

import pytest

from gateway.config import loads
from gateway.firewall.enforce import NftEnforcer, read_kernel
from gateway.firewall.guard import wanted_rules
from gateway.firewall.nft import Nft
from gateway.firewall.plan import Element
from gateway.model.sessions import new_session

pytestmark = pytest.mark.lab

NOW = 1_800_000_000.0
CONFIG = """
[library]
id = "k"
name = "Kernel test"
[network]
lan_interface = "lan0"
wan_interface = "wan0"
lan_address = "10.42.0.1/24"
admin_networks = ["10.42.0.0/28"]
[uplink]
down = "10mbit"
up = "10mbit"
[walled_garden]
networks = ["203.0.113.0/24"]
"""


@pytest.fixture
def scratch():
    name = f"{os.environ.get('HOTSPOT_TEST_PREFIX', 'hs-t-')}kern"  # not a lab name: lab down leaves it
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def sessions(n, now):
    return [
        new_session(
            mac=f"02:00:00:00:02:{i:02x}",
            ip=f"10.42.0.{100 + i}",
            kind="admin",
            plan="",
            now=now,
            expires_at=now + 3600,
            down=1,
            up=1,
        )  # fmt: skip
        for i in range(n)
    ]


def test_apply_read_back_apply_again_changes_nothing(scratch):
    config = loads(CONFIG, "k.toml")
    config = replace(config, network=replace(config.network, netns=scratch))
    enforcer = NftEnforcer(config)
    now = time.time()
    online = sessions(3, now)
    first = enforcer.reconcile(online, now)
    assert first["rebuilt"] == 1 and first["added"] == 6
    assert first["guard"] == 4, "the fail-closed routing rules (v4 and v6: pass marked, blackhole)"
    assert enforcer.guard.present() == wanted_rules("lan0")
    again = enforcer.reconcile(online, now + 1)
    assert again == {"added": 0, "replaced": 0, "refreshed": 0, "removed": 0, "unchanged": 6, "rebuilt": 0,
                     "invalid": 0, "guard": 0}  # fmt: skip

    nft = Nft(scratch)
    # a counter the kernel has must survive a repair of the table
    mac, ip = online[0].mac, online[0].ip
    nft.apply(f"add element inet hotspot auth4 {{ {mac} . {ip} counter packets 5 bytes 500 }}")
    nft.apply("flush table inet hotspot")
    healed = enforcer.reconcile(online[1:], now + 2)
    assert healed["rebuilt"] == 1 and healed["removed"] == 2
    view = read_kernel(nft)
    assert Element("auth4", (mac, ip)) not in view.elements
    assert {e.set for e in view.elements} == {"auth4", "down4"} and len(view.elements) == 4

    # a new config (another walled-garden network) replaces the table at the next pass
    other = replace(config, walled_garden=replace(config.walled_garden, networks=()))
    enforcer.configure(other)
    assert enforcer.reconcile(online[1:], now + 3)["rebuilt"] == 1
    enforcer.configure(other)
    assert enforcer.reconcile(online[1:], now + 4)["rebuilt"] == 0
    enforcer.close()


def test_a_logout_reads_its_own_counters_at_the_delete_with_many_online(scratch):
    """Item 10 at scale: the logout reads its elements one by one (``get element``), not the
    whole set, and still gets the bytes the kernel counted; gone elements fall back to a listing."""
    config = loads(CONFIG, "k.toml")
    config = replace(config, network=replace(config.network, netns=scratch))
    enforcer = NftEnforcer(config)
    now = time.time()
    crowd = sessions(150, now)  # addresses .100-.249
    enforcer.reconcile(crowd, now)
    nft = Nft(scratch)
    leaving, other = crowd[7], crowd[8]
    # the kernel counted some traffic for both (as the packets would have)
    for s, n in ((leaving, 500), (other, 900)):
        nft.apply(f'add element inet hotspot auth4 {{ {s.mac} . {s.ip} counter packets 5 bytes {n} '
                  f'timeout 1h comment "{s.sid}" }}')  # fmt: skip
        nft.apply(f"delete element inet hotspot auth4 {{ {s.mac} . {s.ip} }}")
        nft.apply(f'add element inet hotspot auth4 {{ {s.mac} . {s.ip} counter packets 5 bytes {n} '
                  f'timeout 1h comment "{s.sid}" }}')  # fmt: skip
    calls = []
    listing = nft.read_then_apply
    enforcer.nft.read_then_apply = lambda *a, **k: calls.append(a) or listing(*a, **k)
    final = enforcer.logout(leaving, now + 1)
    assert final[Element("auth4", (leaving.mac, leaving.ip))].bytes == 500
    assert calls == [], "its own elements were read, not the whole set"
    view = read_kernel(nft)
    assert Element("auth4", (leaving.mac, leaving.ip)) not in view.elements
    assert len(view.elements) == 2 * 149
    # an element the enforcer believes in but the kernel lost (deleted by hand): the logout
    # still cuts off and reads what is left, by listing the sets
    nft.apply(f"delete element inet hotspot down4 {{ {other.ip} }}")
    final = enforcer.logout(other, now + 2)
    assert final[Element("auth4", (other.mac, other.ip))].bytes == 900
    assert len(calls) == 1
    assert Element("auth4", (other.mac, other.ip)) not in read_kernel(nft).elements
    enforcer.close()
