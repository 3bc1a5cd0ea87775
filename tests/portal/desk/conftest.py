"""Desk test fixtures: two accounts (``admin``, ``siti``) and ``desk``, a client that reads CSRF
tokens from the pages like a browser."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from gateway.model.accounts import create_account

NOW = 1_800_000_000.0
PASSWORDS = {"admin": "rahasia-admin", "siti": "rahasia-siti"}
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_accounts(r) -> None:
    """Create ``admin`` (admin) and ``siti`` (librarian)."""
    create_account(r, "admin", PASSWORDS["admin"], "admin", actor="test", now=NOW)
    create_account(r, "siti", PASSWORDS["siti"], "librarian", actor="test", now=NOW)


class Desk:
    """Drive the desk through the Flask test client."""

    def __init__(self, client: FlaskClient):
        self.client = client

    def token(self, path: str = "/desk/login") -> str:
        page = self.client.get(path).get_data(as_text=True)
        match = _TOKEN.search(page)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def login(self, name: str, password: str | None = None, **extra):
        data = {"name": name, "password": PASSWORDS.get(name, "") if password is None else password}
        data.update(extra)
        return self.client.post("/desk/login", data={**data, "csrf_token": self.token()})

    def post(self, path: str, data: dict | None = None, *, token_from: str = "/desk/issue"):
        return self.client.post(path, data={**(data or {}), "csrf_token": self.token(token_from)})

    def text(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


@pytest.fixture
def desk(client, r) -> Desk:
    """A desk client (signed out) with the accounts ``admin`` and ``siti`` made."""
    make_accounts(r)
    return Desk(client)
