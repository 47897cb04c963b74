"""A logged-in HTTP client of a station running as a process (the API of DESIGN.md section 6)."""

from __future__ import annotations

import http.cookiejar
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

USERNAME = "tester"
PASSWORD = "correct horse battery staple"


def add_user(data_dir: Path, *, username: str = USERNAME, password: str = PASSWORD) -> None:
    """``balance-station user add`` in its own process, as a technician would run it."""
    done = subprocess.run([sys.executable, "-m", "station.commands.cli", "--data-dir", str(data_dir), "user", "add",
                           username,
                           "--password-stdin"], input=password + "\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 or "already exists" in done.stderr, done.stderr


class StationClient:
    """Logs in once; GETs and POSTs JSON with the session cookie and the CSRF header."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.csrf = ""
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def login(self, *, username: str = USERNAME, password: str = PASSWORD) -> StationClient:
        self.csrf = self.post("/api/v1/login", {"username": username, "password": password})["csrf_token"]
        return self

    def get(self, path: str, *, timeout_s: float = 3.0) -> Any:
        with self._opener.open(self.base + path, timeout=timeout_s) as r:
            return json.load(r)

    def post(self, path: str, body: dict[str, Any] | None = None, *, timeout_s: float = 5.0) -> Any:
        request = urllib.request.Request(self.base + path, data=json.dumps(body or {}).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "X-CSRF-Token": self.csrf})
        with self._opener.open(request, timeout=timeout_s) as r:
            return json.load(r)
