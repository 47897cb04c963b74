"""Clinic visits: a patient's tests of one day (a ``sessions`` row).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from station.storage.models import (
    ClinicSession,
    Trial,
    utc_now,
)
from station.storage.patients import get_patient
from station.storage.values import NotFound

__all__ = [
    "get_visit",
    "patient_history",
    "open_visit",
    "todays_visit",
]


# -- visits --------------------------------------------------------------------------------


def open_visit(session: Session, patient_code: str, *, clinician: str = "", notes: str = "",
               started_at: dt.datetime | None = None) -> ClinicSession:
    """Start a new clinic visit (a ``sessions`` row) for the patient."""
    patient = get_patient(session, patient_code)
    visit = ClinicSession(patient_id=patient.id, clinician=str(clinician or ""), notes=str(notes or ""),
                          started_at=started_at or utc_now())
    session.add(visit)
    session.commit()
    return visit


def todays_visit(session: Session, patient_code: str, *, now: dt.datetime | None = None) -> ClinicSession:
    """The patient's visit started today (local date), or a new one."""
    now = now or utc_now()
    patient = get_patient(session, patient_code)
    latest = session.scalar(select(ClinicSession).where(ClinicSession.patient_id == patient.id)
                            .order_by(ClinicSession.started_at.desc(), ClinicSession.id.desc()).limit(1))
    if latest is not None and latest.started_at.astimezone().date() == now.astimezone().date():
        return latest
    return open_visit(session, patient.code, started_at=now)


def get_visit(session: Session, visit_id: int) -> ClinicSession:
    """The visit with that id; :class:`NotFound` otherwise."""
    visit = session.get(ClinicSession, visit_id)
    if visit is None:
        raise NotFound(f"no visit {visit_id}")
    return visit


def patient_history(session: Session, patient_id: int) -> tuple[list[ClinicSession], list[Trial]]:
    """A patient's visits and trials, each oldest first."""
    visits = list(session.scalars(select(ClinicSession).where(ClinicSession.patient_id == patient_id)
                                  .order_by(ClinicSession.started_at, ClinicSession.id)))
    trials = list(session.scalars(select(Trial).join(ClinicSession, Trial.session_id == ClinicSession.id)
                                  .where(ClinicSession.patient_id == patient_id)
                                  .order_by(Trial.started_at, Trial.id)))
    return visits, trials
