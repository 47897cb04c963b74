"""Findings 3, 4 and 7: one lock-out rule for every name; no lock-out from elsewhere; no write lock during argon2."""

from __future__ import annotations

import threading
import time

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

import station.storage.accounts
from tests.webui.helpers import PASSWORD, add_user, close_app, make_app

BASE = "http://localhost"


class _From:
    """A TestClient whose requests come from a given client address."""

    def __init__(self, app, address: str) -> None:
        self.client = TestClient(app, base_url=BASE, client=(address, 50000))

    def login(self, username: str, password: str):
        return self.client.post("/api/v1/login", json={"username": username, "password": password})


@pytest.fixture
def app(tmp_path):
    app, db = make_app(tmp_path)
    add_user(db)
    yield app
    close_app(app)


@pytest.fixture
def clock(monkeypatch):
    """A station clock the test moves on (``clock.tick(s)``)."""
    import datetime as dt

    class Clock:
        now = station.storage.accounts.utc_now()

        def tick(self, seconds: float) -> None:
            self.now += dt.timedelta(seconds=seconds)

    c = Clock()
    monkeypatch.setattr(station.storage.accounts, "utc_now", lambda: c.now)
    monkeypatch.setattr("webui.auth.utc_now", lambda: c.now)
    return c


def test_an_unknown_name_and_a_real_account_get_the_same_lock_out_answer(app, clock):
    outsider = _From(app, "10.0.0.66")
    answers = {}
    for name in ("therapist", "nobody-here"):
        statuses = []
        for _ in range(5):  # a wrong password every 7 s, as a person (or a script) would try
            statuses.append(outsider.login(name, "wrong password").status_code)
            clock.tick(7)
        assert statuses == [401] * 5
        r = outsider.login(name, "wrong password")
        answers[name] = (r.status_code, r.headers.get("retry-after"), r.json()["detail"])
    print(f"\nlock-out answers: {answers}")
    assert answers["therapist"] == answers["nobody-here"]
    assert answers["therapist"][0] == 429


def test_an_outsider_cannot_lock_the_therapist_out(app):
    therapist = _From(app, "10.0.0.5")
    assert therapist.login("therapist", PASSWORD).status_code == 200  # she has logged in from her desk before
    outsider = _From(app, "10.0.0.66")
    for _ in range(3):  # at most 3 rounds of 5 wrong passwords (each round locks only the outsider's pair)
        for _ in range(5):
            outsider.login("therapist", "wrong password")
    assert outsider.login("therapist", PASSWORD).status_code == 429  # the outsider's own pair is locked
    assert therapist.login("therapist", PASSWORD).status_code == 200


def test_failures_from_one_shared_address_do_not_lock_out_a_therapist_known_there(app):
    desk = _From(app, "10.0.0.5")
    assert desk.login("therapist", PASSWORD).status_code == 200
    for i in range(12):  # a colleague mistypes other names from the same address
        desk.login(f"user{i // 2}", "wrong password")
    assert desk.login("therapist", PASSWORD).status_code == 200
    assert desk.login("someone-new", "whatever pass").status_code == 429  # the address stays limited for others


def test_refused_attempts_do_not_extend_the_lock_out(app, monkeypatch):
    outsider = _From(app, "10.0.0.66")
    for _ in range(5):
        outsider.login("therapist", "wrong password")
    first = int(outsider.login("therapist", "wrong password").headers["retry-after"])
    accounts = station.storage.accounts
    later = accounts.utc_now() + accounts.LoginPolicy().lockout - __import__("datetime").timedelta(seconds=5)
    monkeypatch.setattr(station.storage.accounts, "utc_now", lambda: later)
    monkeypatch.setattr("webui.auth.utc_now", lambda: later)
    r = outsider.login("therapist", "wrong password")
    assert r.status_code == 429 and int(r.headers["retry-after"]) <= 10 < first


