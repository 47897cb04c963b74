"""`balance-station user add|list|passwd|disable|enable`: the accounts of the web page, made on the station."""

from __future__ import annotations

import io
import sqlite3

import pytest
from fastapi.testclient import TestClient

from station.commands.cli import main
from tests.webui.helpers import make_app

SECRET = "a-Secret-that-is-long-enough"


def run(capsys, monkeypatch, data_dir, *args, stdin=None, tty_answers=None):
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    if tty_answers is not None:
        answers = iter(tty_answers)
        fake = io.StringIO("")
        fake.isatty = lambda: True  # type: ignore[method-assign]
        monkeypatch.setattr("sys.stdin", fake)
        monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    code = main(["user", *args, "--data-dir", str(data_dir)])
    out, err = capsys.readouterr()
    return code, out, err


def users(data_dir):
    with sqlite3.connect(data_dir / "station.db") as raw:
        return raw.execute("SELECT username, password_hash, disabled FROM users ORDER BY id").fetchall()


def test_add_with_password_stdin_then_log_in(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    code, out, err = run(capsys, monkeypatch, data, "add", "anna", "--password-stdin", stdin=SECRET + "\n")
    assert code == 0 and "user anna created" in out and err == ""
    assert SECRET not in out + err
    ((name, hash_, disabled),) = users(data)
    assert name == "anna" and hash_.startswith("$argon2id$") and SECRET not in hash_ and disabled == 0
    app, db = make_app(tmp_path)
    try:
        with TestClient(app, base_url="http://localhost") as c:
            assert c.post("/api/v1/login", json={"username": "anna", "password": SECRET}).status_code == 200
    finally:
        db.close()


def test_add_prompts_twice(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    code, out, _ = run(capsys, monkeypatch, data, "add", "bert", tty_answers=[SECRET, SECRET])
    assert code == 0 and [u[0] for u in users(data)] == ["bert"]
    code, _, err = run(capsys, monkeypatch, data, "add", "carl", tty_answers=[SECRET, SECRET + "x"])
    assert code == 2 and "the two passwords differ" in err and SECRET not in err
    assert [u[0] for u in users(data)] == ["bert"]


def test_without_a_terminal_it_asks_for_password_stdin(tmp_path, capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, tmp_path / "data", "add", "anna", stdin="")
    assert code == 2 and "--password-stdin" in err


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (("add", "anna", "--password-stdin"), "short\n", "too short: at least 8 characters"),
    (("add", "anna", "--password-stdin"), "\n", "no password on standard input"),
    (("add", "anna smith", "--password-stdin"), SECRET + "\n", "may hold only letters"),
    (("passwd", "nobody", "--password-stdin"), SECRET + "\n", "no user 'nobody'"),
    (("disable", "nobody"), None, "no user 'nobody'"),
])
def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch, args, stdin, message):
    code, _, err = run(capsys, monkeypatch, tmp_path / "data", *args, stdin=stdin)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_taken_name_is_refused(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    run(capsys, monkeypatch, data, "add", "anna", "--password-stdin", stdin=SECRET + "\n")
    code, _, err = run(capsys, monkeypatch, data, "add", "ANNA", "--password-stdin", stdin=SECRET + "\n")
    assert code == 2 and "already exists" in err


def test_list_passwd_disable_enable(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    code, out, _ = run(capsys, monkeypatch, data, "list")
    assert code == 0 and "no accounts yet" in out
    run(capsys, monkeypatch, data, "add", "anna", "--password-stdin", stdin=SECRET + "\n")
    old_hash = users(data)[0][1]
    code, out, _ = run(capsys, monkeypatch, data, "passwd", "anna", "--password-stdin", stdin="another password\n")
    assert code == 0 and users(data)[0][1] != old_hash
    code, out, _ = run(capsys, monkeypatch, data, "disable", "anna")
    assert code == 0 and users(data)[0][2] == 1
    code, out, _ = run(capsys, monkeypatch, data, "list")
    assert "anna" in out and "disabled" in out
    run(capsys, monkeypatch, data, "enable", "anna")
    assert users(data)[0][2] == 0
    with sqlite3.connect(data / "station.db") as raw:
        actions = [a for (a,) in raw.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["user_add", "user_passwd", "user_disable", "user_enable"]


def test_passwd_ends_the_web_sessions(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    run(capsys, monkeypatch, data, "add", "anna", "--password-stdin", stdin=SECRET + "\n")
    app, db = make_app(tmp_path)
    try:
        with TestClient(app, base_url="http://localhost") as c:
            c.post("/api/v1/login", json={"username": "anna", "password": SECRET})
            assert c.get("/api/v1/me").status_code == 200
            run(capsys, monkeypatch, data, "passwd", "anna", "--password-stdin", stdin="another password\n")
            assert c.get("/api/v1/me").status_code == 401
    finally:
        db.close()
