"""A station app served by uvicorn in a thread on 127.0.0.1, and a small HTTP client with a cookie jar."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.webui.helpers import PASSWORD, add_user, make_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed_s: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Client:
    """One HTTP/1.1 connection per request (as curl does); keeps the session cookie and CSRF token."""

    port: int
    cookie: str = ""
    csrf: str = ""
    timeout_s: float = 10.0
    extra_headers: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                *, timeout_s: float | None = None) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s or self.timeout_s)
        h = {**self.extra_headers, **(headers or {})}
        if self.cookie:
            h["Cookie"] = self.cookie
        if self.csrf and method not in ("GET", "HEAD"):
            h.setdefault("X-CSRF-Token", self.csrf)
        t0 = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, data, time.monotonic() - t0)
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Answer:
        return self.request("GET", path, **kw)

    def post_json(self, path: str, obj: Any, **kw: Any) -> Answer:
        return self.request("POST", path, json.dumps(obj).encode(), {"Content-Type": "application/json"}, **kw)

    def login(self, username: str = "therapist", password: str = PASSWORD) -> Answer:
        r = self.post_json("/api/v1/login", {"username": username, "password": password})
        if r.status == 200:
            self.cookie = r.headers["set-cookie"].split(";", 1)[0]
            self.csrf = r.json()["csrf_token"]
        return r


@contextlib.contextmanager
def serve(app: Any, *, timeout_s: float = 10.0) -> Iterator[int]:
    """Serve ``app`` as the station does (:class:`station.commands.run.WebServer`); yields the port."""
    from station.commands.run import WebServer

    port = free_port()
    server = WebServer(app, host="127.0.0.1", port=port)
    assert server.start(timeout_s=timeout_s), "the web server did not start"
    try:
        yield port
    finally:
        server.stop()


@contextlib.contextmanager
def served_app(tmp_path: Path, *, user: bool = True, **kw: Any) -> Iterator[tuple[Any, Any, int]]:
    """(app, db, port): a fresh app on a fresh database, served; the database closed afterwards."""
    app, db = make_app(tmp_path, **kw)
    if user:
        add_user(db)
    try:
        with serve(app) as port:
            yield app, db, port
    finally:
        db.close()
