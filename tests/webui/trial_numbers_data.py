"""Stored trials for the tests of what a trial's numbers cover (the sway window, quality, support limit).

``seed_visit(db, code, ...)`` stores one visit of patient ``code``: a left and a right single-leg trial,
scored by the station's own scoring on a synthetic recording, and optionally an aborted one (a baseline,
the weight transfer, then stopped: no metrics). ``style``:

``new``
    the metrics carry ``cop_window``, ``quality`` (two concerns, or none) and
    ``support.detection_limit_pct_bw`` (added here when the scoring does not give them yet, so the pages
    are tested against the contract whatever the scoring's version);
``old``
    a trial stored before those fields existed: they are taken out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from station.scoring.analyze import prepare_trial
from station.scoring.scores import score_single_leg_recording
from station.storage.db import Database
from station.storage.patients import create_patient, get_patient
from station.storage.trials import TrialWriter
from station.storage.values import NotFound
from station.storage.visits import open_visit
from tests.station.single_leg_trials import synthetic_trial

QUALITY = [
    {"name": "drift_during_hold",
     "message": "The force drifted by 9 N during the hold: the plate may need re-zeroing."},
    {"name": "support_near_limit", "message": "Hand support was close to what this trial can detect."},
]
DETECTION_LIMIT = 1.2


def _cop_window(rec: Any, metrics: dict[str, Any]) -> dict[str, Any]:
    """The hold window as the analysis resamples it (onset to onset + hold), with its sample count."""
    import numpy as np

    t = prepare_trial(rec).t_s
    start, hold = float(metrics["onset_s"]), float(metrics["hold_time_s"])
    n = int(np.count_nonzero((t >= start - 1e-9) & (t < start + hold - 1e-9)))
    return {"start_s": start, "duration_s": hold, "n_samples": n}


def scored_metrics(rec: Any, side: str, *, style: str, quality: list[dict[str, str]] | None = None
                   ) -> dict[str, Any]:
    metrics = {"protocol": "single-leg", **score_single_leg_recording(rec, stance_side=side, lowpass_hz=10.0)}
    if style == "new":
        if "cop_window" not in metrics:
            metrics["cop_window"] = _cop_window(rec, metrics)
        metrics["quality"] = list(QUALITY if quality is None else quality)
        metrics["support"] = {**metrics["support"], "detection_limit_pct_bw": DETECTION_LIMIT}
    else:
        for key in ("cop_window", "quality"):
            metrics.pop(key, None)
        metrics["support"] = {k: v for k, v in metrics["support"].items() if k != "detection_limit_pct_bw"}
    return metrics


def store(db: Database, visit_id: int, side: str, *, started_at: dt.datetime, style: str = "new",
          state: str = "complete", quality: list[dict[str, str]] | None = None, notes: str = "",
          **synthetic: Any) -> int:
    """One single-leg trial on the simulated plate; ``state="aborted"`` stores it with no metrics."""
    rec, _onset = synthetic_trial(stance_side=side, metadata={"stance_side": side}, **synthetic)
    metrics = scored_metrics(rec, side, style=style, quality=quality) if state == "complete" else None
    writer = TrialWriter.start(db.sessions, session_id=visit_id, protocol="single-leg", stance_side=side,
                               sample_rate_hz=rec.sample_rate_hz, geometry=rec.geometry, plate_source="simulated",
                               started_at=started_at, notes=notes, time_origin_s=0.0)
    writer.add_many((float(t), f) for t, f in zip(rec.t_s, rec.forces_n))
    writer.finish(state, metrics, detail="hold time reached" if state == "complete" else "aborted by the operator")
    return writer.trial_id


def seed_visit(db: Database, code: str, *, style: str = "new", aborted: bool = True,
               when: dt.datetime | None = None, right_sway_mm: float = 5.0,
               quality: list[dict[str, str]] | None = None) -> dict[str, int]:
    """A visit with a left and a right trial (the right one sways more and has a touchdown and support),
    and an aborted left trial when ``aborted``; ``{"visit", "left", "right", "aborted"}`` ids."""
    when = when or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    with db.sessions() as s:
        try:
            get_patient(s, code)
        except NotFound:
            create_patient(s, code, birth_year=1958, sex="female", affected_side="right")
    with db.sessions() as s:
        visit_id = open_visit(s, code, started_at=when, clinician="therapist").id
    ids = {"visit": visit_id}
    ids["left"] = store(db, visit_id, "left", started_at=when + dt.timedelta(minutes=1), style=style,
                        quality=quality, sway_mm=2.0, lateral_mm=4.0)
    ids["right"] = store(db, visit_id, "right", started_at=when + dt.timedelta(minutes=3), style=style,
                         quality=quality, sway_mm=right_sway_mm, plate=((18.0, 0.6, 50.0),),
                         support=((6.0, 3.0, 5.0),), notes="hip dropped")
    if aborted:
        ids["aborted"] = store(db, visit_id, "left", started_at=when + dt.timedelta(minutes=5), state="aborted",
                               after_s=2.0, transition_s=0.8)
    return ids
