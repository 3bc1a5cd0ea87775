"""Every visitor, desk and HQ page string is in the catalogs, translated to Indonesian, and compiled."""

from __future__ import annotations

import gettext
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "portal" / "translations"
DOMAINS = {"messages": ("babel.cfg", ["--ignore-dirs=desk .* _*"]), "desk": ("babel-desk.cfg", [])}
# domain -> (the package it is extracted from, its translations folder); the HQ page has its own
SOURCES = {"hq": ("hqweb", ROOT / "hqweb" / "translations")}
DOMAINS["hq"] = ("babel-hq.cfg", [])


def _folder(domain: str) -> Path:
    return SOURCES.get(domain, ("portal", TRANSLATIONS))[1]


def _catalog(path: Path):
    with path.open("rb") as f:
        return read_po(f)


@pytest.mark.parametrize("domain", DOMAINS)
def test_catalog_has_every_string_in_the_code(domain, tmp_path):
    cfg, extra = DOMAINS[domain]
    pot = tmp_path / f"{domain}.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", cfg, *extra,
         "--no-location", "-o", str(pot), SOURCES.get(domain, ("portal",))[0]],
        cwd=ROOT, check=True,
    )  # fmt: skip
    in_code = {m.id for m in _catalog(pot) if m.id}
    in_po = {m.id for m in _catalog(_folder(domain) / "id" / "LC_MESSAGES" / f"{domain}.po") if m.id}
    assert not in_code - in_po, f"run `make translations`: not in {domain}.po: {sorted(in_code - in_po)}"


@pytest.mark.parametrize("domain", DOMAINS)
def test_indonesian_is_complete_and_compiled(domain):
    po = _catalog(_folder(domain) / "id" / "LC_MESSAGES" / f"{domain}.po")
    untranslated = [m.id for m in po if m.id and (not m.string or m.fuzzy)]
    assert not untranslated, f"translate these in id/LC_MESSAGES/{domain}.po: {untranslated}"
    with (_folder(domain) / "id" / "LC_MESSAGES" / f"{domain}.mo").open("rb") as f:
        mo = gettext.GNUTranslations(f)
    for message in po:
        if not message.id:
            continue
        if isinstance(message.id, tuple):  # plural forms
            assert mo.ngettext(message.id[0], message.id[1], 1) == message.string[0]
        else:
            assert mo.gettext(message.id) == message.string, "run `make translations` to compile"
