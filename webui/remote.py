"""The office's line to a station: its JSON API, called with the therapist's own login.

``balance-station serve`` (the office computer) has no plate: to start a test it calls the chosen
station's ``POST /api/v1/tests``, at the web address the station notes with its contact
(``stations.web_url``). It sends the therapist's session cookie and CSRF token along. The office and
the stations share one clinic database, and web sessions live in it (``web_sessions``), so the
station itself checks that login (expired, logged out, disabled account: 401) and the CSRF token
(403), then its own state (a test already running: 409; unknown patient: 404; no plate: 503), as for
a request from its own page. The office holds no password and no account of its own on the stations.

Plain ``urllib`` (no extra dependency); HTTPS is verified against the system's certificate authorities
(``SSL_CERT_FILE`` names another bundle, e.g. a clinic's or Caddy's internal root).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from webui.auth import CSRF_HEADER, SESSION_COOKIE

__all__ = ["RemoteAnswer", "call_station"]

#: how long the office waits for a station's answer, s (starting a test answers at once)
TIMEOUT_S = 5.0
#: the most of a station's answer the office reads
MAX_ANSWER_BYTES = 1 << 20


@dataclass(frozen=True)
class RemoteAnswer:
    """A station's answer: the HTTP status (502 when it did not answer) and its JSON body (``{"detail"}`` on errors)."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def detail(self) -> str:
        return str(self.body.get("detail") or "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A station's API does not redirect; a redirect (to a login page elsewhere) is not followed with the cookie."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def call_station(web_url: str, method: str, path: str, *, session_token: str, csrf_token: str = "",
                 body: dict[str, Any] | None = None, timeout_s: float = TIMEOUT_S) -> RemoteAnswer:
    """``method path`` on the station at ``web_url`` (``http(s)://host[:port]``) as the logged-in therapist."""
    if not web_url.startswith(("http://", "https://")):
        return RemoteAnswer(502, {"detail": f"the station's web address {web_url!r} is not http(s)"})
    headers = {"Accept": "application/json", "Cookie": f"{SESSION_COOKIE}={session_token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if method.upper() not in ("GET", "HEAD"):
        headers[CSRF_HEADER] = csrf_token
    request = urllib.request.Request(web_url.rstrip("/") + path, data=data, method=method.upper(), headers=headers)
    try:
        with _opener.open(request, timeout=timeout_s) as response:
            return RemoteAnswer(response.status, _json(response.read(MAX_ANSWER_BYTES)))
    except urllib.error.HTTPError as exc:
        answer = _json(exc.read(MAX_ANSWER_BYTES))
        if exc.code in (301, 302, 303, 307, 308):
            answer = {"detail": f"the station at {web_url} redirected to {exc.headers.get('Location')}: "
                                "check its web address ([web] public_url)"}
        exc.close()
        return RemoteAnswer(exc.code, answer or {"detail": f"the station answered {exc.code} {exc.reason}"})
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return RemoteAnswer(502, {"detail": f"the station does not answer at {web_url} ({reason})"})


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {"value": value}
