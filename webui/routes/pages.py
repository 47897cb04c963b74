"""The therapist's pages, rendered on the server.

=============================================  ============================================================
route                                          page
=============================================  ============================================================
``GET /``                                      station: plate source, rates, drops, calibration, drift, disk
``GET /patients?q=``                           patients: list, search by code, add
``POST /patients``                             add a patient (form), then its page
``GET /patients/{code}``                       one patient: visits, trends, latest left/right, norms
``GET|POST /patients/{code}/edit``             change a patient's details
``GET|POST /patients/{code}/programme``        the patient's home programme of drills (set or clear)
``GET /trials/{id}``                           one trial: statokinesigram, Fz and COP, metrics, grade, notes
``POST /trials/{id}/grade``                    the clinician's grade and notes
``GET /sessions/{id}/report``                  printable report of a visit (HTML, print CSS)
``GET /sessions/{id}/report.pdf``              the same report as PDF
``POST /sessions/{id}/notes``                  the visit's notes
``GET /live``                                  the plate live, start a test, its result
``GET /live/stream``                           server-sent events: COP, force and the trial's state, 20 Hz
``POST /live/start``, ``POST /live/abort``     start (patient, side) or abort a test (form or fetch)
=============================================  ============================================================

Every route needs a login (the app adds the page login check to this router);
the forms carry the session's CSRF token. Patients appear in URLs by their
pseudonymous code only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Undefined
from sqlalchemy.orm import Session

from station.core.sides import SIDES
from station.drills.catalogue import ALL_DRILLS, needs_pelvis
from station.storage.db import StorageError
from station.storage.disk import disk_warning
from station.storage.models import AffectedSide, Grade, Patient, Sex, Trial
from station.storage.patients import create_patient, get_patient, patient_codes, patient_overview, update_patient
from station.storage.trials import get_trial, set_grade, trial_recording
from station.storage.values import Conflict, InvalidValue, NotFound
from station.storage.visits import get_visit, patient_history
from webui.deps import (
    FormCsrf,
    OfficeMode,
    OptionalDatabase,
    OptionalLive,
    OptionalSpool,
    OptionalTrials,
    PageUser,
    SessionDep,
    SettingsDep,
    get_db,
    get_live_or_none,
    get_settings,
    get_trials_or_none,
)
from webui.views import pages_data as pd

templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
templates.env.filters["fmt"] = lambda value, *a, **k: pd.fmt(None if isinstance(value, Undefined) else value, *a, **k)
templates.env.filters["local"] = pd.local_time
templates.env.globals["SEXES"] = [s.value for s in Sex]
templates.env.globals["AFFECTEDSIDES"] = [s.value for s in AffectedSide]
templates.env.globals["GRADES"] = [g.value for g in Grade]
templates.env.globals["trial_numbers"] = pd.trial_numbers
templates.env.globals["is_simulated"] = pd.is_simulated

router = APIRouter(include_in_schema=False)

#: visits shown on a patient's page before "show all"
VISITS_SHOWN = 10
#: the live stream's period, s (20 Hz)
STREAM_PERIOD_S = 0.05
#: how often a live stream checks that its session is still open, s
STREAM_SESSION_CHECK_S = 3.0
#: the longest a live stream runs, s; the page's EventSource then reconnects (and logs in again)
STREAM_MAX_S = 3600.0


def _render(request: Request, name: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    ctx = {"settings": get_settings(request), "csrf_token": getattr(request.state, "csrf_token", ""), **context}
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


def _not_found(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=what)


#: the largest id a page looks up (the API's bound); SQLite's integers end at 2**63 - 1
MAX_ID = 2**62


def _check_id(value: int, what: str) -> int:
    """404 for an id no row can have (below 1, or past :data:`MAX_ID`: SQLite could not even compare it)."""
    if not 1 <= value <= MAX_ID:
        raise _not_found(f"no {what} {value}")
    return value


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


# -- station --------------------------------------------------------------------------------------------


def _disk(path: Path) -> dict[str, Any] | None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return {"free_gb": usage.free / 1e9, "total_gb": usage.total / 1e9, "used_pct": 100.0 * usage.used / usage.total,
            "path": str(path)}


@router.get("/", response_class=HTMLResponse)
def station_page(request: Request, settings: SettingsDep, user: PageUser, live: OptionalLive,
                 db: OptionalDatabase, office: OfficeMode, spool: OptionalSpool) -> HTMLResponse:
    status = live.status(calibration_max_age_days=settings.calibration_max_age_days) if live is not None else None
    db_size = None
    if db is not None and getattr(db, "path", None) is not None and db.path.exists():
        db_size = db.path.stat().st_size / 1e6
    disk = _disk(Path(settings.data_dir))
    warnings = list(status["warnings"]) if status else []
    disk_low = disk_warning(Path(settings.data_dir))
    if disk_low:
        warnings.append(disk_low)
    storage = spool.status() if spool is not None else None
    return _render(request, "station.html", {"active": "station", "status": status, "plate": settings.plate,
                                             "disk": disk, "db_size_mb": db_size, "warnings": warnings,
                                             "stations": _stations(db),
                                             "station_id": None if office else settings.station_id,
                                             "office": office, "storage": storage})


def _stations(db: Any) -> list[dict[str, Any]] | None:
    """Every station that stored trials in the database (several may share a clinic database); None when
    the database cannot be read (the rest of the page still shows)."""
    from sqlalchemy.exc import SQLAlchemyError

    from station.storage.stations import station_activity

    if db is None:
        return []
    try:
        with db.sessions() as session:
            return station_activity(session)
    except (SQLAlchemyError, StorageError) as exc:
        import logging

        logging.getLogger(__name__).warning("station page: cannot list the stations: %s",
                                            (str(exc).splitlines() or [type(exc).__name__])[0])
        return None


# -- patients -------------------------------------------------------------------------------------------


def _patient_rows(session: Session, q: str) -> list[dict[str, Any]]:
    return [{"patient": row.patient, "age": pd.age_years(row.patient.birth_year), "visits": row.visits,
             "trials": row.trials, "last": row.last_trial_at} for row in patient_overview(session, search=q)]


def _patients_page(request: Request, session: Session, *, q: str = "", form: dict[str, Any] | None = None,
                   error: str = "", status_code: int = 200) -> HTMLResponse:
    rows = _patient_rows(session, q.strip())
    return _render(request, "patients.html", {"active": "patients", "rows": rows, "q": q, "form": form or {},
                                              "error": error, "this_year": dt.date.today().year},
                   status_code=status_code)


@router.get("/patients", response_class=HTMLResponse)
def patients_page(request: Request, session: SessionDep, user: PageUser,
                  q: Annotated[str, Query(max_length=64)] = "") -> HTMLResponse:
    return _patients_page(request, session, q=q)


def _optional_int(text: str, what: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidValue(f"{what} must be a whole number, got {text!r}") from None


def _optional_float(text: str, what: str) -> float | None:
    text = (text or "").strip().replace(",", ".")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidValue(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise InvalidValue(f"{what} must be a number, got {text!r}")
    return value


def _patient_fields(birth_year: str, sex: str, height_cm: str, affected_side: str, notes: str) -> dict[str, Any]:
    return {"birth_year": _optional_int(birth_year, "year of birth"), "sex": sex or None,
            "height_cm": _optional_float(height_cm, "height"), "affected_side": affected_side or None,
            "notes": notes or ""}


FormText = Annotated[str, Form(max_length=2000)]


@router.post("/patients", response_class=HTMLResponse)
def patients_add(request: Request, session: SessionDep, user: PageUser,
                 code: Annotated[str, Form(max_length=64)] = "", birth_year: FormText = "", sex: FormText = "",
                 height_cm: FormText = "", affected_side: FormText = "",
                 notes: Annotated[str, Form(max_length=4000)] = "") -> Response:
    form = {"code": code, "birth_year": birth_year, "sex": sex, "height_cm": height_cm,
            "affected_side": affected_side, "notes": notes}
    try:
        patient = create_patient(session, code, **_patient_fields(birth_year, sex, height_cm, affected_side, notes))
    except (InvalidValue, Conflict) as exc:
        session.rollback()
        return _patients_page(request, session, form=form, error=str(exc),
                              status_code=409 if isinstance(exc, Conflict) else 422)
    return RedirectResponse(f"/patients/{patient.code}", status_code=303)


@router.get("/patients/{code}", response_class=HTMLResponse)
def patient_page(request: Request, code: str, session: SessionDep, user: PageUser, trials_dep: OptionalTrials,
                 visits: Annotated[str, Query(max_length=8)] = "") -> HTMLResponse:
    try:
        patient = get_patient(session, code)
    except NotFound as exc:
        raise _not_found(str(exc)) from None
    if patient.code != code:
        return RedirectResponse(f"/patients/{patient.code}", status_code=307)  # type: ignore[return-value]
    visit_rows, trials = patient_history(session, patient.id)
    age = pd.age_years(patient.birth_year)
    norm = pd.norm_for(patient.birth_year)
    summaries = pd.visit_summaries(visit_rows, trials, age=age)
    latest_visit, latest = pd.latest_comparison(summaries)
    charts = pd.trend_charts(summaries, trials, norm=norm)
    shown = list(reversed(summaries))
    show_all = visits == "all"
    hidden = 0 if show_all else max(0, len(shown) - VISITS_SHOWN)
    if not show_all:
        shown = shown[:VISITS_SHOWN]
    return _render(request, "patient.html", {
        "active": "patients", "patient": patient, "age": age, "norm": norm, "visits": shown, "hidden_visits": hidden,
        "n_visits": len(summaries), "n_trials": len(trials), "charts": charts, "latest_visit": latest_visit,
        "latest": latest, "comparison_rows": pd.comparison_rows(latest), "flag_text": pd.flag_text(latest),
        "live_available": trials_dep is not None,
        "programme": pd.programme_view(patient.programme),
    })


@router.get("/patients/{code}/edit", response_class=HTMLResponse)
def patient_edit_page(request: Request, code: str, session: SessionDep, user: PageUser) -> HTMLResponse:
    try:
        patient = get_patient(session, code)
    except NotFound as exc:
        raise _not_found(str(exc)) from None
    form = {"birth_year": patient.birth_year or "", "sex": patient.sex.value if patient.sex else "",
            "height_cm": f"{patient.height_cm:g}" if patient.height_cm is not None else "",
            "affected_side": patient.affected_side.value if patient.affected_side else "", "notes": patient.notes}
    return _render(request, "patient_edit.html", {"active": "patients", "patient": patient, "form": form,
                                                  "this_year": dt.date.today().year})


@router.post("/patients/{code}/edit", response_class=HTMLResponse)
def patient_edit(request: Request, code: str, session: SessionDep, user: PageUser, birth_year: FormText = "",
                 sex: FormText = "", height_cm: FormText = "", affected_side: FormText = "",
                 notes: Annotated[str, Form(max_length=4000)] = "") -> Response:
    form = {"birth_year": birth_year, "sex": sex, "height_cm": height_cm, "affected_side": affected_side,
            "notes": notes}
    try:
        patient = get_patient(session, code)
    except NotFound as exc:
        raise _not_found(str(exc)) from None
    try:
        fields = _patient_fields(birth_year, sex, height_cm, affected_side, notes)
        update_patient(session, patient.code, **fields)
    except InvalidValue as exc:
        session.rollback()
        return _render(request, "patient_edit.html", {"active": "patients", "patient": patient, "form": form,
                                                      "error": str(exc), "this_year": dt.date.today().year},
                       status_code=422)
    return RedirectResponse(f"/patients/{patient.code}", status_code=303)


def _programme_page(request: Request, patient: Patient, form: dict[str, Any], *, error: str = "",
                    status_code: int = 200) -> HTMLResponse:
    return _render(request, "programme.html", {
        "active": "patients", "patient": patient, "form": form, "error": error, "drills": pd.drill_choices(),
        "feedback_modes": pd.feedback_modes(), "has_programme": patient.programme is not None},
        status_code=status_code)


@router.get("/patients/{code}/programme", response_class=HTMLResponse)
def programme_page(request: Request, code: str, session: SessionDep, user: PageUser) -> HTMLResponse:
    try:
        patient = get_patient(session, code)
    except NotFound as exc:
        raise _not_found(str(exc)) from None
    return _programme_page(request, patient, pd.programme_form(patient.programme))


FormList = Annotated[list[str] | None, Form()]


@router.post("/patients/{code}/programme", response_class=HTMLResponse)
def programme_save(request: Request, code: str, session: SessionDep, user: PageUser, _: FormCsrf,
                   action: Annotated[str, Form(max_length=20)] = "save",
                   name: Annotated[str, Form(max_length=200)] = "",
                   level_bounds: Annotated[str, Form(max_length=200)] = "",
                   drill: FormList = None, amount: FormList = None, unit: FormList = None, side: FormList = None,
                   feedback: FormList = None, level: FormList = None, params: FormList = None) -> Response:
    try:
        patient = get_patient(session, code)
    except NotFound as exc:
        raise _not_found(str(exc)) from None
    if action == "clear":
        update_patient(session, patient.code, programme=None)
        return RedirectResponse(f"/patients/{quote(patient.code, safe='')}#programme", status_code=303)
    rows = pd.form_rows(drill=drill, amount=amount, unit=unit, side=side, feedback=feedback, level=level,
                        params=params)
    try:
        programme = pd.programme_from_form(name, rows, level_bounds)
        update_patient(session, patient.code, programme=programme)
    except (ValueError, InvalidValue) as exc:
        session.rollback()
        form = {"name": name, "level_bounds": level_bounds, "rows": rows}
        return _programme_page(request, patient, form, error=str(exc), status_code=422)
    return RedirectResponse(f"/patients/{quote(patient.code, safe='')}#programme", status_code=303)


# -- trials ---------------------------------------------------------------------------------------------


def _trial_context(session: Session, trial: Trial) -> dict[str, Any]:
    metrics = trial.metrics or {}
    charts = None
    recording_problem = ""
    try:
        rec = trial_recording(session, trial.id)
    except StorageError as exc:
        rec = None
        recording_problem = str(exc)
    if rec is not None:
        charts = pd.trial_charts(rec, metrics, protocol=trial.protocol,
                                 stance_side=trial.stance_side.value if trial.stance_side else None,
                                 uid=f"t{trial.id}")
        recording_problem = charts.problem
    return {
        "trial": trial, "patient": trial.session.patient, "metrics": metrics, "rows": pd.metric_rows(metrics),
        "charts": charts, "recording_problem": recording_problem,
        "touchdowns": metrics.get("touchdowns") or [],
        "supports": (metrics.get("support") or {}).get("episodes") or [],
        "warnings": metrics.get("warnings") or [], "norm": metrics.get("norm"),
        "side": trial.stance_side.value if trial.stance_side else None,
    }


@router.get("/trials/{trial_id}", response_class=HTMLResponse)
def trial_page(request: Request, trial_id: int, session: SessionDep, user: PageUser,
               saved: Annotated[str, Query(max_length=4)] = "") -> HTMLResponse:
    _check_id(trial_id, "trial")
    try:
        trial = get_trial(session, trial_id)
    except NotFound as exc:
        raise _not_found(str(exc)) from None
    ctx = _trial_context(session, trial)
    return _render(request, "trial.html", {"active": "patients", **ctx, "saved": bool(saved)})


@router.post("/trials/{trial_id}/grade", response_class=HTMLResponse)
def trial_grade(request: Request, trial_id: int, session: SessionDep, user: PageUser,
                grade: Annotated[str, Form(max_length=20)] = "not_assessed",
                notes: Annotated[str, Form(max_length=4000)] = "") -> Response:
    _check_id(trial_id, "trial")
    try:
        set_grade(session, trial_id, grade, notes=notes)
    except NotFound as exc:
        raise _not_found(str(exc)) from None
    except InvalidValue as exc:
        session.rollback()
        trial = get_trial(session, trial_id)
        ctx = _trial_context(session, trial)
        return _render(request, "trial.html", {"active": "patients", **ctx, "grade_error": str(exc)},
                       status_code=422)
    return RedirectResponse(f"/trials/{trial_id}?saved=1#grade", status_code=303)


# -- the visit report ---------------------------------------------------------------------------------


def _report_context(session: Session, visit_id: int) -> dict[str, Any]:
    try:
        visit = get_visit(session, visit_id)
    except NotFound as exc:
        raise _not_found(str(exc)) from None
    patient = visit.patient
    visit_rows, trials = patient_history(session, patient.id)
    age = pd.age_years(patient.birth_year)
    norm = pd.norm_for(patient.birth_year)
    earlier = [v for v in visit_rows if v.started_at <= visit.started_at or v.id == visit.id]
    summaries = pd.visit_summaries(earlier, trials, age=age)
    this = next(v for v in summaries if v.id == visit.id)
    summary = this.summary
    trend = pd.trend_charts(summaries, [], norm=norm, uid=f"r{visit.id}")
    chosen = {}
    best = (summary or {}).get("best") or {}
    scored = pd.scored_single_leg_trials(this.trials)
    for side in SIDES:
        b = best.get(side)
        if not b:
            continue
        trial = scored[b["index"]]
        try:
            chosen[side] = (trial, trial_recording(session, trial.id))
        except StorageError:
            continue
    # narrow: the report prints the two sides next to each other, on one scale, and their lettering must stay readable
    best_charts = pd.report_statokinesigrams(chosen, width=380)
    pelvis_chart = pd.report_pelvis_chart(chosen, uid=f"r{visit.id}-pelvis")
    return {"visit": visit, "patient": patient, "age": age, "norm": norm, "summary": summary,
            "trials": this.trials, "comparison_rows": pd.comparison_rows(summary), "flag_text": pd.flag_text(summary),
            "trend": trend, "best_charts": best_charts, "pelvis_chart": pelvis_chart,
            "printed_at": dt.datetime.now().astimezone()}


@router.get("/sessions/{visit_id}/report", response_class=HTMLResponse)
def report_page(request: Request, visit_id: int, session: SessionDep, user: PageUser,
                saved: Annotated[str, Query(max_length=4)] = "") -> HTMLResponse:
    _check_id(visit_id, "visit")
    ctx = _report_context(session, visit_id)
    return _render(request, "report.html", {"active": "patients", **ctx, "saved": bool(saved)})


@router.get("/sessions/{visit_id}/report.pdf")
def report_pdf(request: Request, visit_id: int, session: SessionDep, settings: SettingsDep, user: PageUser
               ) -> Response:
    _check_id(visit_id, "visit")
    from webui.views.report import session_report_pdf

    ctx = _report_context(session, visit_id)
    pdf = session_report_pdf(ctx, station_id=settings.station_id)
    name = f"report-{ctx['patient'].code}-{ctx['visit'].started_at.astimezone().strftime('%Y-%m-%d')}.pdf"
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@router.post("/sessions/{visit_id}/notes")
def report_notes(request: Request, visit_id: int, session: SessionDep, user: PageUser,
                 notes: Annotated[str, Form(max_length=8000)] = "") -> Response:
    _check_id(visit_id, "visit")
    try:
        visit = get_visit(session, visit_id)
    except NotFound as exc:
        raise _not_found(str(exc)) from None
    visit.notes = notes
    if not visit.clinician:
        visit.clinician = user.username
    session.commit()
    return RedirectResponse(f"/sessions/{visit_id}/report?saved=1#notes", status_code=303)


# -- live -------------------------------------------------------------------------------------------------


@router.get("/live", response_class=HTMLResponse)
def live_page(request: Request, session: SessionDep, settings: SettingsDep, user: PageUser, live: OptionalLive,
              controller: OptionalTrials, patient: Annotated[str, Query(max_length=64)] = "") -> HTMLResponse:
    codes = patient_codes(session)
    tests = live_protocols()
    snapshot = controller.snapshot() if controller is not None else None
    return _render(request, "live.html", {
        "active": "live", "codes": codes, "tests": tests,
        "chosen": patient or (snapshot.patient if snapshot is not None else None) or "",
        "plate": settings.plate, "snapshot": snapshot, "available": controller is not None and live is not None,
        "synthetic": bool(live is not None and live.synthetic)})


def live_protocols() -> list[dict[str, Any]]:
    """What the live page offers: ``{value, label, sided}`` for the tests and the drills the controller runs."""
    tests = [{"value": "single-leg", "label": "single-leg stance, 30 s", "sided": True},
             {"value": "quiet-stance", "label": "quiet stance, both feet", "sided": False}]
    for name in ALL_DRILLS:
        pelvis = needs_pelvis(name)
        tests.append({"value": f"drill:{name}",
                      "label": f"drill: {name.replace('-', ' ')}" + (" (needs the pelvis sensor)" if pelvis else ""),
                      "sided": "single-leg" in name or pelvis})
    return tests


def _sided(protocol: str) -> bool:
    return any(t["sided"] for t in live_protocols() if t["value"] == protocol)


def _controller(request: Request) -> Any:
    controller = get_trials_or_none(request)
    if controller is None or get_live_or_none(request) is None:
        raise HTTPException(status_code=503, detail="live tests are not available: the plate is not running")
    return controller


@router.post("/live/start")
def live_start(request: Request, user: PageUser, patient: Annotated[str, Form(max_length=64)] = "",
               protocol: Annotated[str, Form(max_length=40)] = "single-leg",
               stance_side: Annotated[str, Form(max_length=10)] = "") -> Response:
    from station.clinic.controller import TrialBusy

    controller = _controller(request)
    try:
        trial_id = controller.start(patient_code=patient.strip(), protocol=protocol,
                                    stance_side=(stance_side or None) if _sided(protocol) else None)
    except TrialBusy as exc:
        return _live_answer(request, status_code=409, error=str(exc), patient=patient)
    except NotFound as exc:
        return _live_answer(request, status_code=404, error=str(exc), patient=patient)
    except (ValueError, StorageError) as exc:
        return _live_answer(request, status_code=422, error=str(exc), patient=patient)
    return _live_answer(request, status_code=201, trial_id=trial_id, patient=patient)


def _live_answer(request: Request, *, status_code: int, patient: str, error: str = "",
                 trial_id: int | None = None) -> Response:
    if _wants_json(request):
        body: dict[str, Any] = {"trial_id": trial_id} if error == "" else {"detail": error}
        return JSONResponse(body, status_code=status_code)
    if error:
        raise HTTPException(status_code=status_code, detail=error)
    return RedirectResponse(f"/live?patient={quote(patient.strip(), safe='')}", status_code=303)


@router.post("/live/abort")
def live_abort(request: Request, user: PageUser) -> Response:
    controller = _controller(request)
    aborted = controller.abort(f"aborted from the web page by {user.username}")
    if _wants_json(request):
        return JSONResponse({"aborted": bool(aborted)})
    return RedirectResponse("/live", status_code=303)


def _finite(v: Any, digits: int = 1) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return round(f, digits) if math.isfinite(f) else None


def live_message(live: Any, controller: Any, *, events_from: int = 0) -> dict[str, Any]:
    """One message of the live stream: the plate now and the trial's state (events after ``events_from``)."""
    sample = live.latest() if live is not None else None
    msg: dict[str, Any] = {"t": time.time()}
    if sample is not None:
        occupied = bool(sample.occupied)
        msg.update({
            "t_s": _finite(sample.frame.t_s, 3), "fz_n": _finite(sample.frame.fz_n), "occupied": occupied,
            "cop_ml_mm": _finite(sample.cop_ml_mm) if occupied else None,
            "cop_ap_mm": _finite(sample.cop_ap_mm) if occupied else None,
            "body_weight_n": _finite(sample.body_weight_n) if occupied else None,
        })
    else:
        msg.update({"t_s": None, "fz_n": None, "occupied": False, "cop_ml_mm": None, "cop_ap_mm": None,
                    "body_weight_n": None})
    if controller is not None:
        snap = controller.snapshot()
        count = snap.event_count
        events = list(snap.events)
        new = count - events_from
        trial = {k: getattr(snap, k) for k in ("running", "trial_id", "patient", "protocol", "stance_side", "state",
                                               "instruction", "error", "outcome", "detail", "stored")}
        trial["elapsed_s"] = _finite(snap.elapsed_s, 1)
        status = asdict(snap.status) if snap.status is not None else {}
        trial["status"] = {k: (_finite(status.get(k), 2) if k.endswith("_s") else status.get(k))
                           for k in ("hold_elapsed_s", "hold_s", "countdown_remaining_s", "baseline_collected_s",
                                     "touchdowns", "touchdown_now", "supported_now") if k in status}
        trial["event_count"] = count
        trial["events"] = events[-new:] if 0 < new <= len(events) else (events if new > 0 else [])
        result = snap.result
        if result:
            trial["result"] = {
                "hold_time_s": result.get("hold_time_s"), "completed": result.get("completed"),
                "touchdowns": len(result.get("touchdowns") or []),
                "support_time_s": (result.get("support") or {}).get("time_s"),
                "mean_velocity_mm_s": (result.get("cop") or {}).get("mean_velocity_mm_s"),
                "ellipse95_area_mm2": (result.get("cop") or {}).get("ellipse95_area_mm2"),
            }
            for key in ("score", "success_pct", "level", "best_streak"):  # a drill's
                if key in result:
                    trial["result"][key] = result[key]
            trial["result"] = {k: v for k, v in trial["result"].items() if v is not None}
        else:
            trial["result"] = None
        msg["trial"] = trial
    else:
        msg["trial"] = None
    return msg


