"""Logins, the session cookie and CSRF tokens of the web page and the JSON API.

The accounts, their lock-out and the server-side sessions are in
:mod:`station.storage.accounts`; this module puts them on HTTP:

- the session cookie :data:`SESSION_COOKIE` holds a random token (the
  database keeps its SHA-256): ``HttpOnly``, ``SameSite=Lax``, ``Path=/``,
  ``Secure`` when ``web.https`` is set or the request came over HTTPS; no
  ``Max-Age`` (it ends with the browser; the server ends it sooner: idle
  timeout, maximum age, logout);
- each session has a CSRF token: the JSON API wants it in the
  :data:`CSRF_HEADER` header of every state-changing request (POST, PUT,
  PATCH, DELETE), HTML forms in the hidden field :data:`CSRF_FIELD`;
- the login form, before any session exists, is protected by a
  double-submit token (cookie :data:`LOGIN_CSRF_COOKIE` = hidden field);
- :func:`request_auth` finds the request's session once and leaves on
  ``request.state``: ``user`` (a :class:`~station.storage.models.User` or
  None), ``csrf_token`` (str, empty when logged out) and ``web_session``.

The client address is ``request.client.host``: behind a reverse proxy on the
same machine, uvicorn takes it from ``X-Forwarded-For`` (its
``forwarded_allow_ips`` default trusts 127.0.0.1).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from fastapi import HTTPException, Request, Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from station.core.config import StationSettings
from station.storage.accounts import (
    TOUCH_EVERY,
    LockedOut,
    LoginFailed,
    LoginPolicy,
    SessionPolicy,
    audit,
    check_login,
    close_web_session,
    find_web_session,
    hash_password,
    open_web_session,
    record_login,
    record_refusal,
    touch_web_session,
)
from station.storage.db import Database
from station.storage.models import User, WebSession, utc_now
from station.storage.spool import Spool, database_reachable
from station.storage.values import InvalidValue

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "LOGIN_CSRF_COOKIE",
    "SAFE_METHODS",
    "SESSION_COOKIE",
    "Auth",
    "LoginRequired",
    "client_address",
    "clear_session_cookie",
    "csrf_matches",
    "log_in",
    "log_out",
    "login_policy",
    "request_auth",
    "safe_next",
    "session_policy",
    "set_session_cookie",
    "write_session",
]

log = logging.getLogger(__name__)

SESSION_COOKIE = "bs_session"
LOGIN_CSRF_COOKIE = "bs_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):
    """A page needs a login: the app answers 303 to ``/login?next=<the page>``."""

    def __init__(self, next_url: str = "/") -> None:
        super().__init__(next_url)
        self.next_url = next_url

    @property
    def location(self) -> str:
        return "/login?next=" + quote(self.next_url, safe="/")


@dataclass(frozen=True)
class Auth:
    """The request's login: the user and their web session."""

    user: User
    web_session: WebSession

    @property
    def csrf_token(self) -> str:
        return self.web_session.csrf_token


def login_policy(settings: StationSettings) -> LoginPolicy:
    web = settings.web
    return LoginPolicy(max_failures=web.login_max_failures, client_max_failures=web.login_client_max_failures,
                       lockout=dt.timedelta(minutes=web.login_lockout_minutes))


def session_policy(settings: StationSettings) -> SessionPolicy:
    web = settings.web
    return SessionPolicy(idle=dt.timedelta(minutes=web.session_idle_minutes),
                         max_age=dt.timedelta(hours=web.session_max_hours))


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def csrf_matches(expected: str | None, given: object) -> bool:
    """Constant-time comparison of the session's CSRF token with the one sent."""
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))


def _db(request: Request) -> Database:
    return request.app.state.db


def _spool(request: Request) -> Spool | None:
    return getattr(request.app.state, "spool", None)


def _settings(request: Request) -> StationSettings:
    return request.app.state.settings


def write_session(request: Request) -> Session:
    """A new session whose transactions begin IMMEDIATE (``app.state.write_sessions``); close it after use."""
    factory = getattr(request.app.state, "write_sessions", None)
    if factory is None:
        db = _db(request)
        factory = sessionmaker(bind=db.engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False)
        request.app.state.write_sessions = factory
    return factory()


