"""The trial controller: a live test started, performed by the simulated patient, scored and stored."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from calibration.model import simulator_calibration
from hardware.sim.plate import SimulatedPlate
from station.clinic.controller import TrialBusy, TrialController
from station.clinic.snapshot import PelvisNow, TrialSnapshot
from station.core.geometry import PlateGeometry
from station.live.pipeline import LiveStation
from station.scoring.analyze import analyze_recording
from station.signal.forces import ForcePipeline
from station.storage import open_database
from station.storage.patients import create_patient
from station.storage.trials import get_trial, trial_recording
from station.storage.values import NotFound
from tests.doubles import SimFeed

GEOMETRY = PlateGeometry()


@pytest.fixture
def db(tmp_path):
    with open_database(data_dir=tmp_path) as database:
        with database.sessions() as session:
            create_patient(session, "P-001", birth_year=1970)
            session.commit()
        yield database


def _station(seed: int, *, speed: float = 25.0) -> LiveStation:
    plate = SimulatedPlate(seed=seed, realtime=False)
    live = LiveStation(SimFeed(plate, speed=speed), ForcePipeline(simulator_calibration(), GEOMETRY))
    live.start()
    return live


#: the keys of GET /api/v1/tests/current (the API's contract), in their order; "outcome" and "detail" come
#: before "events" once a trial has ended
API_KEYS = ["running", "trial_id", "patient", "protocol", "stance_side", "state", "instruction", "elapsed_s", "status",
            "result", "stored", "error", "started_at", "offline", "pelvis", "events", "event_count"]
SINGLE_LEG_STATUS_KEYS = {"protocol", "stance_side", "state", "message", "t_s", "body_weight_n", "baseline_collected_s",
                          "countdown_remaining_s", "onset_s", "hold_elapsed_s", "hold_s", "touchdowns", "touchdown_now",
                          "supported_now"}


def test_the_idle_snapshot_as_json(db):
    """No trial yet: the API's JSON as it always was (an empty status, no outcome)."""
    live = _station(2)
    try:
        idle = TrialController(live, db, geometry=GEOMETRY).snapshot().as_dict()
    finally:
        live.stop()
    assert idle == {"running": False, "trial_id": None, "patient": None, "protocol": None, "stance_side": None,
                    "state": "idle", "instruction": "", "elapsed_s": 0.0, "status": {}, "result": None,
                    "stored": None, "error": "", "started_at": None, "offline": False, "pelvis": None, "events": [],
                    "event_count": 0}
    assert list(idle) == API_KEYS
    pelvis = replace(TrialSnapshot(), pelvis=PelvisNow(obliquity_deg=1.5, drop_deg=None, threshold_deg=2.0))
    assert pelvis.as_dict()["pelvis"] == {"obliquity_deg": 1.5, "drop_deg": None, "threshold_deg": 2.0}


def _run(controller: TrialController, **start) -> TrialSnapshot:
    trial_id = controller.start(patient_code="P-001", **start)
    assert controller.wait(60.0), "the trial did not end"
    snap = controller.snapshot()
    assert snap.trial_id == trial_id
    return snap


