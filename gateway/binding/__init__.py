"""Session binding: which addresses a session may use, and when it may move to another.

A session is bound to what the device showed at login: its MAC and the IPv4 address the
login request came from. On a shared LAN anyone can *say* "address X is at MAC M" (ARP
and neighbour-discovery payloads are not checked by the kernel), so nothing here trusts
the neighbour table alone:

- **moves** (:func:`rules.plan_move_candidates`, :func:`rules.decide_moves`): a session
  follows its device to a new IPv4 address only when dnsmasq's lease for the MAC names
  the new address *and* the old address no longer answers an ARP probe from that MAC
  (a device that renewed to a new lease has let the old one go; a victim whose MAC was
  cloned or whose address was claimed in a forged payload still answers there);
- **IPv6** (:func:`rules.plan_ip6`): an address seen for the MAC is authorized only after
  the router's own neighbour solicitation was answered from that MAC (Ethernet source,
  advertisement target and link-layer option all agree), at most :data:`rules.MAX_IP6`
  per device.

- **pins** (:mod:`~gateway.binding.pins`): the router's neighbour entry of each online
  session (and verified IPv6 address) is made permanent, so a forged ARP reply or NA
  cannot redirect an online phone's downloads.

Pure rules live in :mod:`~gateway.binding.rules` and :mod:`~gateway.binding.leases`; the
raw-socket probes in :mod:`~gateway.binding.probe`; :mod:`~gateway.binding.guard` keeps
what was verified between passes. May import the ground floor and ``gateway.model``.
See ``docs/security.md`` ("A MAC clone ...", "Neighbour-table poisoning ...").
"""
