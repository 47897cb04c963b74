"""The FastAPI application: therapist pages and the JSON API.

Layout (in the manner of full-stack-fastapi-template):

- :mod:`webui.deps`: the ``Annotated`` dependencies (settings, database
  session, plate, trial controller, ``CurrentUser``, ``PageUser``, CSRF);
- :mod:`webui.auth`: session cookie, CSRF tokens, login and logout on HTTP
  (accounts and lock-out are in :mod:`station.storage.accounts`);
- :mod:`webui.models`: the API's pydantic models, a family per entity;
- :mod:`webui.routes`: ``api`` (``/api/v1``, DESIGN.md section 6, assembled
  from ``auth``, ``patients``, ``live_tests``, ``trials``, ``export``),
  ``auth.pages`` (the login page) and ``pages`` (the therapist pages); in office mode
  (``balance-station serve``) ``office``, the live page of the stations.

Access: every route needs a login except ``GET /login`` and ``POST /login``,
``/static``, ``GET /api/v1/health`` and ``POST /api/v1/login``. The API
answers 401 JSON; a page redirects (303) to ``/login?next=<page>``. The
OpenAPI schema (``/api/v1/openapi.json``) and its reference page (``/api/docs``,
rendered on the server, nothing from a CDN) need a login too. Every request
passes :class:`webui.guards.GuardMiddleware` (1 MiB body limit, security
headers); a database that stays busy or locked answers 503, not 500.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import compile_path

from station import __version__
from station.clinic.controller import TrialBusy
from station.core.config import StationSettings
from station.live.pipeline import LiveStation
from station.storage.db import RESTORE_HINT, Database, StorageError, open_database
from station.storage.values import Conflict, InvalidValue, NotFound
from webui.auth import LoginRequired
from webui.deps import get_page_user, write_sessions
from webui.guards import GuardMiddleware, api_docs_html
from webui.routes import api, pages
from webui.routes import auth as auth_routes
from webui.routes import office as office_routes

log = logging.getLogger(__name__)

API_DESCRIPTION = """\
The balance station's JSON API (DESIGN.md section 6).

Log in with `POST /api/v1/login` (`{"username", "password"}`): it sets the session cookie and returns a
`csrf_token`; send that token in the `X-CSRF-Token` header of every POST, PATCH and DELETE.
Without a session: 401; without the header on a change: 403. Errors are `{"detail": "..."}`.
"""


def _problem(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def wants_html(request: Request) -> bool:
    """A browser asking for a page (not the API under /api/, not a script asking for JSON)."""
    accept = request.headers.get("accept", "")
    return (not request.url.path.startswith("/api/") and "text/html" in accept
            and "application/json" not in accept.split(",")[0])


#: an error page's title by status
ERROR_TITLES = {400: "The request was not understood", 403: "Not allowed", 404: "Not found",
                405: "Not possible here", 409: "Not possible right now", 413: "Too large",
                422: "Something in the form is not right", 500: "Something went wrong on the station",
                502: "The station did not answer",
                503: "The station cannot answer right now"}
#: what to do next, by status
ERROR_ADVICE = {404: "The link may be old, or the patient or trial was never stored under that name.",
                409: "Wait for the running test to end, or abort it on the live page, then try again.",
                500: "The station logged what happened. Try again; if it happens again, tell whoever "
                     "looks after the station.",
                502: "Check that the station is running and that this computer reaches its web page (the link in "
                     "the list of stations), then try again.",
                503: "Try again in a moment."}


def _way_back(path: str) -> tuple[str, str]:
    """Where an error page leads back to, from the path that failed."""
    if path.startswith("/live"):
        return "/live", "Back to the live page"
    if path.startswith(("/patients", "/trials", "/sessions", "/export")):
        return "/patients", "Back to the patients"
    return "/", "Back to the station page"


def error_page(request: Request, status: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    """JSON (``{"detail"}``) for the API and scripts; for a browser, a page that says what happened and
    offers a way back."""
    if not wants_html(request):
        return _problem(status, detail, headers)
    from webui.routes.pages import templates

    text = detail if isinstance(detail, str) else "The request was not understood."
    if isinstance(detail, list):  # validation errors: one line each
        text = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'value'}: {e.get('msg', '')}"
                         for e in detail if isinstance(e, dict)) or text
    if status == 404 and text == "Not Found":  # no route at all
        text = f"There is no page at {request.url.path}."
    text = text[:1].upper() + text[1:] if text else ERROR_TITLES.get(status, "Error")
    back_href, back_label = _way_back(request.url.path)
    context = {"settings": request.app.state.settings, "status_code": status,
               "title": ERROR_TITLES.get(status, "Error"), "detail": text, "advice": ERROR_ADVICE.get(status, ""),
               "back_href": back_href, "back_label": back_label}
    response = templates.TemplateResponse(request, "error.html", context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


BUSY_MESSAGE = "the station's database is busy: try again in a moment"


def _busy_answer(request: Request) -> Response:
    """503 with ``Retry-After``: JSON for the API, a page for a browser, else a plain sentence."""
    if request.url.path.startswith("/api/"):
        return _problem(503, BUSY_MESSAGE, {"Retry-After": "5"})
    if wants_html(request):
        return error_page(request, 503, BUSY_MESSAGE, {"Retry-After": "5"})
    return PlainTextResponse(BUSY_MESSAGE[0].upper() + BUSY_MESSAGE[1:] + ".\n", status_code=503,
                             headers={"Retry-After": "5"})


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every HTTP method some route of the app answers on ``path``."""
    patterns = getattr(app.state, "_route_patterns", None)
    if patterns is None:
        patterns = []
        for route in iter_route_contexts(app.routes):
            if route.methods:
                patterns.append((compile_path(route.path)[0], set(route.methods)))
        app.state._route_patterns = patterns
    methods: set[str] = set()
    for regex, route_methods in patterns:
        if regex.match(path):
            methods |= route_methods
    return sorted(methods)


