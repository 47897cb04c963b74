"""Logins, sessions, CSRF, lock-out, audit: the JSON API and the login page, on a real app and database."""

from __future__ import annotations

import datetime as dt
import logging
import re
import sqlite3

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from station.storage.models import utc_now
from tests.webui.helpers import PASSWORD, FakeTrials, add_user, csrf, form_login, login, make_app

BASE = "http://localhost"


@pytest.fixture
def app_db(tmp_path):
    app, db = make_app(tmp_path, trials=FakeTrials())
    yield app, db
    db.close()


@pytest.fixture
def client(app_db):
    app, _ = app_db
    with TestClient(app, base_url=BASE) as c:
        yield c


def sql(db, query, *params):
    with sqlite3.connect(db.path) as raw:
        rows = raw.execute(query, params).fetchall()
        raw.commit()
    return rows


# -- which routes need a login ------------------------------------------------------------------------

#: (method, path) open to everybody
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/api/v1/health"), ("POST", "/api/v1/login")}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _routes():
    """Every (method, path) of the app, read from ``app.routes``: a new route is covered without editing this."""
    import tempfile
    from pathlib import Path

    app, db = make_app(Path(tempfile.mkdtemp(prefix="routes-")))
    try:
        found = []
        for route in iter_route_contexts(app.routes):  # the routes of the included routers too
            if not isinstance(route.original_route, APIRoute):
                continue  # the /static mount: public
            for method in sorted(set(route.methods) - {"HEAD"}):
                found.append((method, route.path))
        return found
    finally:
        db.close()


ROUTES = _routes()


def concrete(path: str) -> str:
    """A request path for a route path: every ``{param}`` filled with a plausible value."""
    def fill(m: re.Match) -> str:
        name = m.group(1).split(":")[0]
        return "P-001" if name == "code" else "1"
    return re.sub(r"\{([^}]+)\}", fill, path)


def test_the_route_list_is_the_real_one():
    assert ("GET", "/api/v1/status") in ROUTES and ("POST", "/api/v1/patients") in ROUTES
    assert ("GET", "/api/v1/export/scores.csv") in ROUTES and ("GET", "/") in ROUTES
    assert len(ROUTES) >= 20


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r not in PUBLIC])
def test_every_route_needs_a_login(client, method, path):
    r = client.request(method, concrete(path), follow_redirects=False)
    if path.startswith("/api/v1/"):
        assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("application/json")
        assert "login" in r.json()["detail"]
    else:
        assert r.status_code == 303, (method, path, r.status_code, r.text[:200])
        assert r.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(("method", "path"), sorted(PUBLIC))
def test_the_public_routes_are_open(client, method, path):
    r = client.request(method, path, follow_redirects=False)
    assert r.status_code not in (401, 303), (method, path, r.status_code)


