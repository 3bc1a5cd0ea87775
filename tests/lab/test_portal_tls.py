"""The desk behind TLS in the lab (issue 16, item 9): a real gunicorn TLS listener, a self-signed
certificate made here with openssl, curl as the desk PC's browser.

Over plain HTTP the desk redirects to HTTPS (pages) or refuses (forms, so a password typed
there is not used); over HTTPS its answers carry HSTS and its sign-in cookie is Secure.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from gateway.lab.lab import NOBODY, Proc
from gateway.lab.tls import self_signed
from gateway.lab.topology import LAN_ROUTER
from gateway.model.accounts import create_account, remove_account

pytestmark = pytest.mark.lab

HTTP, HTTPS = f"http://{LAN_ROUTER}:18081", f"https://{LAN_ROUTER}:18444"


def _tls_config(lab, folder: Path) -> tuple[Path, Path]:
    """Write a certificate and a config with TLS on 18081/18444; return (config, cert)."""
    cert, key = self_signed(folder)
    text = lab.config_path.read_text().replace(
        f'url = "http://{LAN_ROUTER}:8080"',
        f'url = "{HTTPS}"\nport = 18081\ntls_port = 18444\ntls_cert = "{cert}"\ntls_key = "{key}"',
    )
    # the test's curl runs on the router itself (source 10.42.0.1): let it reach the desk too
    text = text.replace('networks = ["', f'networks = ["{LAN_ROUTER}/32", "', 1)
    config_path = folder / "hotspot.toml"
    config_path.write_text(text)
    config_path.chmod(0o644)
    return config_path, cert


def _curl(lab, *args: str) -> tuple[int, dict[str, list[str]], str]:
    out = lab.exec(lab.spec.gw, "curl", "-s", "-i", "-m", "5", *args, timeout=15).stdout
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        headers.setdefault(name.lower(), []).append(value)
    return (int(lines[0].split()[1]) if lines else 0), headers, body


def test_desk_is_https_only_with_hsts_and_secure_cookies(lab, gw, tmp_path):
    config_path, cert = _tls_config(lab, lab.dir / "tls-desk-test")
    create_account(gw, "tlsdesk", "rahasia-tls-desk", "librarian", actor="test", now=time.time())
    proc = Proc(
        "portal-tls-desk", lab.spec.gw,
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all", "--",
         lab.python, "-m", "portal", "--config", str(config_path)],
        env={"PYTHONUNBUFFERED": "1"},
        ready=lambda: lab._http_ok(lab.spec.gw, f"{HTTP}/healthz"),
    )  # fmt: skip
    lab.start(proc)
    jar = tmp_path / "jar"
    try:
        deadline = time.monotonic() + 15
        while _curl(lab, "--cacert", str(cert), f"{HTTPS}/healthz")[0] != 200:
            assert time.monotonic() < deadline, "the TLS listener did not come up"
            time.sleep(0.2)
        # plain HTTP: a page is redirected, a password post is refused
        status, headers, _ = _curl(lab, f"{HTTP}/desk/login")
        assert status == 308 and headers["location"] == [f"{HTTPS}/desk/login"]
        status, headers, page = _curl(lab, "--data", "name=tlsdesk&password=rahasia-tls-desk",
                                      f"{HTTP}/desk/login?lang=en")  # fmt: skip
        assert status == 403 and "secure connection" in page
        assert not any(c.startswith("session=") for c in headers.get("set-cookie", []))
        # HTTPS: HSTS, and the sign-in cookie is Secure
        status, headers, page = _curl(lab, "--cacert", str(cert), "-c", str(jar), f"{HTTPS}/desk/login")
        assert status == 200 and headers["strict-transport-security"] == ["max-age=31536000"]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        status, headers, _ = _curl(lab, "--cacert", str(cert), "-b", str(jar), "-c", str(jar), "--data",
                                   f"name=tlsdesk&password=rahasia-tls-desk&csrf_token={token}",
                                   f"{HTTPS}/desk/login")  # fmt: skip
        assert status == 302, "signed in over HTTPS"
        cookies = [c for c in headers.get("set-cookie", []) if c.startswith("session=")]
        assert cookies and all("Secure" in c and "HttpOnly" in c for c in cookies)
        status, _, page = _curl(lab, "--cacert", str(cert), "-b", str(jar), f"{HTTPS}/desk/")
        assert status == 200 and "tlsdesk" in page
    finally:
        lab.stop("portal-tls-desk")
        remove_account(gw, "tlsdesk", actor="test", now=time.time())
