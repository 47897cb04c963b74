"""A trial the database refuses stays in the spool, is said once, and does not hold the others back (SQLite)."""

from __future__ import annotations

from sqlalchemy import delete

from station.core.geometry import PlateGeometry
from station.storage.db import open_database, write_session
from station.storage.models import Patient
from station.storage.patients import create_patient
from station.storage.spool import Spool
from station.storage.trials import get_trial

GEOMETRY = PlateGeometry()


def record(spool, code, n_frames=120):
    clock = [0.0]
    w = spool.start_trial(patient_code=code, protocol="single-leg", stance_side="left", sample_rate_hz=80,
                          geometry=GEOMETRY, time_origin_s=0.0, clock=lambda: clock[0])
    for i in range(n_frames):
        clock[0] = i / 80
        w.add((i / 80, [100.0 + i % 7, 101.0, 102.0, 103.0], 0))
    w.finish("complete", {"hold_time_s": 30.0, "completed": True})
    return w.trial_id


def test_a_refused_trial_is_kept_said_once_and_the_next_ones_go_on(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'clinic.db'}", station_id="room-a")
    spool = Spool.open(tmp_path / "spool", station_id="room-a")
    try:
        with db.sessions() as s:
            create_patient(s, "P-001")
            create_patient(s, "P-404")
        spool.reserve_ids(db, 5)
        spool.remember_patients(db)
        orphan = record(spool, "P-404")
        kept = record(spool, "P-001")
        with write_session(db.sessions) as s:  # deleted meanwhile, at another station
            s.execute(delete(Patient).where(Patient.code == "P-404"))
        spool.online = True
        first = spool.upload(db)
        assert first.error == "" and first.trials == [kept]
        assert len(first.held) == 1 and "no patient 'P-404'" in first.held[0]
        with db.sessions() as s:
            assert get_trial(s, kept).n_frames == 120
        assert spool.waiting() == 1 and spool.trial(orphan) is not None  # nothing lost
        status = spool.status()
        assert status["held_trials"] == 1 and status["message"] == "1 trial cannot be uploaded (see the notices)"
        assert any("no patient 'P-404'" in n["message"] and "ask the administrator" in n["message"]
                   for n in status["notices"])
        again = spool.upload(db)  # tried again at every upload, said once
        assert again.trials == [] and len(again.held) == 1
        assert sum("P-404" in n["message"] for n in spool.notices()) == 1
        with db.sessions() as s:  # the administrator adds the patient back: the trial goes
            create_patient(s, "P-404")
        last = spool.upload(db)
        assert last.trials == [orphan] and last.held == [] and spool.waiting() == 0
        assert spool.status()["held_trials"] == 0 and spool.status()["message"] == ""
    finally:
        spool.close()
        db.close()
