"""Guards around every request: a body size limit, security headers, the worker threads, a self-contained API page.

:class:`GuardMiddleware` is a pure ASGI middleware (it sees every response,
the static files and the error pages included):

Body limit
    A request whose ``Content-Length`` says more than :data:`MAX_BODY_BYTES`
    is answered 413 before one byte of its body is read; a body sent without
    a length (chunked) is counted as it arrives and cut off with 413 at the
    limit. The station never takes more: its largest forms (a programme, a
    visit's notes) are a few kB, and JSON bodies are small records.

Security headers
    Every response carries ``X-Frame-Options: DENY``, a
    ``Content-Security-Policy`` (:data:`CSP`: only this site's scripts, no
    framing, no plugins, forms posted only here), ``X-Content-Type-Options:
    nosniff`` and ``Referrer-Policy: same-origin``. Every API response
    (``/api/``) is ``Cache-Control: no-store`` unless the route set its own:
    they carry patient data, and a browser or a proxy must not keep them.

Worker threads
    The routes and the page login check run in anyio's worker threads; the
    first request sets their number to
    :data:`station.storage.db.WORKER_THREADS`, fewer than the connections
    the database pool hands out (:data:`~station.storage.db.POOL_MAX_CONNECTIONS`),
    so a request that has a thread never waits for a connection.

:func:`api_docs_html` is the API's browsable reference at ``/api/docs``,
rendered on the server from the OpenAPI schema: nothing is loaded from
another site (Swagger UI from a CDN would show a blank page on a clinic
network without internet, and would run foreign script in the logged-in site).
"""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi import HTTPException

from station.storage.db import WORKER_THREADS

__all__ = ["CSP", "MAX_BODY_BYTES", "GuardMiddleware", "api_docs_html"]

#: the largest request body the station reads, bytes (1 MiB)
MAX_BODY_BYTES = 1 << 20
#: the one inline event handler the pages have (the report's Print button), allowed by its hash alone
_PRINT_HANDLER = "'unsafe-hashes' 'sha256-MguIPR6qNR8D3B+eAlK+bIRTZe8t3wkOY4B/56Me9FU='"  # onclick="window.print()"
#: the pages' content security policy: the station's own scripts only (the SVG charts use inline styles)
CSP = (f"default-src 'self'; script-src 'self' {_PRINT_HANDLER}; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", CSP.encode()),
    (b"referrer-policy", b"same-origin"),
)
_TOO_LARGE = json.dumps({"detail": f"request body too large: at most {MAX_BODY_BYTES // 1024} kB"}).encode()


class _BodyTooLarge(HTTPException):
    """Raised while the body is read: an HTTPException, so FastAPI's body reading lets it through as 413."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(status_code=413, detail=f"request body too large: at most {limit_bytes // 1024} kB")


class GuardMiddleware:
    """The body limit, the security headers and the worker threads (see the module's notes)."""

    def __init__(self, app: Any, *, max_body_bytes: int = MAX_BODY_BYTES, worker_threads: int = WORKER_THREADS) -> None:
        self.app = app
        self.max_body_bytes = int(max_body_bytes)
        self.worker_threads = int(worker_threads)
        self._threads_set = False

    def _set_threads(self) -> None:
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = self.worker_threads
        self._threads_set = True

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self._threads_set:
            self._set_threads()
        is_api = scope.get("path", "").startswith("/api/")

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in _HEADERS if k not in present]
                if is_api and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        length = None
        for key, value in scope.get("headers") or ():
            if key == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
        if length is not None and (length < 0 or length > self.max_body_bytes):
            await self._refuse(send_with_headers, 413 if length > 0 else 400)
            return

        received = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge(self.max_body_bytes)
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send_with_headers(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send_with_headers, 413)

    @staticmethod
    async def _refuse(send: Any, status: int) -> None:
        body = _TOO_LARGE if status == 413 else b'{"detail":"malformed Content-Length header"}'
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def api_docs_html(schema: dict[str, Any]) -> str:
    """A plain HTML reference of the API (routes, parameters, bodies, answers) from its OpenAPI schema."""
    e = html.escape
    out = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(schema['info']['title'])} API"
           "</title><link rel=\"stylesheet\" href=\"/static/station.css\"></head><body><main>",
           f"<h1>{e(schema['info']['title'])} API {e(str(schema['info'].get('version', '')))}</h1>",
           f"<pre>{e(schema['info'].get('description', ''))}</pre>",
           "<p>The machine-readable schema: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p>"]
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            out.append(f"<section><h2><code>{e(method.upper())} {e(path)}</code></h2>")
            if op.get("summary"):
                out.append(f"<p><strong>{e(op['summary'])}</strong></p>")
            if op.get("description"):
                out.append(f"<pre>{e(op['description'])}</pre>")
            params = op.get("parameters") or []
            if params:
                out.append("<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th></tr>")
                for p in params:
                    out.append(f"<tr><td><code>{e(p.get('name', ''))}</code></td><td>{e(p.get('in', ''))}</td>"
                               f"<td>{'yes' if p.get('required') else 'no'}</td>"
                               f"<td><code>{e(json.dumps(p.get('schema', {})))}</code></td></tr>")
                out.append("</table>")
            body = (op.get("requestBody") or {}).get("content") or {}
            for media, content in body.items():
                out.append(f"<p>body ({e(media)}): <code>{e(json.dumps(content.get('schema', {})))}</code></p>")
            answers = ", ".join(f"{e(code)} {e(r.get('description', ''))}" for code, r in op.get("responses",
                                                                                                 {}).items())
            out.append(f"<p>answers: {answers}</p></section>")
    schemas = (schema.get("components") or {}).get("schemas") or {}
    if schemas:
        out.append("<h2>Schemas</h2>")
        for name, s in schemas.items():
            out.append(f"<h3 id=\"{e(name)}\">{e(name)}</h3><pre>{e(json.dumps(s, indent=2))}</pre>")
    out.append("</main></body></html>")
    return "\n".join(out)