def test_a_page_redirect_keeps_the_page_and_its_query(client):
    r = client.get("/api/docs?x=1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/api/docs%3Fx%3D1"


def test_static_files_and_health_need_no_login(client):
    assert client.get("/static/station.css").status_code == 200
    assert client.get("/api/v1/health").json() == {"status": "ok"}


@pytest.mark.parametrize(("method", "path"),
                         [r for r in ROUTES if r[0] in UNSAFE and r[1].startswith("/api/v1/") and r not in PUBLIC])
@pytest.mark.parametrize("header", [None, "wrong-token", ""])
def test_every_state_changing_api_route_wants_the_csrf_header(client, method, path, header):
    login(client)
    headers = {} if header is None else {"X-CSRF-Token": header}
    r = client.request(method, concrete(path), headers=headers, json={})
    assert r.status_code == 403, (method, path, r.status_code, r.text[:200])
    assert "X-CSRF-Token" in r.json()["detail"]


@pytest.mark.parametrize(("method", "path"),
                         [r for r in ROUTES if r[0] in UNSAFE and not r[1].startswith("/api/") and r not in PUBLIC])
def test_every_state_changing_page_route_wants_the_form_token(client, method, path):
    token = login(client)
    r = client.request(method, concrete(path), data={"csrf_token": "wrong"}, follow_redirects=False)
    assert r.status_code == 403, (method, path, r.status_code)
    r = client.request(method, concrete(path), data={"notes": "x"}, follow_redirects=False)
    assert r.status_code == 403, (method, path, r.status_code)
    assert token  # the right token is accepted: see test_html_logout


def test_the_csrf_token_of_another_session_is_refused(app_db):
    app, _ = app_db
    with TestClient(app, base_url=BASE) as a, TestClient(app, base_url=BASE) as b:
        token_a = login(a, "anna")
        login(b, "bert")
        assert b.post("/api/v1/patients", json={"code": "P-001"}, headers=csrf(token_a)).status_code == 403
        assert a.post("/api/v1/patients", json={"code": "P-001"}, headers=csrf(token_a)).status_code == 201


def test_the_openapi_schema_needs_a_login_and_declares_the_cookie_and_the_header(client):
    assert client.get("/api/v1/openapi.json").status_code == 401
    login(client)
    schema = client.get("/api/v1/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["session"] == {"type": "apiKey", "in": "cookie", "name": "bs_session",
                                  "description": schemes["session"]["description"]}
    assert schemes["csrf"]["in"] == "header" and schemes["csrf"]["name"] == "X-CSRF-Token"
    post = schema["paths"]["/api/v1/patients"]["post"]
    assert {"session": []} in post["security"] and {"csrf": []} in post["security"]
    assert "401" in post["responses"] and "403" in post["responses"]
    assert "security" not in schema["paths"]["/api/v1/health"]["get"]
    assert client.get("/api/docs").status_code == 200


# -- logging in and out ---------------------------------------------------------------------------------


def test_login_sets_a_safe_cookie_and_returns_the_csrf_token(client, app_db):
    _, db = app_db
    add_user(db)
    r = client.post("/api/v1/login", json={"username": "therapist", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"csrf_token", "username", "expires_at"} and len(body["csrf_token"]) >= 32
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("bs_session=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie
    assert client.get("/api/v1/me").json()["username"] == "therapist"
    # the database keeps the token's hash only
    token = client.cookies["bs_session"]
    hashes = [h for (h,) in sql(db, "SELECT token_hash FROM web_sessions")]
    assert len(hashes) == 1 and token not in hashes[0] and len(hashes[0]) == 64


def test_the_user_name_ignores_case(client, app_db):
    add_user(app_db[1], "Anna")
    assert client.post("/api/v1/login", json={"username": "anna", "password": PASSWORD}).status_code == 200


def test_cookies_are_secure_when_configured_for_https(tmp_path):
    app, db = make_app(tmp_path, https=True)
    try:
        add_user(db)
        with TestClient(app, base_url=BASE) as c:
            r = c.post("/api/v1/login", json={"username": "therapist", "password": PASSWORD})
        assert r.status_code == 200 and "Secure" in r.headers["set-cookie"]
        with TestClient(app, base_url="https://localhost") as c:  # over HTTPS: Secure anyway
            assert "Secure" in c.post("/api/v1/login", json={"username": "therapist",
                                                              "password": PASSWORD}).headers["set-cookie"]
    finally:
        db.close()


@pytest.mark.parametrize("body", [
    {"username": "therapist", "password": "wrong password"},
    {"username": "nobody", "password": PASSWORD},
    {"username": "", "password": ""},
])
def test_bad_credentials_are_401_with_one_message(client, app_db, body):
    add_user(app_db[1])
    r = client.post("/api/v1/login", json=body)
    assert r.status_code == 401 and r.json() == {"detail": "wrong user name or password"}
    assert "bs_session" not in client.cookies
    assert client.get("/api/v1/me").status_code == 401


def test_a_disabled_account_cannot_log_in_and_its_sessions_end(client, app_db):
    from station.storage.accounts import set_disabled

    _, db = app_db
    login(client)
    with db.sessions() as s:
        set_disabled(s, "therapist")
    assert client.get("/api/v1/me").status_code == 401
    r = client.post("/api/v1/login", json={"username": "therapist", "password": PASSWORD})
    assert r.status_code == 401 and r.json()["detail"] == "wrong user name or password"


def test_logout_ends_the_session_on_the_server(client):
    token = login(client)
    stolen = client.cookies["bs_session"]
    r = client.post("/api/v1/logout", headers=csrf(token))
    assert r.status_code == 200 and r.json() == {"logged_out": True}
    assert client.get("/api/v1/me").status_code == 401
    client.cookies.set("bs_session", stolen)  # the old cookie is worth nothing now
    assert client.get("/api/v1/me").status_code == 401


def test_sessions_survive_a_restart_of_the_app(app_db, tmp_path):
    from station.storage.db import open_database
    from webui.app import create_app

    app, db = app_db
    with TestClient(app, base_url=BASE) as c:
        login(c)
        cookie = c.cookies["bs_session"]
    again = create_app(app.state.settings, db=open_database(db.url))
    with TestClient(again, base_url=BASE) as c:
        c.cookies.set("bs_session", cookie)
        assert c.get("/api/v1/me").json()["username"] == "therapist"
    again.state.db.close()


def test_a_new_login_gets_a_new_session(client, app_db):
    login(client)
    first = client.cookies["bs_session"]
    login(client)
    assert client.cookies["bs_session"] != first
    assert len(sql(app_db[1], "SELECT id FROM web_sessions")) == 1  # the old one was ended


def test_an_idle_session_ends(client, app_db):
    _, db = app_db
    login(client)
    idle = (utc_now() - dt.timedelta(minutes=31)).replace(tzinfo=None)
    sql(db, "UPDATE web_sessions SET last_seen_at = ?", idle.isoformat(sep=" "))
    assert client.get("/api/v1/me").status_code == 401


def test_a_session_ends_at_its_maximum_age_however_active(client, app_db):
    _, db = app_db
    login(client)
    sql(db, "UPDATE web_sessions SET expires_at = ?",
        (utc_now() - dt.timedelta(seconds=1)).replace(tzinfo=None).isoformat(sep=" "))
    assert client.get("/api/v1/me").status_code == 401


def test_use_keeps_a_session_alive(client, app_db):
    _, db = app_db
    login(client)
    old = (utc_now() - dt.timedelta(minutes=20)).replace(tzinfo=None)
    sql(db, "UPDATE web_sessions SET last_seen_at = ?", old.isoformat(sep=" "))
    assert client.get("/api/v1/me").status_code == 200
    (seen,) = sql(db, "SELECT last_seen_at FROM web_sessions")[0]
    assert dt.datetime.fromisoformat(seen) > old + dt.timedelta(minutes=19)


# -- lock-out -------------------------------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_account_for_15_minutes(client, app_db, monkeypatch):
    _, db = app_db
    add_user(db)
    for _ in range(5):
        assert client.post("/api/v1/login", json={"username": "therapist", "password": "nope nope"}).status_code == 401
    r = client.post("/api/v1/login", json={"username": "therapist", "password": PASSWORD})
    assert r.status_code == 429 and "too many failed logins" in r.json()["detail"]
    assert 14 * 60 <= int(r.headers["retry-after"]) <= 15 * 60
    # 15 minutes later the right password works again (the lock-out is per name and address, in memory)
    later = utc_now() + dt.timedelta(minutes=15, seconds=1)
    monkeypatch.setattr("station.storage.accounts.utc_now", lambda: later)
    monkeypatch.setattr("webui.auth.utc_now", lambda: later)
    assert client.post("/api/v1/login", json={"username": "therapist", "password": PASSWORD}).status_code == 200


def test_a_good_login_resets_the_failure_count(client, app_db):
    add_user(app_db[1])
    for _ in range(4):
        client.post("/api/v1/login", json={"username": "therapist", "password": "nope nope"})
    login(client)
    for _ in range(4):
        client.post("/api/v1/login", json={"username": "therapist", "password": "nope nope"})
    assert client.post("/api/v1/login", json={"username": "therapist", "password": PASSWORD}).status_code == 200


def test_unknown_user_names_lock_like_real_ones(client):
    for _ in range(5):
        assert client.post("/api/v1/login", json={"username": "ghost", "password": "x" * 9}).status_code == 401
    assert client.post("/api/v1/login", json={"username": "ghost", "password": "x" * 9}).status_code == 429


def test_one_client_address_is_locked_out_after_ten_failures(client, app_db):
    add_user(app_db[1])
    for i in range(10):  # two failures each for five names: no account reaches its own limit
        assert client.post("/api/v1/login", json={"username": f"user{i // 2}", "password": "x" * 9}).status_code == 401
    r = client.post("/api/v1/login", json={"username": "therapist", "password": PASSWORD})
    assert r.status_code == 429 and "Retry-After" in r.headers
    actions = sql(app_db[1], "SELECT action, detail, client FROM audit_log WHERE action = 'login_refused'")
    assert actions == [("login_refused", "client address locked out", "testclient")]


def test_the_lockout_limits_come_from_the_settings(tmp_path):
    app, db = make_app(tmp_path, login_max_failures=2, login_lockout_minutes=1)
    try:
        add_user(db)
        with TestClient(app, base_url=BASE) as c:
            for _ in range(2):
                c.post("/api/v1/login", json={"username": "therapist", "password": "nope nope"})
            r = c.post("/api/v1/login", json={"username": "therapist", "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) <= 60
    finally:
        db.close()


# -- the audit log, and no password anywhere ----------------------------------------------------------


def test_logins_logouts_and_exports_are_audited(client, app_db):
    _, db = app_db
    add_user(db)
    client.post("/api/v1/login", json={"username": "therapist", "password": "not it at all"})
    token = login(client)
    client.get("/api/v1/export/scores.csv")
    client.post("/api/v1/logout", headers=csrf(token))
    rows = sql(db, "SELECT username, client, action, detail, at FROM audit_log ORDER BY id")
    assert [(u, c, a) for u, c, a, _, _ in rows] == [
        ("therapist", "cli", "user_add"), ("therapist", "testclient", "login_failed"),
        ("therapist", "testclient", "login"), ("therapist", "testclient", "export"),
        ("therapist", "testclient", "logout")]
    assert rows[1][3].startswith("wrong password (1 of 5)") and "scores.csv" in rows[3][3]
    assert all(at for *_, at in rows)


def test_passwords_are_never_logged_nor_stored_in_clear(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "Pa55-unique-s3cret-for-this-test"
    app, db = make_app(tmp_path)
    try:
        with TestClient(app, base_url=BASE) as c:
            login(c, "anna", secret)
            c.post("/api/v1/login", json={"username": "anna", "password": secret + "x"})
            c.post("/api/v1/login", json={"username": secret, "password": secret})  # typed in the wrong field
            r = c.post("/api/v1/login", json={"username": "anna", "password": secret * 100})  # too long: 422
            assert r.status_code == 422 and secret not in r.text
            form_login(c, "anna", secret, create=False)
    finally:
        db.close()
    assert secret not in caplog.text
    stored = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("station.db*"))
    assert secret.encode() not in stored
    (hash_,) = sql(db, "SELECT password_hash FROM users WHERE username = 'anna'")[0]
    assert hash_.startswith("$argon2id$")


def test_malformed_login_bodies_are_4xx(client):
    assert client.post("/api/v1/login", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 422
    assert client.post("/api/v1/login", json=["therapist"]).status_code == 422
    assert client.post("/api/v1/login", json={"username": 1, "password": None}).status_code == 422
    # a cross-site form cannot send JSON: a form-encoded or text body is refused
    assert client.post("/api/v1/login", data={"username": "therapist", "password": PASSWORD}).status_code == 422
    assert client.post("/api/v1/login", content=b'{"username": "therapist", "password": "x"}',
                       headers={"content-type": "text/plain"}).status_code == 422


# -- the login page -------------------------------------------------------------------------------------


def test_the_login_page(client):
    r = client.get("/login?next=/patients")
    assert r.status_code == 200 and 'name="csrf_token"' in r.text and 'value="/patients"' in r.text
    assert 'type="password"' in r.text and "bs_login_csrf" in r.headers["set-cookie"]


def test_form_login_goes_to_the_page_asked_for(client):
    r = form_login(client, next="/patients?q=P")
    assert r.status_code == 303 and r.headers["location"] == "/patients?q=P"
    assert "HttpOnly" in r.headers["set-cookie"]
    assert client.get("/api/v1/me").status_code == 200
    # logged in, the login page sends you on
    assert client.get("/login?next=/live", follow_redirects=False).headers["location"] == "/live"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x",
                                    "/login", ""])
def test_form_login_never_redirects_off_the_site(client, target):
    r = form_login(client, next=target)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_form_login_wrong_password_shows_the_page_again(client, app_db):
    add_user(app_db[1])
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/login", data={"username": "therapist", "password": "wrong one", "csrf_token": token,
                                    "next": "/"}, follow_redirects=False)
    assert r.status_code == 401 and "Wrong user name or password" in r.text and 'value="therapist"' in r.text
    assert "bs_session" not in client.cookies


def test_form_login_without_its_token_is_refused(client, app_db):
    add_user(app_db[1])
    r = client.post("/login", data={"username": "therapist", "password": PASSWORD, "csrf_token": "forged"},
                    follow_redirects=False)
    assert r.status_code == 403 and "bs_session" not in client.cookies


def test_html_logout(client):
    form_login(client)
    page = client.get("/api/docs")
    assert page.status_code == 200
    token = client.get("/api/v1/me").json()["csrf_token"]
    assert client.post("/logout", data={"csrf_token": "wrong"}, follow_redirects=False).status_code == 403
    r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/api/v1/me").status_code == 401
