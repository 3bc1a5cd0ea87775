"""Putting the gateway on a router: install, dnsmasq setup."""
