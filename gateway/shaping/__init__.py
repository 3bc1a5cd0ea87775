"""The tc wing: model, shares, plan, diff, dump, netlink, apply, shaper (map in a later commit)."""
