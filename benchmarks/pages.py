"""Render time of the therapist's pages with 1,000 trials for one patient.

Run on demand (not collected by pytest)::

    .venv/bin/python benchmarks/pages.py [--repeats N] [--trials 1000]

Builds a throw-away station database: one patient with ``--trials`` scored
single-leg trials (left and right, ten a visit), one with as many trials in a
single visit (every row on the page), each request through the whole app
(login check, database, charts, template) with starlette's test client.
Prints the median and the slowest time per page; the target is a median under
200 ms for the patient page (issue 6).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests (synthetic trials)

from fastapi.testclient import TestClient  # noqa: E402

from station.core.config import StationSettings  # noqa: E402
from station.scoring.scores import score_single_leg_recording  # noqa: E402
from station.storage.accounts import create_user  # noqa: E402
from station.storage.db import open_database  # noqa: E402
from station.storage.models import ClinicSession, Trial, TrialState  # noqa: E402
from station.storage.patients import create_patient
from station.storage.trials import TrialWriter
from station.storage.visits import open_visit  # noqa: E402
from webui.app import create_app  # noqa: E402

PASSWORD = "benchmark password 1"
SEED = 20261121
TARGET_MS = 200.0


def scored(side: str, *, sway_mm: float, plate: tuple = ()) -> tuple:
    from tests.station.single_leg_trials import synthetic_trial

    rec, _ = synthetic_trial(stance_side=side, sway_mm=sway_mm, plate=plate, metadata={"stance_side": side})
    metrics = {"protocol": "single-leg", "stance_side": side,
               **score_single_leg_recording(rec, stance_side=side, lowpass_hz=10.0)}
    return rec, metrics


def build(db, *, code: str, n_trials: int, per_visit: int, templates: list, rec=None) -> tuple[int | None, int]:
    """The patient, its visits and trials (metrics varied from the templates); (a trial id, a visit id)."""
    rng = np.random.default_rng(SEED)
    with db.sessions() as s:
        create_patient(s, code, birth_year=1955, sex="female", affected_side="right")
    start = dt.datetime(2024, 1, 8, 9, 0, tzinfo=dt.UTC)
    n_visits = -(-n_trials // per_visit)
    made = 0
    last_visit = None
    with db.sessions() as s:
        pid = open_visit(s, code, started_at=start).patient_id
    with db.write() as s:
        visits = []
        for v in range(n_visits):
            visit = ClinicSession(patient_id=pid, started_at=start + dt.timedelta(days=3 * v), clinician="bench")
            s.add(visit)
            visits.append(visit)
        s.flush()
        for visit in visits:
            for k in range(min(per_visit, n_trials - made)):
                side = "left" if k % 2 == 0 else "right"
                base = templates[(k // 2) % len(templates)][side]
                m = {**base, "hold_time_s": float(min(30.0, base["hold_time_s"] * rng.uniform(0.8, 1.1))),
                     "cop": {**base["cop"], "mean_velocity_mm_s": base["cop"]["mean_velocity_mm_s"]
                             * float(rng.uniform(0.8, 1.2))}}
                s.add(Trial(session_id=visit.id, state=TrialState.COMPLETE, protocol="single-leg", stance_side=side,
                            metrics=m, started_at=visit.started_at + dt.timedelta(minutes=2 * k), sample_rate_hz=80.0,
                            plate_ml_mm=400.0, plate_ap_mm=300.0, feet_ml_mm=200.0, plate_source="simulated",
                            n_frames=0, duration_s=37.3))
                made += 1
        s.flush()
        last_visit = visits[-1].id
    if rec is None:
        return None, last_visit
    # one trial with its recording, in the last visit, for the trial page
    metrics = templates[0]["right"]
    writer = TrialWriter.start(db.sessions, session_id=last_visit, protocol="single-leg", stance_side="right",
                               sample_rate_hz=rec.sample_rate_hz, geometry=rec.geometry, plate_source="simulated",
                               started_at=start + dt.timedelta(days=3 * (n_visits - 1), hours=1), time_origin_s=0.0)
    writer.add_many((float(t), f) for t, f in zip(rec.t_s, rec.forces_n))
    writer.finish("complete", metrics)
    return writer.trial_id, last_visit


def median_ms(client: TestClient, path: str, *, repeats: int) -> tuple[float, float]:
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200
    return statistics.median(times), max(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed requests per page (default 15)")
    parser.add_argument("--trials", type=int, default=1000, help="trials of the patient (default 1000)")
    args = parser.parse_args(argv)
    repeats = max(3, args.repeats)
    templates, recordings = [], {}
    for sway, plate in ((2.0, ()), (3.0, ((14.0, 0.5, 50.0),)), (2.5, ((20.0, 0.8, 40.0),))):
        pair = {}
        for side in ("left", "right"):
            rec, pair[side] = scored(side, sway_mm=sway if side == "left" else sway * 1.6,
                                     plate=plate if side == "right" else ())
            recordings.setdefault(side, rec)
        templates.append(pair)
    with tempfile.TemporaryDirectory() as tmp:
        settings = StationSettings(data_dir=Path(tmp) / "data")
        db = open_database(settings.database_url, data_dir=settings.data_dir)
        t0 = time.perf_counter()
        trial_id, visit_id = build(db, code="B-1000", n_trials=args.trials, per_visit=10, templates=templates,
                                   rec=recordings["right"])
        build(db, code="B-0001", n_trials=args.trials, per_visit=args.trials, templates=templates)
        built_s = time.perf_counter() - t0
        with db.write() as s:
            create_user(s, "bench", PASSWORD)
        app = create_app(settings, db=db)
        rows = []
        with TestClient(app, base_url="http://localhost") as client:
            r = client.post("/api/v1/login", json={"username": "bench", "password": PASSWORD})
            assert r.status_code == 200, r.text
            for label, path in (
                    (f"patient page, {args.trials} trials in {-(-args.trials // 10)} visits", "/patients/B-1000"),
                    (f"patient page, {args.trials} trials in 1 visit (all rows)", "/patients/B-0001"),
                    (f"patient page, all {-(-args.trials // 10)} visits shown", "/patients/B-1000?visits=all"),
                    ("patients list", "/patients"),
                    ("trial page (37 s recording, 4 charts)", f"/trials/{trial_id}"),
                    ("visit report, HTML", f"/sessions/{visit_id}/report"),
                    ("visit report, PDF", f"/sessions/{visit_id}/report.pdf")):
                med, worst = median_ms(client, path, repeats=repeats)
                rows.append((label, med, worst))
        db.close()
    print(f"# pages: {platform.machine()} {platform.python_implementation()} {platform.python_version()}, "
          f"median of {repeats} requests (database built in {built_s:.1f} s)")
    width = max(len(r[0]) for r in rows)
    print(f"{'page':<{width}}  {'median ms':>9}  {'max ms':>7}")
    for label, med, worst in rows:
        print(f"{label:<{width}}  {med:9.1f}  {worst:7.1f}")
    slow = rows[0][1] >= TARGET_MS or rows[1][1] >= TARGET_MS
    print(f"target: the patient page with {args.trials} trials under {TARGET_MS:.0f} ms: "
          + ("MISSED" if slow else "met"))
    return 1 if slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
