"""Fuzzed input never produces a 500 or a traceback: odd fields, encodings, methods, sizes."""

from __future__ import annotations

import random

import pytest

from .conftest import fresh_token

PATHS = ["/", "/login", "/free", "/logout", "/survey", "/status", "/online", "/api/captive", "/branding/x"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data; boundary=zz",
    "multipart/form-data",
    "application/json",
    "text/plain",
    "",
]
ALPHABETS = [
    "ABCDEFGHJKMNPQRSTVWXYZ0123456789-  ",
    "abcdefghijklmnopqrstuvwxyz",
    "%&=+;?#\\/\"'<>{}[]|`~^",
    "\x00\x01\x1b\x7f\u200b\ufeff\u202e",
    "äöüßéñ日本語العربيةКириллица🙂𝔘",
]


def _text(rng: random.Random) -> str:
    size = rng.choice([0, 1, 8, 9, 20, 64, 65, 300, 5000])
    alphabet = "".join(rng.sample(ALPHABETS, rng.randint(1, len(ALPHABETS))))
    return "".join(rng.choice(alphabet) for _ in range(size))


def _body(rng: random.Random, token: str) -> bytes | dict:
    kind = rng.randrange(4)
    if kind == 0:
        fields = {
            rng.choice(["code", "token", "purpose", "lang", "x"]): _text(rng)
            for _ in range(rng.randint(0, 4))
        }
        if rng.random() < 0.5:
            fields["token"] = token
        return fields
    if kind == 1:
        return rng.randbytes(rng.choice([0, 10, 1000, 15000]))
    if kind == 2:  # broken percent-encoding and repeated keys
        return (
            b"code=%ZZ%%%c3%28&code="
            + _text(rng).encode("utf-8", "surrogatepass")
            + b"&token="
            + token.encode()
        )
    return b"x" * rng.choice([16 * 1024 + 1, 100_000])


@pytest.mark.parametrize("seed", range(8))
def test_fuzzed_requests_never_fail_with_500(phone, stranger, gateway, seed):
    rng = random.Random(seed)
    token = fresh_token(phone)
    for _ in range(60):
        client = phone if rng.random() < 0.85 else stranger
        path = rng.choice(PATHS)
        query = {rng.choice(["lang", "code", "bye", "q"]): _text(rng)[:200] for _ in range(rng.randint(0, 2))}
        method = rng.choice(METHODS)
        body = _body(rng, token) if method in ("POST", "PUT", "PATCH") else None
        kwargs = {"method": method, "query_string": query}
        if isinstance(body, dict):
            kwargs["data"] = body
        elif body is not None:
            kwargs["data"] = body
            kwargs["content_type"] = rng.choice(CONTENT_TYPES)
        response = client.open(path, **kwargs)
        text = response.get_data(as_text=True)
        assert response.status_code < 500, (method, path, query, response.status_code, text[:300])
        assert "Traceback" not in text


def test_every_visitor_error_page_is_plain_and_translated(phone):
    response = phone.post("/login", data="x" * 100_000, content_type="text/plain")
    assert response.status_code == 413
    assert "Data yang dikirim terlalu besar." in response.get_data(as_text=True)
    response = phone.delete("/login")
    assert response.status_code == 405 and "tidak dapat digunakan dengan cara itu" in response.get_data(
        as_text=True
    )
