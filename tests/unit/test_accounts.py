"""Librarian accounts and desk logins on a real Redis."""

from __future__ import annotations

import pytest

from gateway.model import audit, keys
from gateway.model.accounts import (
    AccountError,
    authenticate,
    change_role,
    create_account,
    list_accounts,
    login_account,
    open_login,
    remove_account,
    set_password,
)

NOW = 1_800_000_000.0


def test_passwords_are_argon2_hashes_and_checked(r):
    create_account(r, "siti", "rahasia-siti", "librarian", actor="cli:root", now=NOW)
    stored = r.hget(keys.account("siti"), "hash")
    assert stored.startswith("$argon2id$") and "rahasia" not in stored
    assert authenticate(r, "siti", "rahasia-siti").role == "librarian"
    assert authenticate(r, "siti", "wrong-password") is None
    assert authenticate(r, "nobody", "rahasia-siti") is None
    assert authenticate(r, "../x", "whatever") is None
    assert audit.recent(r)[0].details == {"account": "siti", "role": "librarian"}


@pytest.mark.parametrize(
    ("name", "password", "role"),
    [("Siti", "rahasia-siti", "librarian"), ("s", "rahasia-siti", "librarian"),
     ("siti", "short", "librarian"), ("perpustakaan", "Perpustakaan", "librarian"),
     ("siti", "rahasia-siti", "root"), ("a b", "rahasia-siti", "admin"), ("siti", "x" * 300, "admin")],
)  # fmt: skip
def test_bad_values_create_nothing(r, name, password, role):
    with pytest.raises(AccountError):
        create_account(r, name, password, role, actor="cli:root", now=NOW)
    assert list_accounts(r) == []


def test_names_are_unique(r):
    create_account(r, "siti", "rahasia-siti", "admin", actor="cli:root", now=NOW)
    with pytest.raises(AccountError, match="already"):
        create_account(r, "siti", "another-one", "librarian", actor="cli:root", now=NOW)


def test_the_last_admin_stays(r):
    create_account(r, "admin", "rahasia-admin", "admin", actor="cli:root", now=NOW)
    create_account(r, "siti", "rahasia-siti", "librarian", actor="admin", now=NOW)
    with pytest.raises(AccountError, match="last admin"):
        remove_account(r, "admin", actor="admin", now=NOW)
    with pytest.raises(AccountError, match="last admin"):
        change_role(r, "admin", "librarian", actor="admin", now=NOW)
    change_role(r, "siti", "admin", actor="admin", now=NOW)
    remove_account(r, "admin", actor="siti", now=NOW)
    assert [a.name for a in list_accounts(r)] == ["siti"]


def test_logins_expire_and_end_with_a_password_change(r):
    account = create_account(r, "siti", "rahasia-siti", "librarian", actor="cli:root", now=NOW)
    token = open_login(r, account, lifetime=3600, now=NOW)
    assert login_account(r, token, now=NOW + 10).account.name == "siti"
    assert login_account(r, token, now=NOW + 3600) is None, "expired"
    assert 0 < r.ttl(keys.desk_session(token)) <= 3600
    assert login_account(r, "forged", now=NOW) is None and login_account(r, "x" * 500, now=NOW) is None
    set_password(r, "siti", "baru-rahasia", actor="siti", now=NOW + 20)
    assert login_account(r, token, now=NOW + 30) is None
    assert authenticate(r, "siti", "baru-rahasia") is not None
    token = open_login(r, account, lifetime=3600, now=NOW + 40)
    remove_account(r, "siti", actor="admin", now=NOW + 50)
    assert login_account(r, token, now=NOW + 60) is None
    with pytest.raises(AccountError):
        set_password(r, "siti", "whatever-123", actor="admin", now=NOW + 70)
    assert not r.exists(keys.account("siti"))
