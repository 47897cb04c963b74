"""Live trials on the plate: ``POST /tests``, ``GET /tests/current``, ``POST /tests/current/abort``.

The station's :class:`~station.clinic.controller.TrialController` runs one trial at a
time; these routes start it, watch it and abort it (503 when the station has
no controller, e.g. the plate is not running).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from station.clinic.controller import TrialBusy
from station.storage.values import NotFound
from webui.deps import CsrfHeader, CurrentUser, TrialsDep
from webui.models import AbortResult, LiveTrial, Problem, TestStart, TestStarted

router = APIRouter(prefix="/tests", tags=["live tests"],
                   responses={503: {"model": Problem, "description": "live trials are not available"}})


@router.post("", response_model=TestStarted, status_code=201, summary="Start a trial on the plate",
             responses={404: {"model": Problem, "description": "no such patient"},
                        409: {"model": Problem, "description": "a trial is already running"}})
def tests_start(body: TestStart, controller: TrialsDep, user: CurrentUser, _: CsrfHeader) -> Any:
    """``protocol``: ``single-leg`` (give ``stance_side``), ``quiet-stance`` or ``drill:<name>``.

    Returns at once with the new trial's id; follow it with ``GET /tests/current``.
    """
    try:
        trial_id = controller.start(patient_code=body.patient, protocol=body.protocol,
                                    stance_side=body.stance_side.value if body.stance_side else None,
                                    params=body.params)
    except TrialBusy as exc:
        raise HTTPException(status_code=409, detail=str(exc) or "a trial is already running") from None
    except NotFound:
        raise
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return {"trial_id": int(trial_id)}


@router.get("/current", response_model=LiveTrial, summary="The running trial's state")
def tests_current(controller: TrialsDep) -> Any:
    return controller.snapshot().as_dict()


@router.post("/current/abort", response_model=AbortResult, summary="Abort the running trial")
def tests_abort(controller: TrialsDep, user: CurrentUser, _: CsrfHeader) -> Any:
    """``aborted`` is false when no trial was running."""
    return {"aborted": bool(controller.abort(f"aborted from the web page by {user.username}"))}
