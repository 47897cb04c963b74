"""Helpers for the web tests: a real app on a real SQLite database, and a logged-in client.

``make_app(tmp_path, *, live=None, trials=None, **web) -> (app, db)``
    The app of :func:`webui.app.create_app` on a fresh database in
    ``tmp_path/"data"`` (``db``, a :class:`station.storage.db.Database`, is the
    test's to close; ``close_app(app)`` does it). ``web`` overrides
    ``WebSettings`` fields (``https=True``, ``login_max_failures=3``...).
``login(client, username="therapist", password=PASSWORD) -> csrf_token``
    Creates the account when it does not exist yet, logs the client in through
    ``POST /api/v1/login`` (the session cookie stays in the client) and returns
    the CSRF token for ``headers={"X-CSRF-Token": token}``.
``add_user(db, username, password=PASSWORD)``
    Just the account.
``csrf(token) -> {"X-CSRF-Token": token}``
``form_login(client, username="therapist", password=PASSWORD, next="/") -> response``
    Logs in through the HTML form (GET /login for the form's token, then POST).
``add_patient(db, code, **fields)``, ``seed_trials(db, code, n) -> ids`` (bulk, with realistic
single-leg metrics, no frames), ``add_recorded_trial(db, code, n_frames=160) -> id`` (frames stored
by the real TrialWriter)
    Data to show.
``FakeTrials``
    A stand-in live-trial controller: ``make_app(tmp_path, trials=FakeTrials())``.

Typical use::

    def test_something(tmp_path):
        app, db = make_app(tmp_path)
        with TestClient(app, base_url="http://localhost") as client:
            token = login(client)
            r = client.post("/api/v1/patients", json={"code": "P-001"}, headers=csrf(token))
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from station.clinic.snapshot import TrialSnapshot
from station.core.config import StationSettings, WebSettings
from station.storage.accounts import create_user, get_user
from station.storage.db import Database, open_database
from station.storage.values import NotFound
from webui.app import create_app

__all__ = ["PASSWORD", "FakeTrials", "add_patient", "add_recorded_trial", "add_user", "close_app", "csrf", "form_login",
           "login", "make_app", "make_settings", "seed_trials", "single_leg_metrics"]

PASSWORD = "correct horse battery staple"


def make_settings(tmp_path: Path, **web: Any) -> StationSettings:
    return StationSettings(data_dir=Path(tmp_path) / "data", web=WebSettings(**web))


def make_app(tmp_path: Path, *, live: Any = None, trials: Any = None, **web: Any) -> tuple[FastAPI, Database]:
    settings = make_settings(tmp_path, **web)
    db = open_database(settings.database_url, data_dir=settings.data_dir)
    app = create_app(settings, live, db=db, trials=trials)
    return app, db


def close_app(app: FastAPI) -> None:
    app.state.db.close()


def add_user(db: Database, username: str = "therapist", password: str = PASSWORD) -> None:
    with db.write() as session:
        try:
            get_user(session, username)
        except NotFound:
            create_user(session, username, password)


def csrf(token: str) -> dict[str, str]:
    return {"X-CSRF-Token": token}


def login(client: Any, username: str = "therapist", password: str = PASSWORD) -> str:
    add_user(client.app.state.db, username, password)
    r = client.post("/api/v1/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["csrf_token"]


def login_form_token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no csrf_token field in the page"
    return m.group(1)


def form_login(client: Any, username: str = "therapist", password: str = PASSWORD, next: str = "/",
               create: bool = True) -> Any:
    if create:
        add_user(client.app.state.db, username, password)
    page = client.get("/login", params={"next": next})
    return client.post("/login", data={"username": username, "password": password, "next": next,
                                       "csrf_token": login_form_token(page.text)}, follow_redirects=False)


# -- stored trials ----------------------------------------------------------------------------------


def single_leg_metrics(rng: Any, side: str = "left") -> dict[str, Any]:
    """Scores shaped like the analyze output of a single-leg test (DESIGN.md section 5), random but plausible."""
    hold = float(min(30.0, rng.uniform(4.0, 40.0)))
    completed = hold >= 30.0
    n_td = 0 if completed else int(rng.integers(1, 3))
    return {
        "protocol": "single-leg", "stance_side": side, "sample_rate_hz": 80.0, "duration_s": hold + 5.0,
        "n_samples": int((hold + 5.0) * 80), "body_weight_n": float(rng.normal(700, 80)),
        "onset_s": float(rng.uniform(2.0, 4.0)), "hold_time_s": hold, "completed": completed,
        "touchdowns": [{"t_s": float(rng.uniform(5, 30)), "duration_s": 0.4, "where": "plate"} for _ in range(n_td)],
        "support": {"mean_pct_bw": float(rng.uniform(0, 5)), "peak_pct_bw": float(rng.uniform(0, 10)),
                    "time_s": float(rng.uniform(0, 3)), "episodes": []},
        "ml_offset_mm": float(rng.normal(5, 4)), "ml_offset_drift_mm_s": float(rng.normal(0, 0.2)),
        "cop": {"path_length_mm": float(rng.uniform(300, 1500)), "mean_velocity_mm_s": float(rng.uniform(10, 50)),
                "ml_range_mm": float(rng.uniform(10, 60)), "ap_range_mm": float(rng.uniform(10, 60)),
                "ml_rms_mm": float(rng.uniform(2, 12)), "ap_rms_mm": float(rng.uniform(2, 12)),
                "ellipse95_area_mm2": float(rng.uniform(100, 2000))},
        "hold_s": 30.0, "end_on_failure": False, "end_reason": "completed" if completed else "touchdown",
        "wrong_side_lifts_s": [], "lowpass_hz": 10.0, "warnings": [],
    }


def add_patient(db: Database, code: str = "P-001", **fields: Any) -> None:
    from station.storage.patients import create_patient

    with db.sessions() as session:
        create_patient(session, code, **fields)


def seed_trials(db: Database, code: str, n: int, *, start: Any = None, every_s: float = 3600.0,
                seed: int = 0, per_visit: int = 6) -> list[int]:
    """``n`` complete single-leg trials (no frames) of patient ``code`` (created when missing), bulk-inserted.

    They start at ``start`` (default 2024-01-01 08:00 UTC), ``every_s`` apart, alternate left and right,
    ``per_visit`` to a clinic visit. Returns their ids.
    """
    import datetime as dt

    import numpy as np
    from sqlalchemy import insert, select

    from station.storage.models import ClinicSession, Patient, Trial
    from station.storage.patients import create_patient

    rng = np.random.default_rng(seed)
    start = start or dt.datetime(2024, 1, 1, 8, 0, tzinfo=dt.UTC)
    with db.sessions() as session:
        patient = session.scalar(select(Patient).where(Patient.code == code))
        if patient is None:
            patient = create_patient(session, code, birth_year=1960)
        patient_id = patient.id
        visits = []
        for i in range(0, n, per_visit):
            visit = ClinicSession(patient_id=patient_id, started_at=start + dt.timedelta(seconds=i * every_s))
            session.add(visit)
            visits.append(visit)
        session.flush()
        rows = []
        for i in range(n):
            side = "left" if i % 2 == 0 else "right"
            t0 = start + dt.timedelta(seconds=i * every_s)
            rows.append({
                "session_id": visits[i // per_visit].id, "state": "complete", "state_detail": "",
                "protocol": "single-leg", "stance_side": side, "settings": {"hold_s": 30.0},
                "metrics": single_leg_metrics(rng, side), "grade": "not_assessed", "notes": "", "calibration": None,
                "started_at": t0, "ended_at": t0 + dt.timedelta(seconds=40), "updated_at": t0,
                "sample_rate_hz": 80.0, "plate_ml_mm": 400.0, "plate_ap_mm": 300.0, "feet_ml_mm": 200.0,
                "plate_source": "simulated", "n_frames": 0, "duration_s": 40.0, "frames_dropped": 0,
            })
        ids = list(session.scalars(insert(Trial).returning(Trial.id), rows))
        session.commit()
    return ids


def add_recorded_trial(db: Database, code: str = "P-001", *, n_frames: int = 160, side: str = "left",
                       metrics: dict[str, Any] | None = None, state: str = "complete") -> int:
    """A trial with ``n_frames`` frames at 80 Hz stored through the real TrialWriter; returns its id."""
    from station.core.geometry import PlateGeometry
    from station.storage.patients import get_patient
    from station.storage.trials import TrialWriter
    from station.storage.visits import open_visit

    with db.sessions() as session:
        try:
            get_patient(session, code)
        except NotFound:
            from station.storage.patients import create_patient

            create_patient(session, code)
        visit = open_visit(session, code)
    writer = TrialWriter.start(db.sessions, session_id=visit.id, protocol="single-leg", stance_side=side,
                               sample_rate_hz=80, geometry=PlateGeometry(), plate_source="simulated")
    writer.add_many((i / 80, [170.0 + (i % 7), 171.0, 172.0, 173.0]) for i in range(n_frames))
    if state == "running":
        writer.flush()
    else:
        writer.finish(state, metrics if metrics is not None else {"hold_time_s": 12.5,
                                                                  "cop": {"path_length_mm": 400.0}})
    return writer.trial_id


class FakeTrials:
    """A stand-in for :class:`station.clinic.controller.TrialController` (the interface the API uses)."""

    def __init__(self, known_patients: tuple[str, ...] = ("P-001",)) -> None:
        self.known = {c.lower() for c in known_patients}
        self.started: list[dict[str, Any]] = []
        self.aborted: list[str] = []
        self.running = False
        self.next_id = 41

    def start(self, *, patient_code: str, protocol: str, stance_side: str | None = None,
              params: dict | None = None) -> int:
        from station.clinic.controller import TrialBusy

        if self.running:
            raise TrialBusy("a trial is already running (trial 41)")
        if patient_code.lower() not in self.known:
            raise NotFound(f"no patient with code {patient_code!r}")
        if protocol not in ("single-leg", "quiet-stance") and not protocol.startswith("drill:"):
            raise ValueError(f"unknown protocol {protocol!r}")
        if protocol == "single-leg" and stance_side not in ("left", "right"):
            raise ValueError("single-leg needs stance_side left or right")
        self.started.append({"patient_code": patient_code, "protocol": protocol, "stance_side": stance_side,
                             "params": params})
        self.running = True
        self.next_id += 1
        return self.next_id

    def abort(self, reason: str = "aborted from the web page") -> bool:
        was = self.running
        self.running = False
        if was:
            self.aborted.append(reason)
        return was

    def snapshot(self) -> TrialSnapshot:
        if not self.running:
            return TrialSnapshot()
        s = self.started[-1]
        return TrialSnapshot(running=True, trial_id=self.next_id, patient=s["patient_code"], protocol=s["protocol"],
                             stance_side=s["stance_side"], state="hold", instruction="Lift your right foot",
                             elapsed_s=4.25, events=({"kind": "onset", "t_s": 3.1, "message": "single-leg stance"},),
                             event_count=1, offline=True)