def _session_alive(request: Request) -> bool:
    """Is the request's web session still open (not logged out, expired, idle, or its user disabled)?

    Also records the use, at most once a minute, so a page that only watches the stream stays logged in.
    """
    from station.storage.accounts import TOUCH_EVERY, find_web_session, touch_web_session
    from station.storage.models import utc_now
    from webui.auth import SESSION_COOKIE, session_policy, write_session

    db = get_db(request)
    now = utc_now()
    with db.sessions() as session:
        web_session = find_web_session(session, request.cookies.get(SESSION_COOKIE),
                                       policy=session_policy(get_settings(request)), now=now)
    if web_session is None:
        return False
    if now - web_session.last_seen_at >= TOUCH_EVERY:
        try:
            with write_session(request) as session:
                touch_web_session(session, web_session.id, now=now)
        except Exception:  # noqa: BLE001 - a busy database must not end the stream
            pass
    return True


@router.get("/live/stream")
async def live_stream(request: Request, user: PageUser,
                      limit: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> StreamingResponse:
    """Server-sent events, one ``data:`` JSON message every 50 ms (:func:`live_message`).

    ``limit`` ends the stream after that many messages (0: until the page goes away); a stream
    ends anyway after :data:`STREAM_MAX_S` (the browser's EventSource opens a new one, with a new
    login check). Every :data:`STREAM_SESSION_CHECK_S` the stream checks its session again and
    ends, with an ``event: end`` message, once it has been logged out, has expired or its user
    was disabled: the patient data stop within seconds of a logout.
    """
    started = time.monotonic()

    async def events():
        sent = 0
        seen = 0
        checked = time.monotonic()
        yield "retry: 1000\n\n"
        while time.monotonic() - started < STREAM_MAX_S:
            if time.monotonic() - checked >= STREAM_SESSION_CHECK_S:
                checked = time.monotonic()
                if not await run_in_threadpool(_session_alive, request):
                    yield 'event: end\ndata: {"reason":"the session has ended: log in again"}\n\n'
                    return
            msg = live_message(get_live_or_none(request), get_trials_or_none(request), events_from=seen)
            if msg.get("trial"):
                seen = msg["trial"]["event_count"]
            yield f"data: {json.dumps(msg, separators=(',', ':'))}\n\n"
            sent += 1
            if limit and sent >= limit:
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(STREAM_PERIOD_S)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
