"""The splash page: co-branded, bilingual, light, self-contained, usable without JavaScript."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from .conftest import PHONE_IP

SPLASH_BUDGET = 50 * 1024


class _Refs(HTMLParser):
    """Collect every URL a page would fetch or navigate to, and any script."""

    def __init__(self):
        super().__init__()
        self.fetched: list[str] = []
        self.links: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts += 1
        for name in ("src", "srcset", "poster", "data"):
            if attrs.get(name):
                self.fetched.append(attrs[name])
        if tag == "link" and attrs.get("href"):
            self.fetched.append(attrs["href"])
        elif attrs.get("href"):
            self.links.append(attrs["href"])
        if attrs.get("action"):
            self.links.append(attrs["action"])
        if any(k.startswith("on") for k in attrs):
            self.scripts += 1


def refs(page: str) -> _Refs:
    parser = _Refs()
    parser.feed(page)
    parser.fetched += re.findall(r"url\(\s*['\"]?([^'\")]+)", page)
    parser.fetched += re.findall(r"@import\s+['\"]([^'\"]+)", page)
    return parser


def page_weight(client, path: str) -> int:
    """Return the bytes the page at ``path`` costs: the HTML and everything it fetches."""
    response = client.get(path)
    assert response.status_code == 200
    total = len(response.data)
    for url in refs(response.get_data(as_text=True)).fetched:
        if url.startswith("data:"):
            continue  # inline: already counted in the page's bytes
        assert url.startswith("/") and not url.startswith("//"), f"external request: {url}"
        with client.get(url) as sub:
            assert sub.status_code == 200, url
            total += len(sub.data)
    return total


def test_splash_in_indonesian_by_default(phone):
    response = phone.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="id">' in page
    assert "Perpustakaan Daerah Kabupaten Sukabumi" in page
    assert "Jl. Siliwangi No. 1, Sukabumi, Jawa Barat" in page
    assert "Senin–Jumat 08.00–16.00" in page, "opening hours in the visitor's language"
    for mark in ("Telkom Indonesia", "Coca-Cola Foundation Indonesia", "PerpuSeru"):
        assert f'aria-label="{mark}"' in page
    assert "Kode voucher" in page and "Sambungkan" in page
    assert "Ketentuan penggunaan" in page
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "how", [{"query_string": "lang=en"}, {"headers": {"Accept-Language": "en-GB,en;q=0.8"}}]
)
def test_splash_in_english(phone, how):
    page = phone.get("/", **how).get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Voucher code" in page and "Connect" in page and "Terms of use" in page
    assert "Mon–Fri 8:00–16:00" in page


def test_english_is_one_tap_away(phone):
    page = phone.get("/").get_data(as_text=True)
    assert 'href="?lang=en"' in page
    page = phone.get("/?lang=en").get_data(as_text=True)
    assert 'href="?lang=id"' in page


@pytest.mark.parametrize("lang", ["id", "en"])
def test_splash_is_light_and_fetches_nothing_from_elsewhere(phone, lang):
    weight = page_weight(phone, f"/?lang={lang}")
    assert weight < SPLASH_BUDGET, f"splash weighs {weight} bytes"
    found = refs(phone.get(f"/?lang={lang}").get_data(as_text=True))
    assert found.scripts == 0, "the splash must work with JavaScript off: it has none"
    for link in found.links:
        assert link.startswith(("/", "?", "#")), f"link off the portal: {link}"


def test_splash_is_readable_on_a_small_phone(phone):
    page = phone.get("/").get_data(as_text=True)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert 'for="code"' in page and 'id="code"' in page, "the field has a label"
    assert "min-height: 52px" in page, "large tap targets"
    assert not re.search(r"width:\s*\d{3,}px", page), "no fixed widths wider than a phone"


def test_qr_code_link_fills_the_code_in(phone):
    page = phone.get("/?code=ABCD-EFGH").get_data(as_text=True)
    assert 'value="ABCD-EFGH"' in page
    page = phone.get("/?code=" + "<script>" * 20).get_data(as_text=True)
    assert "<script>" not in page


def test_configured_terms_replace_the_built_in_ones(app, phone):
    from dataclasses import replace

    config = app.config["HOTSPOT"]
    library = replace(config.library, terms={"id": "Dilarang main game daring.", "en": "No online games."})
    app.config["HOTSPOT"] = replace(config, library=library)
    assert "Dilarang main game daring." in phone.get("/").get_data(as_text=True)
    assert "No online games." in phone.get("/?lang=en").get_data(as_text=True)


def test_free_button_only_when_configured(app, phone):
    from dataclasses import replace

    assert "Gratis 30 menit" in phone.get("/").get_data(as_text=True)
    config = app.config["HOTSPOT"]
    app.config["HOTSPOT"] = replace(config, portal=replace(config.portal, free_plan=""))
    assert 'action="/free' not in phone.get("/").get_data(as_text=True)
    assert phone.post("/free", data={}).status_code == 404


def test_library_files_replace_the_drawn_marks(app, phone):
    folder = app.config["HOTSPOT"].library.branding_dir
    (folder / "telkom.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><circle r="5"/></svg>')
    (folder / "library.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    (folder / "ccfi.svg").write_text("<svg>" + " " * 40_000 + "</svg>")  # too big: ignored
    page = phone.get("/").get_data(as_text=True)
    assert '<img src="/branding/telkom.svg" alt="Telkom Indonesia">' in page
    assert 'aria-label="Telkom Indonesia"' not in page
    assert '<img src="/branding/library.png" alt="Perpustakaan Daerah Kabupaten Sukabumi">' in page
    assert 'aria-label="Coca-Cola Foundation Indonesia"' in page, "the drawn mark stays"
    with phone.get("/branding/telkom.svg") as svg:
        assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
        assert "default-src 'none'" in svg.headers["Content-Security-Policy"]
    with phone.get("/branding/library.png") as png:
        assert png.mimetype == "image/png" and png.data.startswith(b"\x89PNG")
    for bad in ("ccfi.svg", "other.svg", "telkom.gif", "..%2Fhotspot.toml", "telkom.png"):
        assert phone.get(f"/branding/{bad}").status_code == 404, bad


def test_status_and_online_pages_send_a_stranger_to_the_splash(phone, stranger):
    assert phone.get("/status").headers["Location"].startswith("/?lang=")
    assert phone.get("/online").headers["Location"].startswith("/?lang=")
    assert stranger.get("/").status_code == 200, "a client off the LAN still sees the splash"


def test_the_phone_fixture_comes_from_the_lan():
    assert PHONE_IP.startswith("10.42.0.")


@pytest.mark.parametrize(
    ("accept", "lang"),
    [("id-ID,id;q=0.9,en-US;q=0.8", "id"), ("en-ID,en;q=0.9", "en"), ("jv-ID,ms;q=0.8", "id"), ("", "id")],
)
def test_language_from_the_phones_settings(phone, accept, lang):
    page = phone.get("/", headers={"Accept-Language": accept} if accept else {}).get_data(as_text=True)
    assert f'<html lang="{lang}">' in page


def test_drawn_marks_are_neutral_text():
    """Until a library puts real artwork in ``branding_dir``, the marks are plain text in one
    neutral style: no shapes, script or colours that imitate a partner's logo."""
    import xml.etree.ElementTree as ET

    from portal import branding

    styles = set()
    for name in ("telkom", "ccfi", "perpuseru"):
        svg = ET.fromstring(str(branding.default_svg(name)))  # noqa: S314 - our own generated SVG
        tags = {el.tag.split("}")[1] for el in svg.iter()}
        assert tags == {"svg", "text"}, f"{name}: only text, no drawn shapes ({tags})"
        for text in svg.iter("{http://www.w3.org/2000/svg}text"):
            family = text.get("font-family").replace("sans-serif", "")
            assert "italic" not in text.get("font-style", "") and "serif" not in family
            styles.add((text.get("font-family"), text.get("fill")))
    assert len(styles) == 1 and styles.pop()[1] == "#333", "one neutral style for every mark"