@pytest.mark.parametrize(("profile", "seed"), [("healthy", 11), ("weak_abductors", 12)])
def test_simulated_patient_performs_the_single_leg_test(db, profile, seed):
    live = _station(seed)
    try:
        controller = TrialController(live, db, geometry=GEOMETRY, simulated_patient=profile,
                                     rng=np.random.default_rng(seed))
        snap = _run(controller, protocol="single-leg", stance_side="right")
    finally:
        live.stop()
    assert snap.running is False and snap.outcome == "complete", snap
    result = snap.result
    assert result["stance_side"] == "right"
    if profile == "healthy":
        assert result["completed"] is True
        assert result["hold_time_s"] == pytest.approx(30.0)
        assert result["touchdowns"] == []
    else:
        assert result["completed"] is False
        assert 1 <= len(result["touchdowns"]) <= 2
        assert result["hold_time_s"] < 30.0
        assert result["support"]["peak_pct_bw"] >= 1.5
    kinds = [e["kind"] for e in snap.events]
    assert "lift_off" in kinds and "finished" in kinds
    # the HTTP API's JSON: today's keys, the ended trial's outcome and detail, the runner's status
    d = snap.as_dict()
    assert list(d) == [*API_KEYS[:-2], "outcome", "detail", "events", "event_count"]
    assert d["outcome"] == "complete" and d["detail"] == snap.detail and d["events"] == list(snap.events)
    assert set(d["status"]) == SINGLE_LEG_STATUS_KEYS and d["status"]["stance_side"] == "right"
    json.dumps(d)

    # stored complete, with the metrics, and its frames re-score to the live result (what analyze prints)
    with db.sessions() as session:
        trial = get_trial(session, snap.trial_id)
        assert trial.state.value == "complete"
        assert trial.metrics["hold_time_s"] == pytest.approx(result["hold_time_s"])
        rec = trial_recording(session, trial.id)
    again = analyze_recording(rec, protocol="single-leg", stance_side="right")
    assert _same(again, result), (again, result)