def request_auth(request: Request) -> Auth | None:
    """The request's login (looked up once per request), also left on ``request.state``."""
    if "auth" in request.state._state:  # noqa: SLF001 - State has no "contains"
        return request.state.auth
    auth = None
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        db = _db(request)
        spool = _spool(request)
        now = utc_now()
        policy = session_policy(_settings(request))
        offline = spool is not None and spool.offline  # known to be down: no waiting for a connection
        if not offline:
            try:
                with db.sessions() as session:
                    web_session = find_web_session(session, token, policy=policy, now=now)
            except DBAPIError:
                if spool is None or database_reachable(db):
                    raise
                offline = True
            else:
                if web_session is None and spool is not None:
                    spool.forget_session(token)  # ended or expired in the database: not valid offline either
        if offline:  # a session the database verified before still works (the spool's copy)
            web_session = spool.find_session(token, idle=policy.idle, now=now)  # type: ignore[union-attr]
        if web_session is not None:
            auth = Auth(user=web_session.user, web_session=web_session)
            if offline:
                if now - web_session.last_seen_at >= TOUCH_EVERY:
                    spool.touch_session(token, now)  # type: ignore[union-attr]
            elif now - web_session.last_seen_at >= TOUCH_EVERY:
                try:
                    with write_session(request) as session:
                        touch_web_session(session, web_session.id, now=now)
                    if spool is not None:
                        web_session.last_seen_at = max(web_session.last_seen_at, now)
                        spool.remember_session(web_session, web_session.user.username)
                except Exception as exc:  # a busy database must not fail the request
                    log.warning("cannot record the use of a web session: %s", exc)
    request.state.auth = auth
    request.state.user = auth.user if auth else None
    request.state.csrf_token = auth.csrf_token if auth else ""
    request.state.web_session = auth.web_session if auth else None
    return auth


def log_in(request: Request, username: str, password: str) -> tuple[str, Auth]:
    """Check the credentials and open a web session: (cookie token, login).

    Raises HTTPException 401 (wrong name or password, disabled account) or
    429 with ``Retry-After`` (locked out). On success, any session the request
    came with is ended (a fresh token at every login: no session fixation); a
    failed attempt leaves it alone.
    """
    settings = _settings(request)
    client = client_address(request)
    old = request.cookies.get(SESSION_COOKIE)
    now = utc_now()
    with _db(request).sessions() as session:  # reads only; no transaction is open while argon2 runs
        try:
            check = check_login(session, username, password, client=client, policy=login_policy(settings), now=now)
        except LoginFailed as exc:
            failure = exc
        else:
            failure = None
    if failure is not None:
        with write_session(request) as session:
            record_refusal(session, failure, client=client, now=now)
        if isinstance(failure, LockedOut):
            raise HTTPException(status_code=429, detail=str(failure),
                                headers={"Retry-After": str(failure.retry_after_s)}) from None
        raise HTTPException(status_code=401, detail=str(failure)) from None
    if check.rehash:  # older argon2 parameters: the new hash is made before the write transaction
        try:
            check.user.password_hash = hash_password(password)
        except InvalidValue:
            pass
        check.rehash = False
    with write_session(request) as session:  # one short write: the login, the old session ended, the new one
        user = record_login(session, check, password, client=client, now=now)
        if old:
            close_web_session(session, old, commit=False)
        token, web_session = open_web_session(session, user, client=client, policy=session_policy(settings), now=now)
        web_session.user = user
    auth = Auth(user=user, web_session=web_session)
    spool = _spool(request)
    if spool is not None:  # the login keeps working on this station while the database is unreachable
        try:
            spool.remember_session(web_session, user.username)
        except Exception as exc:
            log.warning("cannot keep a copy of the web session in the spool: %s", exc)
    request.state.auth = auth
    request.state.user = user
    request.state.csrf_token = auth.csrf_token
    request.state.web_session = web_session
    return token, auth


def log_out(request: Request) -> bool:
    """End the request's web session (audit: ``logout``); False when there was none."""
    token = request.cookies.get(SESSION_COOKIE)
    spool = _spool(request)
    try:
        with write_session(request) as session:
            web_session = close_web_session(session, token)
            if web_session is None:
                return False
            audit(session, "logout", username=web_session.user.username, client=client_address(request))
    except DBAPIError:
        if spool is None or database_reachable(_db(request)):
            raise
        if spool.find_session(token, idle=session_policy(_settings(request)).idle) is None:
            return False
        spool.forget_session(token, ended_offline=True)  # ended in the database when it answers again
    else:
        if spool is not None:
            spool.forget_session(token)
    request.state.auth = None
    request.state.user = None
    request.state.csrf_token = ""
    request.state.web_session = None
    return True


def _secure(request: Request) -> bool:
    return bool(_settings(request).web.https) or request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=_secure(request), path="/")


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=_secure(request), path="/")


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def set_login_csrf_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request),
                        path="/login", max_age=3600)


def safe_next(next_url: str | None) -> str:
    """Where to go after the login: a path on this site only (never ``//other.example`` or ``https://...``)."""
    if not next_url or not isinstance(next_url, str) or len(next_url) > 2000:
        return "/"
    parts = urlsplit(next_url)
    if (parts.scheme or parts.netloc or not next_url.startswith("/") or next_url.startswith("//")
            or "\\" in next_url or any(ord(c) < 32 for c in next_url)):
        return "/"
    if parts.path in ("/login", "/logout"):
        return "/"
    return next_url
