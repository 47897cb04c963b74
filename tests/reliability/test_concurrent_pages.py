"""Finding 1: page requests at once must not freeze the web server (no blocking work on the event loop)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests.reliability.served import Client, served_app
from tests.webui.helpers import add_recorded_trial

CLIENTS = 16
REQUESTS_EACH = 4


def _watch_stream(port: int, cookie: str, gaps: list[float], stop: threading.Event) -> None:
    """Read a live stream until ``stop``; append the longest pause between two messages (bounded by its timeout)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    worst = 0.0
    try:
        conn.request("GET", "/live/stream?limit=2000", headers={"Cookie": cookie})
        r = conn.getresponse()
        last = time.monotonic()
        while not stop.is_set():
            line = r.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                now = time.monotonic()
                worst = max(worst, now - last)
                last = now
    except OSError:
        worst = float("inf")
    finally:
        conn.close()
        gaps.append(worst)


def test_16_clients_x_4_page_requests_get_no_5xx_and_none_waits_over_5_s(tmp_path):
    with served_app(tmp_path) as (app, db, port):
        trial_id = add_recorded_trial(db, "P-001", n_frames=80 * 37)
        logged_in = Client(port, timeout_s=12.0)
        assert logged_in.login().status == 200
        assert logged_in.get(f"/trials/{trial_id}").status == 200
        paths = [f"/trials/{trial_id}"] * 3
        start = threading.Barrier(CLIENTS, timeout=10)

        def one_client(i: int) -> list[tuple[int, float]]:
            c = Client(port, cookie=logged_in.cookie, timeout_s=12.0)
            start.wait()
            out = []
            for k in range(REQUESTS_EACH):
                try:
                    r = c.get(paths[(i + k) % len(paths)])
                    out.append((r.status, r.elapsed_s))
                except OSError:  # timed out: as bad as it gets
                    out.append((0, 12.0))
            return out

        gaps: list[float] = []
        stop_streams = threading.Event()
        streams = [threading.Thread(target=_watch_stream, args=(port, logged_in.cookie, gaps, stop_streams),
                                    daemon=True) for _ in range(3)]
        for t in streams:
            t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = [x for xs in pool.map(one_client, range(CLIENTS)) for x in xs]
        wall_s = time.monotonic() - t0
        stop_streams.set()
        for t in streams:
            t.join(20)
    statuses = sorted({s for s, _ in results})
    worst_s = max(e for _, e in results)
    print(f"\n{CLIENTS}x{REQUESTS_EACH} page requests: statuses {statuses}, max {worst_s:.2f} s, "
          f"all in {wall_s:.2f} s; "
          f"live streams' longest pause {max(gaps):.2f} s")
    assert statuses == [200]
    assert worst_s < 5.0
    assert len(gaps) == 3 and max(gaps) < 3.0, gaps  # the live views kept moving


def test_a_database_that_stays_locked_answers_503_with_a_plain_message(tmp_path, monkeypatch):
    import sqlite3

    import station.storage.db

    monkeypatch.setattr(station.storage.db, "BUSY_TIMEOUT_S", 0.5)
    with served_app(tmp_path) as (app, db, port):
        c = Client(port)
        assert c.login().status == 200
        holder = sqlite3.connect(db.path, timeout=0.5, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
            api = c.post_json("/api/v1/patients", {"code": "P-009"})
            page = c.request("POST", "/patients", b"code=P-010&csrf_token=" + c.csrf.encode(),
                             {"Content-Type": "application/x-www-form-urlencoded"})
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert c.post_json("/api/v1/patients", {"code": "P-011"}).status == 201
    assert api.status == 503 and "busy" in api.json()["detail"] and api.headers.get("retry-after")
    assert page.status == 503 and page.body.decode().startswith("The station's database is busy")
    assert b"Traceback" not in page.body
