"""Stored trials: ``GET /trials``, ``GET /trials/{id}``, ``PATCH /trials/{id}``, ``GET /trials/{id}/recording.csv``."""

from __future__ import annotations

import datetime as dt
import io
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from station.storage.accounts import audit
from station.storage.db import StorageError
from station.storage.models import TrialState
from station.storage.trials import get_trial, list_trials, trial_summary, update_trial, write_trial_recording
from station.storage.values import NotFound
from webui.auth import client_address, write_session
from webui.deps import CsrfHeader, CurrentUser, DatabaseDep, SessionDep
from webui.models import PatientCode, Problem, TrialPublic, TrialUpdate

router = APIRouter(prefix="/trials", tags=["trials"])

TrialId = Annotated[int, PathParam(ge=1, le=2**62, description="the trial's id")]
_NOT_FOUND = {404: {"model": Problem, "description": "no such trial"}}


def day_range(date_from: dt.date | None, date_to: dt.date | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``from`` and ``to`` dates (inclusive, the station's local days) as [start, end) times.

    ``to`` before ``from`` is an empty range (no trials), not an error.
    """
    # dates beyond any trial's (year 1, year 9999) are no limit, rather than a time out of range
    start = (dt.datetime.combine(date_from, dt.time.min).astimezone()
             if date_from is not None and date_from.year >= 1900 else None)
    end = (dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min).astimezone()
           if date_to is not None and date_to.year < 9000 else None)
    if date_to is not None and date_to.year < 1900:
        end = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)  # before any trial
    if date_from is not None and date_from.year >= 9000:
        start = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
    return start, end


DateFrom = Annotated[dt.date | None, Query(alias="from", description="first day (ISO date, e.g. 2025-01-31)")]
DateTo = Annotated[dt.date | None, Query(alias="to", description="last day, included (ISO date)")]


@router.get("", response_model=list[TrialPublic], summary="Trials with their state and metrics",
            responses={404: {"model": Problem, "description": "no patient with that code"}})
def trials_list(session: SessionDep, patient: Annotated[PatientCode | None, Query()] = None,
                date_from: DateFrom = None, date_to: DateTo = None,
                state: Annotated[TrialState | None, Query()] = None) -> Any:
    """Oldest first; of one patient with ``?patient=CODE``, within ``from``..``to`` (dates, inclusive)."""
    start, end = day_range(date_from, date_to)
    trials = list_trials(session, patient, state=state, started_from=start, started_before=end)
    return [trial_summary(t) for t in trials]


@router.get("/{trial_id}", response_model=TrialPublic, summary="One trial, metrics as in the analyze output",
            responses=_NOT_FOUND)
def trials_get(trial_id: TrialId, session: SessionDep) -> Any:
    return trial_summary(get_trial(session, trial_id))


@router.patch("/{trial_id}", response_model=TrialPublic, summary="Grade a trial, add notes", responses=_NOT_FOUND)
def trials_update(trial_id: TrialId, body: TrialUpdate, session: SessionDep, _: CsrfHeader) -> Any:
    trial = update_trial(session, trial_id, grade=body.grade, notes=body.notes)
    return trial_summary(get_trial(session, trial.id))


@router.get("/{trial_id}/recording.csv", summary="The raw recording (DESIGN.md section 4)",
            response_class=Response,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "the recording file"},
                       404: {"model": Problem, "description": "no such trial"},
                       409: {"model": Problem, "description": "too few frames stored for a recording"}})
def trials_recording(trial_id: TrialId, request: Request, session: SessionDep, db: DatabaseDep,
                     user: CurrentUser) -> Response:
    buffer = io.StringIO()
    try:
        write_trial_recording(session, trial_id, buffer)
    except NotFound:
        raise
    except StorageError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    trial = get_trial(session, trial_id)
    code = trial.session.patient.code
    with write_session(request) as ws:
        audit(ws, "export", username=user.username, client=client_address(request),
              detail=f"recording of trial {trial_id} (patient {code})")
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{code}-trial-{trial_id}.csv"',
        "Cache-Control": "no-store"})
