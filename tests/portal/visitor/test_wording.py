"""Every visitor page in Bahasa Indonesia uses the visitor's own words, never the desk's.

The visitor portal and the librarian desk have separate catalogs (``messages`` and ``desk``);
a desk word for a librarian's job (``Keluarkan``: throw a device out) must never reach a
visitor's page, and one English text never gets two different translations.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from gateway.model.sessions import session_for_mac
from gateway.model.vouchers import issue_batch

from .conftest import NOW, PHONE_MAC, fresh_token, login

TRANSLATIONS = Path(__file__).resolve().parents[3] / "portal" / "translations"
# words that belong to the desk (a librarian acting on someone else's device)
DESK_ONLY = ("Keluarkan", "Sisa kuota")


def _text(page: str) -> str:
    """Return what the visitor reads: the page without its tags and inline style."""
    page = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def _visitor_pages(phone, r, gateway, app, clock) -> dict[str, str]:
    """Walk every visitor page in ``id`` and return their texts by name."""
    plan = app.config["HOTSPOT"].plans["harian"]
    voucher = issue_batch(r, plan, 1, now=NOW - 3600, issued_by="test")[0]
    pages = {"splash": phone.get("/?lang=id").get_data(as_text=True)}
    pages["bye"] = phone.get("/?bye=1&lang=id").get_data(as_text=True)
    pages["bad code"] = phone.post("/login?lang=id", data={"code": "XXXX", "token": fresh_token(phone)})
    pages["bad code"] = pages["bad code"].get_data(as_text=True)
    pages["not found"] = phone.get("/tidak-ada?lang=id", headers={"Accept": "text/html"})
    pages["not found"] = pages["not found"].get_data(as_text=True)
    gateway.silent = True
    pages["wait"] = login(phone, voucher.code).get_data(as_text=True)
    gateway.silent = False
    pages["online"] = phone.get("/online?lang=id").get_data(as_text=True)
    pages["status"] = phone.get("/status?lang=id").get_data(as_text=True)
    assert session_for_mac(r, PHONE_MAC) is not None
    return {name: _text(page) for name, page in pages.items()}


def test_every_visitor_page_speaks_the_visitors_words(phone, r, gateway, app, clock):
    pages = _visitor_pages(phone, r, gateway, app, clock)
    for name, text in pages.items():
        for word in DESK_ONLY:
            assert word not in text, f"desk wording {word!r} on the visitor's {name} page"
    assert re.search(r"\bKeluar\b", pages["status"]), "the logout button says Keluar"
    assert "Sisa data" in pages["status"]
    assert "Sambungkan" in pages["splash"] and "Kode voucher" in pages["splash"]
    assert "Anda sudah terhubung" in pages["online"]
    assert "Halaman ini tidak ada" in pages["not found"]


def test_the_desk_keeps_its_own_words(client, r):
    """The desk still reads its catalog (the visitor's catalog does not hide it)."""
    page = client.get("/desk/login?lang=id").get_data(as_text=True)
    assert "Meja pustakawan" in page


def _catalog(lang: str, domain: str) -> dict[str, str]:
    with (TRANSLATIONS / lang / "LC_MESSAGES" / f"{domain}.po").open("rb") as f:
        return {
            (m.context, m.id if isinstance(m.id, str) else m.id[0]): m.string
            for m in read_po(f)
            if m.id and m.string
        }


@pytest.mark.parametrize("lang", ["id", "en"])
def test_no_text_has_two_translations_across_catalogs(lang):
    visitor, desk = _catalog(lang, "messages"), _catalog(lang, "desk")
    shared = visitor.keys() & desk.keys()
    differ = {key: (visitor[key], desk[key]) for key in shared if visitor[key] != desk[key]}
    assert differ == {}, "give the two meanings different texts (or a context)"
