"""The domain on Redis: sessions, vouchers, accounts, plans, reports (map in a later commit)."""
