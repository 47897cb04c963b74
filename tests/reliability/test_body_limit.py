"""Finding 2: a large body is refused with 413 before it is read (no unauthenticated memory exhaustion)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.reliability.served import Client, served_app

MB = 1 << 20


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _read_answer(sock: socket.socket, *, timeout_s: float) -> bytes:
    sock.settimeout(timeout_s)
    data = b""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:  # until the server closes (it answers "Connection: close")
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return data


def test_a_20_mb_unauthenticated_body_gets_413_before_it_is_read(tmp_path):
    with served_app(tmp_path) as (app, db, port):
        before = rss_mb()
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"POST /api/v1/patients HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % (20 * MB))
            s.sendall(b'{"code": "' + b"A" * 65536)  # a little of it; the answer must not wait for the rest
            answer = _read_answer(s, timeout_s=5.0)
        elapsed_s = time.monotonic() - t0
        after = rss_mb()
    first = answer.split(b"\r\n", 1)[0]
    print(f"\n20 MB body: {first!r} in {elapsed_s:.2f} s; RSS {before:.0f} -> {after:.0f} MB")
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"too large" in answer
    assert elapsed_s < 3.0
    assert after - before < 10


def test_a_chunked_body_is_cut_off_at_the_limit(tmp_path):
    with served_app(tmp_path) as (app, db, port):
        before = rss_mb()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"A" * (256 * 1024)
            sent = 0
            try:
                for _ in range(80):  # at most 20 MB, stopped by the server's answer
                    s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
                    s.settimeout(0.01)
                    try:
                        if s.recv(1, socket.MSG_PEEK):
                            break
                    except (TimeoutError, BlockingIOError):
                        pass
                    s.settimeout(5)
            except (BrokenPipeError, ConnectionResetError):
                pass
            answer = _read_answer(s, timeout_s=5.0)
        after = rss_mb()
    first = answer.split(b"\r\n", 1)[0]
    print(f"\nchunked: sent {sent / MB:.1f} MB, answer {first!r}; RSS {before:.0f} -> {after:.0f} MB")
    assert answer.startswith(b"HTTP/1.1 413")
    assert sent <= 4 * MB
    assert after - before < 10


def test_ordinary_bodies_still_work(tmp_path):
    with served_app(tmp_path) as (app, db, port):
        c = Client(port)
        assert c.login().status == 200
        r = c.post_json("/api/v1/patients", {"code": "P-002", "notes": "n" * 2000})
        assert r.status == 201, r.body