def test_built_in_terms_say_who_records_what_for_how_long_and_why(app, phone):
    config = app.config["HOTSPOT"]
    text = re.sub(r"\s+", " ", phone.get("/?lang=id").get_data(as_text=True).split('id="terms-title"')[1])
    assert f"{config.library.name} mencatat setiap sesi" in text, "who records"
    assert "alamat perangkat Anda (MAC)" in text and "berapa banyak data" in text, "what"
    assert "Halaman yang Anda buka dan apa yang Anda ketik tidak dicatat" in text, "what not"
    assert f"disimpan selama {config.session_log.retention_days} hari" in text, "for how long"
    assert "agar Wi-Fi tetap adil dan aman" in text and "tanpa alamat perangkat" in text, "why, and who sees"
    english = phone.get("/?lang=en").get_data(as_text=True)
    assert f"kept for {config.session_log.retention_days} days" in english


def test_survey_answers_do_not_overlap(app):
    """Each answer is one clear purpose: no word shared between two answers ("Belajar" and
    "Tugas sekolah" overlapped: schoolwork is studying)."""
    from gateway.config.survey import default_survey
    from portal.survey_text import asked

    with app.test_request_context("/?lang=id"):
        [purpose] = asked(default_survey().questions[:1])
        labels = [label for _id, label in purpose.answers]
    assert "Tugas sekolah atau kuliah" in labels and "Belajar mandiri (kursus, keterampilan)" in labels
    small = {"atau", "dan", "di", "untuk"}
    words = [{w for w in re.findall(r"\w+", label.lower()) if w not in small} for label in labels]
    for i, a in enumerate(words):
        for b in words[i + 1 :]:
            assert not a & b, (a, b)


def test_the_code_is_posted_to_https_when_the_portal_has_a_certificate(hotspot_config, r, neighbours, clock):
    # issue 16, item 9: a splash fetched over plain HTTP must not send the code back in clear
    from dataclasses import replace
    from pathlib import Path

    from portal import create_app

    portal = replace(
        hotspot_config.portal,
        tls_cert=Path("/x/c.pem"),
        tls_key=Path("/x/k.pem"),
        url="https://10.42.0.1:8443",
    )
    app = create_app({"HOTSPOT": replace(hotspot_config, portal=portal), "TESTING": True,
                      "MAC_LOOKUP": neighbours.get, "CLOCK": clock})  # fmt: skip
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = PHONE_IP
    page = client.get("/", headers={"Host": "10.42.0.1:8080"}).get_data(as_text=True)
    assert 'action="https://10.42.0.1:8443/login?lang=id"' in page
    secure = client.get("/", base_url="https://10.42.0.1:8443").get_data(as_text=True)
    assert 'action="/login?lang=id"' in secure
