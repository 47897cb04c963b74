"""The office's live page (``balance-station serve``): the stations, and a test started on one of them.

=============================================  ============================================================
route                                          page
=============================================  ============================================================
``GET /live``                                  every station on the clinic database, its last contact, and a
                                               form: station, patient, test, side
``POST /live/start``                           start the test on the chosen station (its ``POST /api/v1/tests``)
``POST /live/abort``                           abort the test running on a station
``GET /live/stations/{id}/current``            the station's running test (its ``GET /api/v1/tests/current``)
=============================================  ============================================================

The app includes this router before :mod:`webui.routes.pages` only in office mode
(:func:`webui.app.create_app` with ``office=True``), so these routes take the place of the station's
own live page there: the office has no plate. Each call goes to the station's API at the address it
noted with its contact, with the therapist's session (:mod:`webui.remote`): the station checks the
login and the CSRF token itself. docs/clinic.md says why this, and not PostgreSQL's LISTEN/NOTIFY.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from station.storage.db import Database
from station.storage.models import StationContact
from station.storage.patients import patient_codes
from station.storage.stations import HEARTBEAT_S, station_activity
from webui.deps import DatabaseDep, PageUser, SessionDep, SessionToken
from webui.remote import RemoteAnswer, call_station
from webui.routes.pages import _render, _wants_json, live_protocols

router = APIRouter(include_in_schema=False)

#: a station whose last contact is older than this many heartbeats is shown as not in contact
SILENT_AFTER_BEATS = 3


def _in_contact(station: dict[str, Any], now: dt.datetime) -> bool:
    seen = station.get("last_contact_at")
    return seen is not None and now - seen <= dt.timedelta(seconds=SILENT_AFTER_BEATS * HEARTBEAT_S)


@router.get("/live", response_class=HTMLResponse)
def office_live_page(request: Request, session: SessionDep, user: PageUser,
                     station: Annotated[str, Query(max_length=64)] = "",
                     patient: Annotated[str, Query(max_length=64)] = "",
                     started: Annotated[int | None, Query(ge=1)] = None) -> HTMLResponse:
    now = dt.datetime.now(dt.UTC)
    stations = [{**st, "in_contact": _in_contact(st, now)} for st in station_activity(session)
                if st["station_id"] is not None]
    startable = [st for st in stations if st["web_url"]]
    chosen = station or next((st["station_id"] for st in startable if st["in_contact"]), "")
    return _render(request, "office_live.html", {
        "active": "live", "stations": stations, "startable": startable, "chosen_station": chosen,
        "codes": patient_codes(session), "chosen": patient, "tests": live_protocols(), "started": started,
        "started_on": station if started else "", "silent_after_s": SILENT_AFTER_BEATS * HEARTBEAT_S})


def _station_url(db: Database, station_id: str) -> str:
    """The station's web address, read in a short transaction of its own: none is open while the station is
    called (a POST's session would hold SQLite's write lock, which the station needs to store the trial)."""
    contact = None
    if station_id:
        with db.sessions() as session:
            contact = session.get(StationContact, station_id)
    if contact is None:
        raise HTTPException(status_code=404, detail=f"no station {station_id!r} uses this database")
    if not contact.web_url:
        raise HTTPException(status_code=409, detail=f"station {station_id} has not said where its web page answers "
                                                    "(it runs an older program, or has not started since the "
                                                    "upgrade): start the test on the station's own page")
    return contact.web_url


def _answer(request: Request, answer: RemoteAnswer, station_id: str, *, success: str) -> Response:
    """The station's answer as JSON (fetch, scripts), or a redirect back to the live page / an error page."""
    if answer.status == 401:
        answer = RemoteAnswer(401, {"detail": f"station {station_id} did not accept your login: it may use another "
                                              "database than this office page, or your session ended; log in again"})
    if _wants_json(request):
        return JSONResponse(answer.body, status_code=answer.status)
    if not answer.ok:
        raise HTTPException(status_code=answer.status if answer.status in (403, 404, 409, 422, 503) else 502,
                            detail=f"station {station_id}: {answer.detail or 'no answer'}")
    return RedirectResponse(success, status_code=303)


@router.post("/live/start")
def office_live_start(request: Request, db: DatabaseDep, user: PageUser, token: SessionToken,
                            station: Annotated[str, Form(max_length=64)] = "",
                            patient: Annotated[str, Form(max_length=64)] = "",
                            protocol: Annotated[str, Form(max_length=40)] = "single-leg",
                            stance_side: Annotated[str, Form(max_length=10)] = "") -> Response:
    web_url = _station_url(db, station.strip())
    sided = any(t["sided"] for t in live_protocols() if t["value"] == protocol)
    body: dict[str, Any] = {"patient": patient.strip(), "protocol": protocol}
    if sided:
        body["stance_side"] = stance_side or None
    answer = call_station(web_url, "POST", "/api/v1/tests", session_token=token,
                                     csrf_token=request.state.csrf_token, body=body)
    trial_id = answer.body.get("trial_id") if answer.ok else None
    return _answer(request, answer, station, success=f"/live?station={quote(station, safe='')}"
                                                     f"&patient={quote(patient.strip(), safe='')}&started={trial_id}")


@router.post("/live/abort")
def office_live_abort(request: Request, db: DatabaseDep, user: PageUser, token: SessionToken,
                            station: Annotated[str, Form(max_length=64)] = "") -> Response:
    web_url = _station_url(db, station.strip())
    answer = call_station(web_url, "POST", "/api/v1/tests/current/abort",
                                     session_token=token, csrf_token=request.state.csrf_token)
    return _answer(request, answer, station, success=f"/live?station={quote(station, safe='')}")


@router.get("/live/stations/{station_id}/current")
def office_station_current(station_id: str, db: DatabaseDep, user: PageUser,
                                 token: SessionToken) -> JSONResponse:
    web_url = _station_url(db, station_id)
    answer = call_station(web_url, "GET", "/api/v1/tests/current", session_token=token)
    return JSONResponse(answer.body, status_code=answer.status, headers={"Cache-Control": "no-store"})
