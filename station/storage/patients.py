"""Patients: create, find, list and change them (repository functions: one job each, committed).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from station.storage.models import (
    AffectedSide,
    ClinicSession,
    Patient,
    Sex,
    Trial,
)
from station.storage.values import (
    HEIGHT_RANGE_CM,
    MIN_BIRTH_YEAR,
    Conflict,
    InvalidValue,
    NotFound,
    as_enum,
    plain_json,
    validate_patient_code,
)

__all__ = [
    "PatientOverview",
    "patient_codes",
    "patient_overview",
    "PATIENT_FIELDS",
    "create_patient",
    "find_patient",
    "get_patient",
    "list_patients",
    "patient_trial_counts",
    "update_patient",
]


# -- patients ------------------------------------------------------------------------------


def find_patient(session: Session, code: str) -> Patient | None:
    return session.scalar(select(Patient).where(func.lower(Patient.code) == code.strip().lower()))


def _check_birth_year(birth_year: Any) -> None:
    if birth_year is not None:
        this_year = dt.date.today().year
        if isinstance(birth_year, bool) or not isinstance(birth_year, (int, np.integer)):
            raise InvalidValue(f"birth_year must be a whole year, got {birth_year!r}")
        if not MIN_BIRTH_YEAR <= int(birth_year) <= this_year:
            raise InvalidValue(f"birth_year {birth_year} is not between {MIN_BIRTH_YEAR} and {this_year}")


def _check_height(height_cm: Any) -> None:
    if height_cm is not None:
        try:
            h = float(height_cm)
        except (TypeError, ValueError):
            h = math.nan
        lo, hi = HEIGHT_RANGE_CM
        if not (math.isfinite(h) and lo <= h <= hi):
            raise InvalidValue(f"height_cm {height_cm!r} is not a height between {lo:g} and {hi:g} cm")


def create_patient(session: Session, code: str, *, birth_year: int | None = None, sex: Sex | str | None = None,
                   height_cm: float | None = None, affected_side: AffectedSide | str | None = None,
                   notes: str = "") -> Patient:
    """Add a patient. :class:`InvalidValue` for a bad field, :class:`Conflict` when the code is taken (any case)."""
    c = validate_patient_code(code)
    _check_birth_year(birth_year)
    _check_height(height_cm)
    if find_patient(session, c) is not None:
        raise Conflict(f"patient code {c!r} is already taken")
    patient = Patient(
        code=c, birth_year=None if birth_year is None else int(birth_year), sex=as_enum(Sex, sex, "sex"),
        height_cm=None if height_cm is None else float(height_cm),
        affected_side=as_enum(AffectedSide, affected_side, "affected_side"), notes=str(notes or ""),
    )
    session.add(patient)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"patient code {c!r} is already taken") from None
    return patient


def get_patient(session: Session, code: str) -> Patient:
    """The patient with this code (ignoring case); :class:`NotFound` otherwise."""
    patient = find_patient(session, str(code))
    if patient is None:
        raise NotFound(f"no patient with code {str(code).strip()!r}")
    return patient


def list_patients(session: Session) -> list[Patient]:
    """Every patient, by code."""
    return list(session.scalars(select(Patient).order_by(func.lower(Patient.code))))


#: the fields :func:`update_patient` changes
PATIENT_FIELDS = ("birth_year", "sex", "height_cm", "affected_side", "notes", "programme")


def update_patient(session: Session, code: str, **changes: Any) -> Patient:
    """Change some of a patient's fields (:data:`PATIENT_FIELDS`; None clears one, ``notes`` becomes "").

    The code itself never changes (it is how exports and other tools know the patient).
    """
    unknown = sorted(set(changes) - set(PATIENT_FIELDS))
    if unknown:
        raise InvalidValue(f"cannot change {', '.join(unknown)} of a patient (only {', '.join(PATIENT_FIELDS)})")
    patient = get_patient(session, code)
    if "birth_year" in changes:
        _check_birth_year(changes["birth_year"])
        patient.birth_year = None if changes["birth_year"] is None else int(changes["birth_year"])
    if "height_cm" in changes:
        _check_height(changes["height_cm"])
        patient.height_cm = None if changes["height_cm"] is None else float(changes["height_cm"])
    if "sex" in changes:
        patient.sex = as_enum(Sex, changes["sex"], "sex")
    if "affected_side" in changes:
        patient.affected_side = as_enum(AffectedSide, changes["affected_side"], "affected_side")
    if "notes" in changes:
        patient.notes = str(changes["notes"] or "")
    if "programme" in changes:
        programme = changes["programme"]
        if programme is not None and not isinstance(programme, Mapping):
            raise InvalidValue("programme must be a mapping (a JSON object) or null")
        patient.programme = None if programme is None else plain_json(programme, what="programme")
    session.commit()
    return patient


def patient_trial_counts(session: Session) -> dict[int, tuple[int, dt.datetime | None]]:
    """For each patient id with trials: (number of trials, when the last one started)."""
    rows = session.execute(
        select(ClinicSession.patient_id, func.count(Trial.id), func.max(Trial.started_at))
        .join(Trial, Trial.session_id == ClinicSession.id).group_by(ClinicSession.patient_id)).all()
    result = {}
    for patient_id, n, last in rows:
        if isinstance(last, str):  # an aggregate over a UTC column comes back as SQLite text
            last = dt.datetime.fromisoformat(last)
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=dt.UTC)
        result[int(patient_id)] = (int(n), last)
    return result


class PatientOverview(NamedTuple):
    """One line of the patient list: the patient, their visits, trials and the start of the latest trial."""

    patient: Patient
    visits: int
    trials: int
    last_trial_at: dt.datetime | None


def patient_overview(session: Session, *, search: str = "") -> list[PatientOverview]:
    """Every patient (whose code contains ``search``, any case), by code, with visit and trial counts."""
    visits = (select(ClinicSession.patient_id, func.count(ClinicSession.id).label("n"))
              .group_by(ClinicSession.patient_id).subquery())
    query = (select(Patient, visits.c.n).outerjoin(visits, visits.c.patient_id == Patient.id)
             .order_by(func.lower(Patient.code)))
    search = search.strip()
    if search:
        query = query.where(func.lower(Patient.code).contains(search.lower(), autoescape=True))
    counts = patient_trial_counts(session)
    rows = []
    for patient, n_visits in session.execute(query).all():
        n_trials, last = counts.get(patient.id, (0, None))
        rows.append(PatientOverview(patient, n_visits or 0, n_trials, last))
    return rows


def patient_codes(session: Session) -> list[str]:
    """Every patient's code, in alphabetical order (any case)."""
    return list(session.scalars(select(Patient.code).order_by(func.lower(Patient.code))))
