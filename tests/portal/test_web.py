"""Shared plumbing: language choice, security headers, error pages without tracebacks."""


def test_default_language_is_indonesian(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert '<html lang="id">' in page and "Halaman ini tidak ada." in page


def test_accept_language_and_lang_parameter(client):
    page = client.get("/no-such-page", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert "This page does not exist." in page
    response = client.get("/no-such-page?lang=en")
    assert "lang=en" in response.headers.get("Set-Cookie", "")
    # remembered by the cookie afterwards
    assert "This page does not exist." in client.get("/no-such-page").get_data(as_text=True)


def test_security_headers(client):
    headers = client.get("/healthz").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in headers["Content-Security-Policy"]


def test_wrong_method_and_huge_body_are_plain_4xx(client):
    assert client.post("/healthz").status_code in (400, 405)
    response = client.post("/healthz", data="x" * 100_000)
    assert response.status_code in (400, 405, 413)
    assert "Traceback" not in response.get_data(as_text=True)
