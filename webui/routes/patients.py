"""Patients: ``GET /patients``, ``POST /patients``, ``GET /patients/{code}``, ``PATCH /patients/{code}``.

Patients are known by their pseudonymous code only; the code is in the URLs and
exports, never a name.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError

from station.storage.models import Patient
from station.storage.patients import (
    create_patient,
    get_patient,
    list_patients,
    patient_trial_counts,
    update_patient,
)
from station.storage.spool import database_reachable
from webui.deps import CsrfHeader, DatabaseDep, OptionalSpool, SessionDep
from webui.models import PatientCode, PatientCreate, PatientPublic, PatientUpdate, Problem

router = APIRouter(prefix="/patients", tags=["patients"])

#: the ``{code}`` of a patient's URL: checked like a new code (422 with the reason otherwise)
CodeInPath = Annotated[PatientCode, PathParam(description="the patient's pseudonymous code, e.g. P-001")]

_NOT_FOUND = {404: {"model": Problem, "description": "no patient with that code"}}


def patient_public(patient: Patient, counts: tuple[int, Any] | None = None) -> dict[str, Any]:
    n, last = counts or (0, None)
    return {
        "code": patient.code, "birth_year": patient.birth_year, "sex": patient.sex, "height_cm": patient.height_cm,
        "affected_side": patient.affected_side, "notes": patient.notes, "created_at": patient.created_at,
        "programme": patient.programme, "n_trials": n, "last_trial_at": last,
    }


@router.get("", response_model=list[PatientPublic], summary="Every patient, by code")
def patients_list(session: SessionDep) -> Any:
    counts = patient_trial_counts(session)
    return [patient_public(p, counts.get(p.id)) for p in list_patients(session)]


@router.post("", response_model=PatientPublic, status_code=201, summary="Add a patient",
             responses={409: {"model": Problem, "description": "the code is taken (codes ignore case)"}})
def patients_create(body: PatientCreate, session: SessionDep, db: DatabaseDep, spool: OptionalSpool,
                    _: CsrfHeader) -> Any:
    """While the database is unreachable, the patient is kept on this station (``offline``: true) and
    uploaded when it answers; a code made in two rooms meanwhile is resolved then (docs/web.md)."""
    fields = dict(birth_year=body.birth_year, sex=body.sex, height_cm=body.height_cm,
                  affected_side=body.affected_side, notes=body.notes)
    offline = spool is not None and spool.offline  # known to be down: no waiting for a connection
    if not offline:
        try:
            return patient_public(create_patient(session, body.code, **fields))
        except DBAPIError:
            session.rollback()
            if spool is None or database_reachable(db):
                raise
    row = spool.add_patient(body.code, **fields)  # type: ignore[union-attr]
    return {**{k: row[k] for k in ("code", "birth_year", "sex", "height_cm", "affected_side", "notes")},
            "created_at": row["created_at"], "offline": True}


@router.get("/{code}", response_model=PatientPublic, summary="One patient", responses=_NOT_FOUND)
def patients_get(code: CodeInPath, session: SessionDep) -> Any:
    patient = get_patient(session, code)
    return patient_public(patient, patient_trial_counts(session).get(patient.id))


@router.patch("/{code}", response_model=PatientPublic, summary="Change a patient's details", responses=_NOT_FOUND)
def patients_update(code: CodeInPath, body: PatientUpdate, session: SessionDep, _: CsrfHeader) -> Any:
    changes = body.model_dump(exclude_unset=True)
    patient = update_patient(session, code, **changes)
    return patient_public(patient, patient_trial_counts(session).get(patient.id))


class ProgrammeItemIn(BaseModel):
    """One drill of a programme (the drill's own parameters are checked by the drill)."""

    model_config = ConfigDict(extra="forbid")

    drill: Literal["reach", "limits", "symmetry", "rhythm", "single-leg-hold"]
    duration_s: float | None = Field(None, gt=0, description="how long, in s (or give rounds)")
    rounds: int | None = Field(None, ge=1, description="how many rounds (or give duration_s)")
    stance_side: Literal["left", "right"] | None = Field(
        None, description="the stance leg (single-leg hold: required) or the leg to load (symmetry)")
    params: dict[str, Any] = Field(default_factory=dict, description="the drill's own parameters")
    feedback: Literal["continuous", "intermittent", "summary"] = "continuous"
    level: int | None = Field(None, ge=1, le=10, description="starting difficulty")


class ProgrammeIn(BaseModel):
    """A patient's home programme: the drills in order (station.drills.programme)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=200)
    level_bounds: tuple[int, int] = Field((1, 10), description="lowest and highest level progression may reach")
    items: list[ProgrammeItemIn] = Field(min_length=1, max_length=50)


@router.get("/{code}/programme", response_model=dict[str, Any] | None, responses=_NOT_FOUND,
            summary="The patient's home programme of drills (null when none is set)")
def programme_get(code: CodeInPath, session: SessionDep) -> Any:
    return get_patient(session, code).programme


@router.put("/{code}/programme", response_model=dict[str, Any], responses={
    **_NOT_FOUND, 422: {"model": Problem, "description": "a bad programme: the message names the item and the value "
                                                           "(e.g. a single-leg hold without its stance_side)"}},
    summary="Set the patient's home programme: which drills, how long, which side, what feedback")
def programme_set(code: CodeInPath, body: ProgrammeIn, session: SessionDep, _: CsrfHeader) -> Any:
    """For example ``{"name": "week 2", "items": [{"drill": "reach", "rounds": 2}, {"drill": "single-leg-hold",
    "rounds": 3, "stance_side": "right"}]}``. Rules the schema cannot say (a single-leg hold needs its side;
    ``duration_s`` or ``rounds``, not both; the drill's parameters) are checked before it is stored."""
    from station.drills.programme import Programme

    data = body.model_dump(exclude_none=True)
    data["level_bounds"] = list(body.level_bounds)
    try:
        programme = Programme.from_dict(data).to_dict()
    except (ValueError, TypeError) as exc:
        raise HTTPException(status_code=422, detail=f"programme: {exc}") from None
    update_patient(session, code, programme=programme)
    return programme
