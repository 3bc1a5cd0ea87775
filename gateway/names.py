"""Names shared by the gateway's kernel state and the tools that refer to it.

The nftables table and set names are part of the contract with dnsmasq (which adds
walled-garden addresses to a set by name) and with admins reading ``nft list``.
"""

__all__ = [
    "NFT_FAMILY",
    "NFT_TABLE",
    "AUTH_SET4",
    "AUTH_SET6",
    "DOWN_SET4",
    "DOWN_SET6",
    "WALLED_SET4",
    "WALLED_NETS4",
    "ADMIN_SET4",
    "ADMIN_SET6",
    "GUARD_MARK",
    "GUARD_PREF",
    "HQ_SET4",
    "ifb_name",
]

NFT_FAMILY = "inet"
NFT_TABLE = "hotspot"
AUTH_SET4 = "auth4"  # ether_addr . ipv4_addr of authorized clients
AUTH_SET6 = "auth6"  # ether_addr . ipv6_addr of authorized clients
WALLED_SET4 = "walled4"  # ipv4_addr, filled by dnsmasq nftset= for walled-garden names
DOWN_SET4 = "down4"  # ipv4_addr of authorized clients: replies to them, download counter
DOWN_SET6 = "down6"  # ipv6_addr of authorized clients: replies to them, download counter
WALLED_NETS4 = "walled_nets4"  # walled_garden.networks from the config
ADMIN_SET4 = "admin4"  # network.admin_networks (IPv4): SSH to the router from the LAN
ADMIN_SET6 = "admin6"  # network.admin_networks (IPv6)
# Fail closed: table inet hotspot sets this packet-mark bit on everything from the LAN, and two
# policy-routing rules (pref GUARD_PREF: marked -> main table; GUARD_PREF + 1: blackhole) route
# nothing from the LAN without it. They survive `nft flush ruleset` (gateway/firewall/guard.py).
GUARD_MARK = 0x01000000
GUARD_PREF = 1000
HQ_SET4 = "hq4"  # radius.servers and dynauth_clients: the program's HQ, closed to visitors


def ifb_name(lan_interface: str) -> str:
    """Return the IFB device that carries ``lan_interface``'s upload traffic."""
    return f"ifb-{lan_interface}"[:15]
