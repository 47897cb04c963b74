"""A wrong link in the browser gets a page with a way back (404, 409, 500); the API keeps its JSON."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from station.storage.patients import create_patient
from tests.webui.helpers import close_app, login, make_app
from tests.webui.test_pages import FakeController, csrf_of

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def app(tmp_path):
    controller = FakeController()
    app, db = make_app(tmp_path, live=object(), trials=controller)
    with db.sessions() as s:
        create_patient(s, "P-001")
    yield app
    close_app(app)


def _page(r) -> str:
    assert r.headers["content-type"].startswith("text/html"), r.headers["content-type"]
    assert "<!doctype html>" in r.text.lower()
    return r.text


def _back(html: str) -> str:
    m = re.search(r'<a class="button" id="error-back" href="([^"]+)">([^<]+)</a>', html)
    assert m, "no way back on the error page"
    return m.group(1)


@pytest.mark.parametrize(("path", "back", "says"), [
    ("/patients/NOPE", "/patients", "NOPE"),
    ("/trials/9999", "/patients", "9999"),
    ("/no-such-page", "/", "There is no page at /no-such-page."),
])
def test_a_browser_gets_a_404_page_with_a_way_back(app, path, back, says, artifacts):
    with TestClient(app, base_url="http://localhost") as c:
        login(c)
        r = c.get(path, headers=BROWSER)
    assert r.status_code == 404
    html = _page(r)
    assert "Not found" in html and says in html
    assert _back(html) == back
    assert '{"detail"' not in html
    (artifacts / f"web-error-404{path.replace('/', '-')}.html").write_text(html, encoding="utf-8")


def test_the_api_and_scripts_keep_json(app):
    with TestClient(app, base_url="http://localhost") as c:
        login(c)
        r = c.get("/api/v1/patients/NOPE-1", headers=BROWSER)  # the API is JSON even for a browser
        assert r.status_code == 404 and r.headers["content-type"] == "application/json"
        assert "detail" in r.json()
        r = c.get("/patients/NOPE", headers={"Accept": "application/json"})
        assert r.status_code == 404 and r.json()["detail"]
        r = c.get("/patients/NOPE")  # no Accept (curl, tests): JSON as before
        assert r.status_code == 404 and r.headers["content-type"] == "application/json"


def test_a_form_post_during_a_running_test_gets_a_409_page_back_to_the_live_page(app):
    with TestClient(app, base_url="http://localhost") as c:
        login(c)
        token = csrf_of(c.get("/patients").text)
        form = {"csrf_token": token, "patient": "P-001", "protocol": "single-leg", "stance_side": "left"}
        assert c.post("/live/start", data=form, follow_redirects=False).status_code == 303
        r = c.post("/live/start", data=form, headers=BROWSER, follow_redirects=False)
    assert r.status_code == 409
    html = _page(r)
    assert "Not possible right now" in html and "Trial 7 is running" in html
    assert _back(html) == "/live"


def test_an_unexpected_error_is_a_500_page_for_a_browser_and_json_for_the_api(app):
    @app.get("/patients-boom")
    def boom():
        raise RuntimeError("a bug")

    @app.get("/api/v1/boom")
    def api_boom():
        raise RuntimeError("a bug")

    with TestClient(app, base_url="http://localhost", raise_server_exceptions=False) as c:
        login(c)
        r = c.get("/patients-boom", headers=BROWSER)
        assert r.status_code == 500
        html = _page(r)
        assert "Something went wrong" in html and "a bug" not in html  # no internals shown
        assert _back(html) == "/patients"
        r = c.get("/api/v1/boom", headers=BROWSER)
        assert r.status_code == 500 and r.json() == {"detail": "an unexpected error stopped this request"}
