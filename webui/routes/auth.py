"""Logging in and out: ``POST /api/v1/login``, ``POST /api/v1/logout``, ``GET /api/v1/me``, and the login page.

- :data:`api_public`: ``POST /login`` (no session yet: no CSRF header; the
  body must be JSON, which a cross-site form cannot send);
- :data:`api_private`: ``POST /logout`` and ``GET /me`` (the app puts the
  login check on them);
- :data:`pages`: ``GET /login`` (the form), ``POST /login`` (the form posted,
  protected by a double-submit token before any session exists) and
  ``POST /logout`` (the page's logout button, with the session's CSRF token).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from webui import auth
from webui.deps import CsrfHeader, CurrentUser, SettingsDep, check_form_csrf
from webui.models import LoginRequest, LoginResult, LogoutResult, Problem, UserPublic

templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")

api_public = APIRouter(tags=["session"])
api_private = APIRouter(tags=["session"])
pages = APIRouter(include_in_schema=False)


@api_public.post("/login", response_model=LoginResult, summary="Log in",
                 responses={401: {"model": Problem, "description": "wrong user name or password"},
                            429: {"model": Problem, "description": "locked out after too many failed logins"}})
def login(body: LoginRequest, request: Request, response: Response) -> Any:
    """Sets the session cookie; returns the CSRF token for the ``X-CSRF-Token`` header of later changes."""
    token, login = auth.log_in(request, body.username, body.password.get_secret_value())
    auth.set_session_cookie(response, request, token)
    return {"csrf_token": login.csrf_token, "username": login.user.username,
            "expires_at": login.web_session.expires_at}


@api_private.post("/logout", response_model=LogoutResult, summary="Log out")
def logout(request: Request, response: Response, user: CurrentUser, _: CsrfHeader) -> Any:
    """Ends the session (server-side: the cookie is useless afterwards) and clears the cookie."""
    ended = auth.log_out(request)
    auth.clear_session_cookie(response, request)
    return {"logged_out": ended}


@api_private.get("/me", response_model=UserPublic, summary="Who is logged in")
def me(request: Request, user: CurrentUser) -> Any:
    return {"username": user.username, "csrf_token": request.state.csrf_token, "last_login_at": user.last_login_at}


# -- the login page -------------------------------------------------------------------------------


def _login_page(request: Request, settings: Any, *, next_url: str, error: str = "", username: str = "",
                status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    token = auth.new_login_csrf()
    response = templates.TemplateResponse(
        request, "login.html",
        {"settings": settings, "next": next_url, "error": error, "username": username, "login_csrf": token},
        status_code=status_code, headers=headers)
    auth.set_login_csrf_cookie(response, request, token)
    response.headers["Cache-Control"] = "no-store"
    return response


@pages.get("/login", response_class=HTMLResponse)
def login_page(request: Request, settings: SettingsDep, next: str = "/") -> Response:
    next_url = auth.safe_next(next)
    if auth.request_auth(request) is not None:
        return RedirectResponse(next_url, status_code=303)
    return _login_page(request, settings, next_url=next_url)


@pages.post("/login", response_class=HTMLResponse)
def login_form(request: Request, settings: SettingsDep,
               username: Annotated[str, Form(max_length=256)] = "",
               password: Annotated[str, Form(max_length=1024)] = "",
               csrf_token: Annotated[str, Form(max_length=256)] = "",
               next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    next_url = auth.safe_next(next)
    if not auth.csrf_matches(request.cookies.get(auth.LOGIN_CSRF_COOKIE), csrf_token):
        return _login_page(request, settings, next_url=next_url, username=username, status_code=403,
                           error="The login form had expired. Please try again.")
    try:
        token, _ = auth.log_in(request, username, password)
    except HTTPException as exc:
        return _login_page(request, settings, next_url=next_url, username=username, status_code=exc.status_code,
                           error=str(exc.detail).capitalize() + ".", headers=exc.headers)
    response = RedirectResponse(next_url, status_code=303)
    auth.set_session_cookie(response, request, token)
    response.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/login")
    return response


@pages.post("/logout", dependencies=[Depends(check_form_csrf)])
def logout_form(request: Request) -> Response:
    auth.log_out(request)
    response = RedirectResponse("/login", status_code=303)
    auth.clear_session_cookie(response, request)
    return response
