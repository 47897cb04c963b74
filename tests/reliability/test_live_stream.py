"""Finding 5: a live stream ends within seconds of its session's end (logout, disabled user); limit=0 is bounded."""

from __future__ import annotations

import http.client
import time

import pytest

from tests.reliability.served import Client, served_app
from tests.webui.helpers import FakeTrials


def _open_stream(port: int, cookie: str, query: str = "") -> tuple[http.client.HTTPConnection, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    conn.request("GET", "/live/stream" + query, headers={"Cookie": cookie})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("content-type", "").startswith("text/event-stream")
    return conn, r


def _read_until_end(r, *, timeout_s: float) -> tuple[float, list[bytes]]:
    """Read the stream until it ends (EOF): (when it ended, s after the call; its lines). Bounded by timeout_s."""
    t0 = time.monotonic()
    lines = []
    while time.monotonic() - t0 < timeout_s:
        try:
            line = r.readline()
        except (TimeoutError, OSError):
            break
        if not line:
            return time.monotonic() - t0, lines
        lines.append(line)
    return float("inf"), lines


@pytest.mark.parametrize("how", ["logout", "disable"])
def test_a_live_stream_ends_within_10_s_of_its_session(tmp_path, how):
    with served_app(tmp_path, trials=FakeTrials()) as (app, db, port):
        c = Client(port)
        assert c.login().status == 200
        conn, r = _open_stream(port, c.cookie)
        try:
            assert r.readline().startswith(b"retry:")
            assert r.readline() == b"\n"
            assert r.readline().startswith(b"data:")
            if how == "logout":
                assert c.post_json("/api/v1/logout", {}).status == 200
            else:
                from station.storage.accounts import set_disabled

                with db.write() as session:
                    set_disabled(session, "therapist", True)
            ended_s, lines = _read_until_end(r, timeout_s=12.0)
        finally:
            conn.close()
    print(f"\nstream ended {ended_s:.1f} s after the {how}")
    assert ended_s < 10.0
    assert any(line.startswith(b"event: end") for line in lines)


def test_a_stream_without_a_limit_still_ends(tmp_path, monkeypatch):
    import webui.routes.pages as pages

    monkeypatch.setattr(pages, "STREAM_MAX_S", 1.5)
    with served_app(tmp_path) as (app, db, port):
        c = Client(port)
        assert c.login().status == 200
        conn, r = _open_stream(port, c.cookie, "?limit=0")
        try:
            ended_s, lines = _read_until_end(r, timeout_s=8.0)
        finally:
            conn.close()
    assert ended_s < 5.0
    assert sum(1 for line in lines if line.startswith(b"data:")) >= 5


def test_a_stream_keeps_going_while_the_session_lives(tmp_path, monkeypatch):
    import webui.routes.pages as pages

    monkeypatch.setattr(pages, "STREAM_SESSION_CHECK_S", 0.2)
    with served_app(tmp_path) as (app, db, port):
        c = Client(port)
        assert c.login().status == 200
        conn, r = _open_stream(port, c.cookie, "?limit=30")
        try:
            ended_s, lines = _read_until_end(r, timeout_s=8.0)
        finally:
            conn.close()
    assert sum(1 for line in lines if line.startswith(b"data:")) == 30