def _same(a, b) -> bool:
    """Equal, with NaN equal to NaN (the stored trial re-scores to exactly the live result)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def test_a_second_start_is_refused_and_an_abort_is_stored(db):
    live = _station(21, speed=5.0)
    try:
        controller = TrialController(live, db, geometry=GEOMETRY, simulated_patient="healthy",
                                     rng=np.random.default_rng(1))
        trial_id = controller.start(patient_code="P-001", protocol="single-leg", stance_side="left")
        with pytest.raises(TrialBusy, match=f"trial {trial_id} is running"):
            controller.start(patient_code="P-001", protocol="single-leg", stance_side="right")
        with pytest.raises(NotFound):  # an unknown patient is said so (404), not "a trial is running" (409)
            controller.start(patient_code="NOPE-1", protocol="single-leg", stance_side="right")
        assert controller.abort("patient felt dizzy")
        assert controller.wait(10.0)
        assert not controller.abort()
    finally:
        live.stop()
    snap = controller.snapshot()
    assert snap.outcome == "aborted" and snap.result is None
    assert live.trial_running is False  # re-zeroing allowed again
    with db.sessions() as session:
        trial = get_trial(session, trial_id)
        assert trial.state.value == "aborted" and trial.state_detail == "patient felt dizzy"


def test_bad_requests_name_what_is_wrong(db):
    live = _station(31)
    try:
        controller = TrialController(live, db, geometry=GEOMETRY)
        with pytest.raises(NotFound):
            controller.start(patient_code="NOPE-1", protocol="single-leg", stance_side="left")
        with pytest.raises(ValueError, match="stance_side"):
            controller.start(patient_code="P-001", protocol="single-leg", stance_side="up")
        with pytest.raises(ValueError, match="protocol"):
            controller.start(patient_code="P-001", protocol="hop")
        with pytest.raises(ValueError, match="eyes"):
            controller.start(patient_code="P-001", protocol="quiet-stance", params={"eyes": "shut"})
        assert controller.snapshot().running is False
    finally:
        live.stop()


def test_quiet_stance_with_conditions(db):
    live = _station(41, speed=40.0)
    try:
        controller = TrialController(live, db, geometry=GEOMETRY, simulated_patient="healthy")
        snap = _run(controller, protocol="quiet-stance", params={"eyes": "closed", "surface": "foam",
                                                                  "duration_s": 10.0})
    finally:
        live.stop()
    assert snap.outcome == "complete"
    assert snap.result["conditions"] == {"eyes": "closed", "surface": "foam"}
    assert snap.result["cop"]["mean_velocity_mm_s"] > 0


@pytest.mark.parametrize("drill", ["reach", "symmetry", "rhythm", "hold"])
def test_the_simulated_patient_plays_a_drill_stored_as_a_trial(db, drill):
    # x10, not x25: the player answers the metronome through the station's command channel in real
    # time, and at x25 one hiccup of a loaded machine lost a whole rhythm round (score 0)
    live = _station(51, speed=10.0)
    try:
        controller = TrialController(live, db, geometry=GEOMETRY, simulated_patient="healthy",
                                     rng=np.random.default_rng(5))
        snap = _run(controller, protocol=f"drill:{drill}", stance_side="left" if drill == "hold" else None,
                    params={"rounds": 1})
    finally:
        live.stop()
    assert snap.outcome == "complete", snap
    metrics = snap.result
    assert metrics["rounds_completed"] == 1 and metrics["score"] > 0
    with db.sessions() as session:
        trial = get_trial(session, snap.trial_id)
        assert trial.protocol == f"drill-{'single-leg-hold' if drill == 'hold' else drill}"
        assert trial.state.value == "complete" and trial.metrics["score"] == metrics["score"]
        assert trial.n_frames > 100


def test_reach_targets_use_the_limits_the_patient_measured(db):
    live = _station(61, speed=25.0)
    try:
        controller = TrialController(live, db, geometry=GEOMETRY, simulated_patient="healthy",
                                     rng=np.random.default_rng(6))
        assert controller.patient_limits("P-001") is None
        snap = _run(controller, protocol="drill:limits", params={"rounds": 1})
        measured = snap.result["limits"]
        assert controller.patient_limits("P-001") == pytest.approx(measured)
        snap = _run(controller, protocol="drill:reach", params={"rounds": 1})
    finally:
        live.stop()
    with db.sessions() as session:
        settings = get_trial(session, snap.trial_id).settings
    assert json.loads(settings["drill.limits"]) == pytest.approx(measured)


@pytest.mark.parametrize(("profile", "seed", "sign"), [("weak_abductors", 12, "positive"), ("healthy", 11, "negative"),
                                                        ("trunk_lean", 13, "negative")])
def test_the_simulated_patient_wears_a_pelvis_sensor(db, tmp_path, profile, seed, sign):
    """Issue 14: the trial carries pelvis_obliquity_deg from the simulated sensor, stored with the frames, and the
    stored trial re-scores (the analyze path) to exactly the live pelvis scores."""
    from hardware.sim.pelvis import SimulatedPelvis
    from station.core.recording import PELVIS_COLUMN

    live = _station(seed)
    pelvis = SimulatedPelvis()
    try:
        controller = TrialController(live, db, geometry=GEOMETRY, simulated_patient=profile,
                                     rng=np.random.default_rng(seed), pelvis=pelvis)
        snap = _run(controller, protocol="single-leg", stance_side="left")
    finally:
        live.stop()
    assert snap.outcome == "complete", snap
    result = snap.result
    assert result["pelvis"] is not None
    assert result["pelvis"]["sign"] == sign, result["pelvis"]
    assert controller.patient_sim.pelvis.strategy == {"weak_abductors": "drop", "healthy": "rise",
                                                      "trunk_lean": "lean"}[profile]
    if profile == "weak_abductors":
        assert result["pelvis"]["drop_max_deg"] > 2.0
    elif profile == "healthy":
        assert result["pelvis"]["drop_mean_deg"] < 0.0  # the lifted side rises
    else:
        assert result["pelvis"]["compensated"] is True, (result["pelvis"], result["ml_offset_mm"])
    with db.sessions() as session:
        rec = trial_recording(session, snap.trial_id)
    assert PELVIS_COLUMN in rec.extra and np.isfinite(rec.extra[PELVIS_COLUMN]).all()
    again = analyze_recording(rec, protocol="single-leg", stance_side="left")
    assert _same(again["pelvis"], result["pelvis"]) and _same(again, result)
    # and through the trial's file, as the web page serves it and `balance-station analyze` reads it
    from station.scoring.analyze import analyze_file
    from station.storage.trials import write_trial_recording

    path = tmp_path / "trial.csv"
    with db.sessions() as session:
        write_trial_recording(session, snap.trial_id, path)
    assert _same(analyze_file(path, protocol="single-leg", stance_side="left"), result)


def test_a_live_trial_waits_at_its_end_for_the_pelvis_samples_on_their_way():
    """A real sensor's samples reach the station tens of ms after the frames: closing the trial waits for them
    (at most PELVIS_WAIT_S), so the last rows are not left empty."""
    import threading
    import time

    from station.clinic.live_trial import LiveTrial
    from station.core.recording import PELVIS_COLUMN
    from station.protocols.single_leg import SingleLegRunner
    from station.protocols.trial import frames_from_recording
    from tests.station.single_leg_trials import synthetic_trial

    class Live:
        feed = type("Feed", (), {"info": {"nominal_rate_hz": 80.0}})()

        def subscribe(self):
            return type("Sub", (), {"overflowed": 0})()

        def unsubscribe(self, sub):
            pass

        def trial_started(self):
            pass

        def trial_ended(self):
            pass

    class Late:  # every sample arrives 0.1 s (of real time) after the trial's frames
        arrived = threading.Event()

        def at(self, t_s):
            return 1.25

        def ready(self, t_s):
            return self.arrived.is_set()

    rec, _ = synthetic_trial(stance_side="left")
    trial = LiveTrial(Live(), SingleLegRunner(stance_side="left", geometry=GEOMETRY), geometry=GEOMETRY,
                      pelvis=Late())
    for frame in list(frames_from_recording(rec))[:8]:
        trial.capture.push(frame)
    assert trial.capture.pelvis_pending == 8
    threading.Timer(0.1, Late.arrived.set).start()
    t0 = time.monotonic()
    trial.close()
    assert 0.05 < time.monotonic() - t0 < 0.25 + 0.1
    assert trial.capture.recording().extra[PELVIS_COLUMN].tolist() == [1.25] * 8


def test_the_simulated_patient_plays_a_pelvis_drill_with_the_pelvis_sensor(db):
    """Issue 14, item 5: the hip dip reads the simulated sensor live, the simulated patient moves its pelvis;
    without a sensor the station refuses the drill, naming the sensor."""
    from hardware.sim.pelvis import SimulatedPelvis
    from station.core.recording import PELVIS_COLUMN

    live = _station(52, speed=10.0)
    try:
        bare = TrialController(live, db, geometry=GEOMETRY, simulated_patient="healthy",
                               rng=np.random.default_rng(7))
        with pytest.raises(ValueError, match="needs the pelvis sensor"):
            bare.start(patient_code="P-001", protocol="drill:hip-dip", stance_side="left")
        controller = TrialController(live, db, geometry=GEOMETRY, simulated_patient="healthy",
                                     rng=np.random.default_rng(7), pelvis=SimulatedPelvis())
        snap = _run(controller, protocol="drill:hip-dip", stance_side="left", params={"rounds": 1, "reps": 3})
    finally:
        live.stop()
    assert snap.outcome == "complete", snap
    metrics = snap.result
    assert metrics["reps_done"] == 3 and metrics["dip_mean_deg"] > 2.0, metrics
    with db.sessions() as session:
        trial = get_trial(session, snap.trial_id)
        assert trial.protocol == "drill-hip-dip" and trial.metrics["reps_done"] == 3
        rec = trial_recording(session, snap.trial_id)
    assert PELVIS_COLUMN in rec.extra and np.isfinite(rec.extra[PELVIS_COLUMN]).all()
    # the same drill fed the stored recording (its frames and its pelvis column) gives the same result
    from station.drills import make_drill
    from station.protocols.trial import frames_from_recording

    again = make_drill("hip-dip", geometry=GEOMETRY, rng=np.random.default_rng(0), stance_side="left",
                       params={"rounds": 1, "reps": 3})
    for frame, pelvis_deg in zip(frames_from_recording(rec), rec.extra[PELVIS_COLUMN]):
        again.update(frame, pelvis_deg)
    assert again.metrics() == metrics  # the live result is the recording's
