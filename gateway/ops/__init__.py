"""Putting the gateway on a router: install, dnsmasq setup, dhcp_hosts (long DHCP leases after login)."""
