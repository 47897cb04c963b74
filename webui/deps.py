"""Dependencies shared by the routes. Tests swap them with ``app.dependency_overrides``.

Use them as ``Annotated`` types in route signatures (names are stable):

``SettingsDep``
    The :class:`~station.core.config.StationSettings` (``app.state.settings``).
``LiveDep``
    The running plate (``app.state.live``); 503 when there is none.
``DatabaseDep``
    The station's :class:`~station.storage.db.Database` (``app.state.db``).
``SessionDep``
    A SQLAlchemy session for this request, closed after it. For GET/HEAD it
    begins plain (deferred) transactions; for state-changing methods every
    transaction begins ``IMMEDIATE`` (SQLite's write lock at once, so a write
    after a read cannot fail because the trial writer committed meanwhile).
    The repository functions (:mod:`station.storage.trials`) commit.
``OptionalSpool``
    The station's spool (:class:`~station.storage.spool.Spool`, ``app.state.spool``): where trials, frames
    and new patients go while the database is unreachable; None when the station has none.
``TrialsDep``
    The live-trial controller (:class:`station.clinic.controller.TrialController`,
    ``app.state.trials``); 503 when there is none.
``OfficeMode``
    True when the app is ``balance-station serve`` (the office computer: the clinic database, no
    plate; ``app.state.office``): the live page then starts tests on the stations through their API.
``SessionToken``
    The request's session cookie (str, empty without one), which ``serve`` forwards to a station.
``CurrentUser``
    For the JSON API: the logged-in :class:`~station.storage.models.User`;
    401 JSON without a valid session cookie; on POST/PUT/PATCH/DELETE also 403
    unless the ``X-CSRF-Token`` header carries the session's CSRF token.
``CsrfHeader``
    Declares (and checks) the ``X-CSRF-Token`` header on a state-changing API
    route, so the OpenAPI schema shows it: a parameter ``_: CsrfHeader``, or
    ``dependencies=[Depends(check_csrf_header)]``.
``PageUser``
    For HTML pages: the logged-in user; without a login, a 303 redirect to
    ``/login?next=<this page>``. On POST/PUT/PATCH/DELETE it also wants the
    CSRF token, in the form field ``csrf_token`` or the ``X-CSRF-Token``
    header (403 otherwise). The app adds it to every route of
    :mod:`webui.routes.pages` anyway.
``CsrfToken``
    The session's CSRF token (str), for a template: ``{"csrf_token": csrf}``.
    After any of the user dependencies ran, it is also on
    ``request.state.csrf_token``, and the user on ``request.state.user``
    (None when logged out), so a template can use
    ``{{ request.state.csrf_token }}`` directly.
``FormCsrf``
    For HTML forms posted to a page route: checks the hidden field
    ``<input type="hidden" name="csrf_token" value="{{ request.state.csrf_token }}">``;
    403 when it is missing or wrong. Use a parameter ``_: FormCsrf``, or
    ``dependencies=[Depends(check_form_csrf)]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyCookie, APIKeyHeader
from sqlalchemy.orm import Session, sessionmaker

from station.clinic.controller import TrialController
from station.core.config import StationSettings
from station.live.pipeline import LiveStation
from station.storage.db import Database
from station.storage.models import User
from station.storage.spool import Spool
from webui.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    LoginRequired,
    csrf_matches,
    request_auth,
    write_session,
)

__all__ = [
    "CsrfHeader",
    "CsrfToken",
    "CurrentUser",
    "DatabaseDep",
    "FormCsrf",
    "LiveDep",
    "OfficeMode",
    "PageUser",
    "SessionDep",
    "SessionToken",
    "SettingsDep",
    "TrialsDep",
    "get_csrf_token",
    "get_current_user",
    "get_db",
    "get_live",
    "get_office",
    "get_page_user",
    "get_session",
    "get_session_token",
    "get_settings",
    "get_trials",
    "check_csrf_header",
    "check_form_csrf",
    "write_sessions",
]

CSRF_MESSAGE = f"missing or wrong {CSRF_HEADER} header: send the csrf_token returned by POST /api/v1/login"

# Declared for the OpenAPI schema (security schemes); the checks below read the request themselves.
session_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="session",
                              description="the session cookie set by POST /api/v1/login")
csrf_header = APIKeyHeader(name=CSRF_HEADER, auto_error=False, scheme_name="csrf",
                           description="the csrf_token returned by POST /api/v1/login; "
                                       "required on every state-changing request")


def get_live(request: Request) -> LiveStation:
    live = getattr(request.app.state, "live", None)
    if live is None:
        raise HTTPException(status_code=503, detail="the plate is not running")
    return live


def get_live_or_none(request: Request) -> LiveStation | None:
    """The running plate, or None (a page that shows "the plate is not running" instead of a 503)."""
    return getattr(request.app.state, "live", None)


def get_settings(request: Request) -> StationSettings:
    return request.app.state.settings


def get_db(request: Request) -> Database:
    return request.app.state.db


def write_sessions(db: Database) -> sessionmaker[Session]:
    """Sessions whose every transaction begins IMMEDIATE (SQLite: the write lock at once)."""
    return sessionmaker(bind=db.engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False)


def get_session(request: Request, db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    if request.method in SAFE_METHODS:
        session = db.sessions()
    elif getattr(request.app.state, "db", None) is db:
        session = write_session(request)
    else:  # the database dependency was overridden
        session = write_sessions(db)()
    with session:
        yield session


def get_trials(request: Request) -> TrialController:
    trials = getattr(request.app.state, "trials", None)
    if trials is None:
        raise HTTPException(status_code=503, detail="live trials are not available: the plate is not running")
    return trials


def get_trials_or_none(request: Request) -> TrialController | None:
    """The trial controller, or None when the plate is not running (for pages that say so)."""
    return getattr(request.app.state, "trials", None)


def get_db_or_none(request: Request) -> Database | None:
    return getattr(request.app.state, "db", None)


def get_spool_or_none(request: Request) -> Spool | None:
    return getattr(request.app.state, "spool", None)


def get_office(request: Request) -> bool:
    return bool(getattr(request.app.state, "office", False))


def get_session_token(request: Request) -> str:
    return request.cookies.get(SESSION_COOKIE) or ""


def get_current_user(request: Request, _cookie: Annotated[str | None, Security(session_cookie)] = None) -> User:
    """The API's login check: 401 without a session; 403 on a state-changing request without the CSRF header."""
    auth = request_auth(request)
    if auth is None:
        raise HTTPException(status_code=401, detail="login required: POST /api/v1/login")
    if request.method not in SAFE_METHODS and not csrf_matches(auth.csrf_token, request.headers.get(CSRF_HEADER)):
        raise HTTPException(status_code=403, detail=CSRF_MESSAGE)
    return auth.user


