"""The patient on the station now, and the single-leg tests still to do: shared by the screen and the button.

A :class:`Visit` holds the patient's code and a
:class:`~station.clinic.single_leg_pair.SingleLegSession` (which leg is next,
repeats after an abort, the left/right summary). The patient screen walks
through it; the start button asks it to start the next test or abort the
running one (:meth:`Visit.press`); a test started from the web page is
adopted (:meth:`Visit.adopt`), so the screen follows it whoever started it.
Every ended trial comes back through :meth:`Visit.trial_ended` (the
controller's callback) and is counted for the patient it belongs to.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from station.clinic.controller import TrialBusy, TrialController
from station.clinic.single_leg_pair import SingleLegSession
from station.clinic.snapshot import TrialSnapshot
from station.protocols.single_leg import SIDES
from station.storage.db import Database
from station.storage.models import ClinicSession, Patient
from station.storage.patients import create_patient, get_patient
from station.storage.spool import Spool
from station.storage.trials import latest_metrics

__all__ = ["PatientChoice", "Visit"]


T = TypeVar("T")

@dataclass(frozen=True)
class PatientChoice:
    """A patient as the station's list shows them (code and age only: the station stores no names)."""

    code: str
    age_years: int | None
    affected_side: str | None
    last_visit: dt.date | None


class StoredGame:
    """A game being stored as a trial: :meth:`finish` ends it with the drill's metrics."""

    def __init__(self, writer: Any, controller: TrialController) -> None:
        self.writer = writer
        self.controller = controller

    @property
    def trial_id(self) -> int:
        return self.writer.trial_id

    def finish(self, drill: Any) -> None:
        from station.storage.models import TrialState

        state = TrialState.COMPLETE if drill.state == "done" else TrialState.ABORTED
        try:
            self.writer.stop(state, drill.metrics(), detail=drill.end_reason)
        finally:
            self.controller.release()