def _add_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return error_page(request, 404, str(exc))

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> Response:
        return error_page(request, 409, str(exc))

    @app.exception_handler(TrialBusy)
    async def _busy(request: Request, exc: TrialBusy) -> Response:
        return error_page(request, 409, str(exc) or "a trial is already running")

    @app.exception_handler(InvalidValue)
    async def _invalid(request: Request, exc: InvalidValue) -> Response:
        return error_page(request, 422, str(exc))

    @app.exception_handler(StorageError)
    async def _storage(request: Request, exc: StorageError) -> Response:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return error_page(request, 503, str(exc))

    @app.exception_handler(SQLAlchemyTimeoutError)
    async def _pool_timeout(request: Request, exc: SQLAlchemyTimeoutError) -> Response:
        log.warning("%s %s: no database connection free in time", request.method, request.url.path)
        return _busy_answer(request)

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> Response:
        text = str(exc.orig) if exc.orig is not None else str(exc)
        log.warning("%s %s: database: %s", request.method, request.url.path, text.splitlines()[0][:200])
        if "locked" in text or "busy" in text:
            return _busy_answer(request)
        return error_page(request, 503, f"the database cannot be used: {text.splitlines()[0][:200]}")

    @app.exception_handler(DatabaseError)
    async def _damaged(request: Request, exc: DatabaseError) -> Response:
        text = str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0][:200]
        log.error("%s %s: database: %s", request.method, request.url.path, text)
        return error_page(request, 503, f"the station's database cannot be read ({text}): {RESTORE_HINT}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:  # Allow: every method of the path, not only those of the first route matched
            headers = {**(exc.headers or {}), "Allow": ", ".join(allowed_methods(request.app, request.url.path))}
            return error_page(request, 405, exc.detail, headers)
        if wants_html(request) and exc.status_code >= 400:
            return error_page(request, exc.status_code, exc.detail, dict(exc.headers or {}))
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        # as FastAPI's own, minus the rejected input: it could be a password
        errors = [{k: v for k, v in e.items() if k not in ("input", "ctx", "url")} for e in exc.errors()]
        for e in errors:
            if isinstance(e.get("msg"), str) and e["msg"].startswith("Value error, "):
                e["msg"] = e["msg"][len("Value error, "):]
        for e, original in zip(errors, exc.errors(), strict=True):
            ctx = original.get("ctx")
            if ctx:
                e["ctx"] = {k: str(v) for k, v in ctx.items()}
        return error_page(request, 422, errors)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # the traceback goes to the log (Starlette logs it as it re-raises); the person gets a page or JSON
        return error_page(request, 500, "an unexpected error stopped this request")


def create_app(settings: StationSettings, live: LiveStation | None = None, *, db: Database | None = None,
               trials: Any = None, office: bool = False, spool: Any = None) -> FastAPI:
    """Build the app.

    Parameters
    ----------
    settings : StationSettings
    live : LiveStation, optional
        The running plate; may be attached later as ``app.state.live``.
    db : Database, optional
        The station's database. Default: opened here (``settings.database_url``,
        else ``station.db`` in ``settings.data_dir``), at once, since the station
        serves uvicorn without a lifespan, and closed at the app's shutdown.
    trials : TrialController, optional
        The live-trial controller (:class:`station.clinic.controller.TrialController`);
        may be attached later as ``app.state.trials``.
    office : bool
        The office computer's app (``balance-station serve``): the clinic database, no plate; its live
        page (:mod:`webui.routes.office`) lists the stations and starts a test on one through its API.
    spool : Spool, optional
        The station's spool (:class:`station.storage.spool.Spool`): logged-in therapists keep their
        sessions, new patients are kept and the status says "offline: N trials waiting to upload"
        while the database is unreachable.
    """
    own_db = db is None
    if db is None:
        db = open_database(settings.database_url, data_dir=settings.data_dir, station_id=settings.station_id)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if own_db:
                app.state.db.close()

    app = FastAPI(title="Balance station", version=__version__, description=API_DESCRIPTION,
                  docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.web.trusted_hosts())
    app.add_middleware(GuardMiddleware)  # outermost: the body limit and the headers cover every answer
    app.state.settings = settings
    app.state.live = live
    app.state.db = db
    app.state.write_sessions = write_sessions(db)
    app.state.trials = trials
    app.state.office = office
    app.state.spool = spool
    _add_exception_handlers(app)

    app.mount("/static", StaticFiles(directory=Path(__file__).resolve().parent / "static"), name="static")
    app.include_router(api.router)
    app.include_router(auth_routes.pages)
    if office:  # before the pages: its live page takes the place of the station's own
        app.include_router(office_routes.router, dependencies=[Depends(get_page_user)])
    app.include_router(pages.router, dependencies=[Depends(get_page_user)])

    @app.get("/api/docs", include_in_schema=False, dependencies=[Depends(get_page_user)])
    def api_docs() -> HTMLResponse:
        # rendered here from the schema: no Swagger UI from a CDN (blank without internet, foreign script)
        return HTMLResponse(api_docs_html(app.openapi()), headers={"Cache-Control": "no-store"})

    return app