def check_csrf_header(request: Request, _header: Annotated[str | None, Security(csrf_header)] = None) -> None:
    auth = request_auth(request)
    if auth is None:
        raise HTTPException(status_code=401, detail="login required: POST /api/v1/login")
    if not csrf_matches(auth.csrf_token, request.headers.get(CSRF_HEADER)):
        raise HTTPException(status_code=403, detail=CSRF_MESSAGE)


def _page_path(request: Request) -> str:
    url = request.url
    return url.path + (f"?{url.query}" if url.query else "")


async def get_page_user(request: Request) -> User:
    """The pages' login check: 303 to the login page without a session; 403 on a form without the CSRF token.

    The session look-up reads (and may write) the database: it runs in the worker threads, never on
    the event loop, which must stay free to finish the other requests (and give back their pooled
    connections) while this one waits for a connection.
    """
    auth = await run_in_threadpool(request_auth, request)
    if auth is None:
        raise LoginRequired(_page_path(request) if request.method in SAFE_METHODS else "/")
    if request.method not in SAFE_METHODS:
        await _check_form_or_header(request, auth.csrf_token)
    return auth.user


async def _check_form_or_header(request: Request, expected: str) -> None:
    given: Any = request.headers.get(CSRF_HEADER)
    if not given:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            try:
                form = await request.form()  # starlette keeps it: the route's Form() fields still work
            except Exception:
                raise HTTPException(status_code=400, detail="malformed form") from None
            given = form.get(CSRF_FIELD)
    if not csrf_matches(expected, given):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token: reload the page and try again")


async def check_form_csrf(request: Request, user: Annotated[User, Depends(get_page_user)]) -> None:
    """The hidden ``csrf_token`` field of an HTML form (or the X-CSRF-Token header); 403 otherwise."""
    await _check_form_or_header(request, request.state.csrf_token)


def get_csrf_token(request: Request, user: Annotated[User, Depends(get_page_user)]) -> str:
    return request.state.csrf_token


LiveDep = Annotated[LiveStation, Depends(get_live)]
OptionalLive = Annotated[LiveStation | None, Depends(get_live_or_none)]
OptionalTrials = Annotated[TrialController | None, Depends(get_trials_or_none)]
OptionalDatabase = Annotated[Database | None, Depends(get_db_or_none)]
OptionalSpool = Annotated[Spool | None, Depends(get_spool_or_none)]
SettingsDep = Annotated[StationSettings, Depends(get_settings)]
OfficeMode = Annotated[bool, Depends(get_office)]
SessionToken = Annotated[str, Depends(get_session_token)]
DatabaseDep = Annotated[Database, Depends(get_db)]
SessionDep = Annotated[Session, Depends(get_session)]
TrialsDep = Annotated[TrialController, Depends(get_trials)]
CurrentUser = Annotated[User, Depends(get_current_user)]
PageUser = Annotated[User, Depends(get_page_user)]
CsrfToken = Annotated[str, Depends(get_csrf_token)]
#: a parameter ``_: CsrfHeader`` (or ``dependencies=[Depends(check_csrf_header)]``) on a state-changing API route
CsrfHeader = Annotated[None, Depends(check_csrf_header)]
#: a parameter ``_: FormCsrf`` (or ``dependencies=[Depends(check_form_csrf)]``) on a page route taking a form
FormCsrf = Annotated[None, Depends(check_form_csrf)]
