"""PerpuSeru Hotspot gateway: config, domain model, the privileged daemon, the CLI and the lab."""

__version__ = "0.1.0"
