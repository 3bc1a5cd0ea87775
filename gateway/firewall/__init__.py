"""The nftables wing: ruleset, plan, doctor, enforce, guard (fail-closed routing rules)."""