class Visit:
    """The patient being tested and their plan (left and right single-leg tests).

    Parameters
    ----------
    controller : TrialController
        Runs the trials.
    db : Database
        The patients.
    trials_per_side : int
        Scored single-leg trials wanted per leg.
    """

    def __init__(self, controller: TrialController, db: Database, *, trials_per_side: int = 1) -> None:
        self.controller = controller
        self.db = db
        self.trials_per_side = trials_per_side
        self.patient: PatientChoice | None = None
        self.plan: SingleLegSession | None = None
        self.last_snapshot: TrialSnapshot | None = None
        self._lock = threading.Lock()
        self._counted: set[int] = set()
        controller.on_finished(self.trial_ended)

    # -- patients ---------------------------------------------------------------------------
    def _offline(self) -> Spool | None:
        """The station's spool when the database is known to be unreachable (the screen then works from it)."""
        spool = self.controller.spool
        return spool if spool is not None and spool.offline else None

    def _or_spool(self, online: Callable[[], T], offline: Callable[[Spool], T]) -> T:
        """``online()`` on the database; ``offline(spool)`` while it is unreachable."""
        spool = self._offline()
        if spool is None:
            try:
                return online()
            except DBAPIError:
                if self.controller.spool is None or not self.controller.database_down():
                    raise
                spool = self.controller.spool
        return offline(spool)

    def recent_patients(self, *, limit: int = 50) -> list[PatientChoice]:
        """Patients, the most recently seen first (while the database is unreachable: those the station knows,
        by code)."""
        return self._or_spool(lambda: self._recent_patients(limit), lambda spool: [
            PatientChoice(code=code, age_years=None if by is None else dt.date.today().year - by,
                          affected_side=None, last_visit=None) for code, by in spool.patients()[:limit]])

    def _recent_patients(self, limit: int) -> list[PatientChoice]:
        with self.db.sessions() as session:
            patients = session.scalars(select(Patient)).all()
            last: dict[int, dt.datetime] = {}
            for pid, started in session.execute(select(ClinicSession.patient_id, ClinicSession.started_at)):
                if pid not in last or started > last[pid]:
                    last[pid] = started
            out = [self._choice(p, last.get(p.id)) for p in patients]
        epoch = dt.date.min
        out.sort(key=lambda c: (c.last_visit or epoch, c.code), reverse=True)
        return out[:limit]

    @staticmethod
    def _choice(patient: Patient, last: dt.datetime | None) -> PatientChoice:
        age = None if patient.birth_year is None else dt.date.today().year - patient.birth_year
        side = None if patient.affected_side is None else patient.affected_side.value
        return PatientChoice(code=patient.code, age_years=age, affected_side=side,
                             last_visit=None if last is None else last.date())

    def choose(self, code: str) -> PatientChoice:
        """Make ``code`` the patient on the station (raises NotFound); the plan starts afresh."""
        def online() -> PatientChoice:
            with self.db.sessions() as session:
                return self._choice(get_patient(session, code), None)

        def offline(spool: Spool) -> PatientChoice:
            found, by = spool.find_patient(code)
            return PatientChoice(code=found, age_years=None if by is None else dt.date.today().year - by,
                                 affected_side=None, last_visit=None)

        choice = self._or_spool(online, offline)
        with self._lock:
            self.patient = choice
            self.plan = None
        return choice

    def create(self, code: str, *, birth_year: int | None = None) -> PatientChoice:
        """Add a patient (the code is validated: pseudonymous, never a name) and choose them; while the database
        is unreachable, the station keeps the patient and uploads it later (:mod:`station.storage.spool`)."""
        def online() -> None:
            with self.db.sessions() as session:
                create_patient(session, code, birth_year=birth_year)
                session.commit()

        self._or_spool(online, lambda spool: spool.add_patient(code, birth_year=birth_year))
        return self.choose(code.strip())

    # -- the plan -------------------------------------------------------------------------------
    def plan_single_leg(self, first_side: str) -> SingleLegSession:
        """Test ``first_side`` first, then the other leg."""
        if first_side not in SIDES:
            raise ValueError(f"first_side must be 'left' or 'right', got {first_side!r}")
        if self.patient is None:
            raise ValueError("choose a patient first")
        other = "right" if first_side == "left" else "left"
        with self._lock:
            self.plan = SingleLegSession(sides=(first_side, other), trials_per_side=self.trials_per_side,
                                         geometry=self.controller.geometry, config=self.controller.single_leg,
                                         age_years=self.patient.age_years)
        return self.plan

    def next_side(self) -> str | None:
        return None if self.plan is None else self.plan.next_side()

    def start_next(self) -> int:
        """Start the plan's next single-leg test; returns the trial id.

        Raises
        ------
        ValueError
            No patient or no plan, or every leg is done.
        TrialBusy
            A trial is running.
        """
        if self.patient is None or self.plan is None:
            raise ValueError("choose a patient and the first leg first")
        side = self.plan.next_side()
        if side is None:
            raise ValueError("both legs are done")
        return self.controller.start(patient_code=self.patient.code, protocol="single-leg", stance_side=side)

    def press(self) -> str:
        """The start button: abort the running trial, or start the next planned one.

        Returns what it did: ``"aborted"``, ``"started"`` or ``"nothing"`` (no
        patient or plan, or every leg done).
        """
        if self.controller.running:
            self.controller.abort("aborted with the start button")
            return "aborted"
        try:
            self.start_next()
        except (ValueError, TrialBusy):
            return "nothing"
        return "started"

    def adopt(self, snapshot: TrialSnapshot) -> None:
        """A trial started elsewhere (the web page): follow its patient, planning its leg first."""
        code = snapshot.patient
        if not code:
            return
        if self.patient is None or self.patient.code != code:
            self.choose(code)
        side = snapshot.stance_side
        if snapshot.protocol == "single-leg" and side in SIDES and self.plan is None:
            self.plan_single_leg(side)

    def trial_ended(self, snapshot: TrialSnapshot) -> None:
        """The controller's callback: count the ended single-leg trial in the plan of its patient."""
        with self._lock:
            self.last_snapshot = snapshot
            trial_id = snapshot.trial_id
            if trial_id in self._counted or self.plan is None or self.patient is None:
                return
            if snapshot.patient != self.patient.code or snapshot.protocol != "single-leg":
                return
            self._counted.add(trial_id)
            side = snapshot.stance_side
            result = snapshot.result
            if result is not None:
                self.plan.record(result)
            elif side in SIDES:
                self.plan.record_aborted(side, str(snapshot.detail or "aborted"))

    # -- games ------------------------------------------------------------------------------------
    def programme(self) -> dict[str, Any] | None:
        """The therapist's programme for the patient (None without a patient or a programme)."""
        if self.patient is None:
            return None
        code = self.patient.code

        def online() -> dict[str, Any] | None:
            with self.db.sessions() as session:
                return get_patient(session, code).programme

        return self._or_spool(online, lambda spool: None)  # offline: the games' defaults

    def last_level(self, drill: str) -> int | None:
        """The level the patient reached in their latest complete game of ``drill`` (progression carries
        over from one session to the next), or None."""
        if self.patient is None:
            return None
        code = self.patient.code

        def online() -> dict[str, Any] | None:
            with self.db.sessions() as session:
                return latest_metrics(session, code, f"drill-{drill}")

        metrics = self._or_spool(online, lambda spool: None)
        level = (metrics or {}).get("level")
        return int(level) if isinstance(level, int) and not isinstance(level, bool) else None

    def limits(self) -> Any:
        """The patient's measured limits of stability (a :class:`station.drills.Limits`), or None."""
        if self.patient is None:
            return None
        measured = self.controller.patient_limits(self.patient.code)
        if measured is None:
            return None
        from station.drills import Limits

        return Limits.from_dict(measured)

    def record_game(self, drill: Any) -> StoredGame:
        """Store a game played on the screen as a trial of the patient, its frames as it runs.

        The plate is claimed for the game: a test cannot be started from the web page meanwhile.
        Raises ValueError without a patient, TrialBusy when a test runs.
        """
        if self.patient is None:
            raise ValueError("choose a patient first")
        from station.storage.live_writer import LiveTrialWriter

        label = f"a game ({drill.name}) on the patient screen"
        self.controller.claim(label)
        try:
            writer = LiveTrialWriter.begin(self.controller.live, self.db, patient_code=self.patient.code,
                                           protocol=f"drill-{drill.name}", stance_side=drill.stance_side,
                                           settings=drill.metadata())
        except Exception:
            self.controller.release()
            raise
        return StoredGame(writer, self.controller)

    def summary(self) -> dict[str, Any] | None:
        """The left/right summary of the plan so far (None without a plan)."""
        with self._lock:
            return None if self.plan is None else self.plan.summary()
