"""The nftables wing: ruleset, plan, doctor, enforce (map in a later commit)."""
