"""The gateway daemon: loop, reconcile, lifecycle, upkeep, metrics, session log, reload."""
