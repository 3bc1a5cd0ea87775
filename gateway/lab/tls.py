"""A self-signed certificate for the lab router's LAN address (the portal's TLS listener in tests)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gateway.lab.topology import LAN_ROUTER

__all__ = ["self_signed"]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """Write an EC certificate for the router's LAN address into ``folder``; return (cert, key).

    The key is world-readable: lab only, where the portal runs as nobody.
    """
    folder.mkdir(exist_ok=True)
    folder.chmod(0o755)
    cert, key = folder / "portal.pem", folder / "portal.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", f"/CN={LAN_ROUTER}", "-addext", f"subjectAltName=IP:{LAN_ROUTER}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    key.chmod(0o644)
    return cert, key