def test_a_login_holds_no_write_lock_while_the_password_is_checked(app, monkeypatch):
    """While argon2 runs for one login, another connection can write at once."""
    import sqlite3

    monkeypatch.setattr(station.storage.accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024,
                                                                           parallelism=1))
    real_verify = station.storage.accounts.verify_password
    in_check = threading.Event()
    release = threading.Event()

    def slow_verify(password_hash, password):
        in_check.set()
        release.wait(5)
        return real_verify(password_hash, password)

    monkeypatch.setattr(station.storage.accounts, "verify_password", slow_verify)
    db = app.state.db
    result = {}

    def log_in():
        with TestClient(app, base_url=BASE) as c:
            result["status"] = c.post("/api/v1/login", json={"username": "therapist", "password": PASSWORD}).status_code

    t = threading.Thread(target=log_in, daemon=True)
    t.start()
    try:
        assert in_check.wait(5)
        writer = sqlite3.connect(db.path, timeout=0.2, isolation_level=None)
        t0 = time.monotonic()
        try:
            writer.execute("BEGIN IMMEDIATE")  # the trial writer taking the write lock
            writer.execute("ROLLBACK")
            waited_s = time.monotonic() - t0
        except sqlite3.OperationalError as exc:
            waited_s = float("inf")
            print(f"\nwrite lock not available during the password check: {exc}")
        finally:
            writer.close()
    finally:
        release.set()
        t.join(10)
    assert waited_s < 0.1
    assert result.get("status") == 200


def test_a_login_flood_gets_no_5xx(app, monkeypatch):
    """20 logins at once (right and wrong) while a writer commits: no 500 'database is locked'.

    The password check is made to take 0.2 s (argon2 on a Pi) and the busy timeout 0.5 s: a login that
    held the write lock during its check would make the others time out.
    """
    import station.storage.db

    monkeypatch.setattr(station.storage.db, "BUSY_TIMEOUT_S", 0.5)
    real_verify = station.storage.accounts.verify_password

    def pi_speed_verify(password_hash, password):
        time.sleep(0.2)
        return real_verify(password_hash, password)

    monkeypatch.setattr(station.storage.accounts, "verify_password", pi_speed_verify)
    app2, db = make_app(app.state.settings.data_dir.parent / "flood")
    add_user(db)
    stop = threading.Event()

    def writer():
        from station.storage.accounts import audit

        n = 0
        while not stop.is_set() and n < 400:  # bounded
            try:
                with db.write() as session:
                    audit(session, "test_write", detail=str(n), commit=False)
            except Exception:  # noqa: BLE001 - the writer's own waits are not what is tested
                pass
            n += 1
            time.sleep(0.005)

    statuses = []
    lock = threading.Lock()

    def one(i: int):
        with TestClient(app2, base_url=BASE, client=(f"10.0.1.{i}", 5000)) as c:
            r = c.post("/api/v1/login", json={"username": "therapist", "password": PASSWORD if i % 2 else "bad pass!"})
            with lock:
                statuses.append(r.status_code)

    w = threading.Thread(target=writer, daemon=True)
    w.start()
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(20)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        stop.set()
        w.join(10)
        close_app(app2)
    print(f"\nlogin flood: {sorted(statuses)}")
    assert len(statuses) == 20 and all(s < 500 for s in statuses), statuses


@pytest.mark.parametrize("how", ["enable", "passwd"])
def test_user_enable_or_passwd_unlocks_at_once_even_from_another_process(app, how):
    from station.storage.accounts import set_disabled, set_password

    desk = _From(app, "10.0.0.5")
    for _ in range(5):
        desk.login("therapist", "wrong password")
    assert desk.login("therapist", PASSWORD).status_code == 429
    time.sleep(0.01)
    with app.state.db.write() as session:  # what `balance-station user enable|passwd` does, in its own process
        if how == "enable":
            set_disabled(session, "therapist", False)
        else:
            set_password(session, "therapist", PASSWORD)
    assert desk.login("therapist", PASSWORD).status_code == 200
