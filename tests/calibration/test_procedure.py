"""The guided calibration as a state machine: plan, steps, progress, checks, fit and verification.

A small test bench makes the frames: four cells with known (true) gains and
offsets, HX711-like noise, a load the test puts where it wants, and the faults
the procedure must catch. Everything is seeded; time is the frames' own.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibration.model import simulator_calibration
from calibration.procedure import (
    CalibrationProcedure,
    PlanError,
    State,
    fit_points,
    format_mass,
    make_plan,
    parse_masses,
    verification_points,
)
from station.core.cop import GRAVITY_M_S2, split_load
from station.core.frames import CELLS, HX711_MAX_CODE, FrameFlag, RawFrame
from station.core.geometry import PlateGeometry

GEO = PlateGeometry()
REF = simulator_calibration()
#: the bench's cells: gains off the built-in calibration by -8 %, +6 %, +3 %, -5 %
TRUE_GAINS = tuple(g * f for g, f in zip(REF.gains_n_per_count, (0.92, 1.06, 1.03, 0.95)))
TRUE_OFFSETS = tuple(o + d for o, d in zip(REF.offsets_counts, (800.0, -1200.0, 300.0, 1000.0)))


class Bench:
    """Frames of a plate with known cells, under a load the test sets, with injectable faults."""

    def __init__(self, *, seed: int = 0, noise_counts: float = 40.0, glitch_rate: float = 0.0) -> None:
        self.rng = np.random.default_rng(seed)
        self.noise_counts = noise_counts
        self.glitch_rate = glitch_rate
        self.gains = np.asarray(TRUE_GAINS)
        self.offsets = np.asarray(TRUE_OFFSETS)
        self.load: tuple[float, float, float] | None = None  # mass_kg, x_mm, y_mm
        self.wobble = 0.0  # relative amplitude of a rocking load
        self.dead: set[str] = set()  # reads its zero and noise whatever the load
        self.stuck: dict[str, float] = {}  # reads this count in every frame
        self.saturated: set[str] = set()
        self.silent: set[str] = set()  # does not answer (CELL_FAULT)
        self.reversed: set[str] = set()  # count goes down under load
        self.seq = 0
        self.glitches = 0

    def put(self, mass_kg: float, x_mm: float, y_mm: float) -> None:
        self.load = (mass_kg, x_mm, y_mm)

    def clear(self) -> None:
        self.load = None

    def frames(self, n: int) -> list[RawFrame]:
        out = []
        for _ in range(n):
            t_s = self.seq / 80.0
            if self.load is None:
                forces = np.zeros(4)
            else:
                mass, x, y = self.load
                scale = 1.0 + self.wobble * math.sin(2 * math.pi * 1.3 * t_s)
                forces = split_load(mass * GRAVITY_M_S2 * scale, x + 5 * self.wobble * math.sin(t_s * 7), y,
                                    ml_mm=GEO.ml_mm, ap_mm=GEO.ap_mm)
            signs = np.array([-1.0 if c in self.reversed else 1.0 for c in CELLS])
            counts = self.offsets + signs * forces / self.gains + self.rng.normal(0, self.noise_counts, 4)
            flags, faults = FrameFlag.SYNTHETIC, []
            for i, cell in enumerate(CELLS):
                if cell in self.dead:
                    counts[i] = self.offsets[i] + self.rng.normal(0, self.noise_counts)
                if cell in self.stuck:
                    counts[i] = self.stuck[cell]
                if cell in self.saturated:
                    counts[i] = HX711_MAX_CODE
                    flags |= FrameFlag.SATURATED
                    faults.append(cell)
                if cell in self.silent:
                    flags |= FrameFlag.CELL_FAULT
                    faults.append(cell)
            if self.glitch_rate and self.rng.random() < self.glitch_rate:
                counts[self.rng.integers(4)] += 2 ** 20  # an unflagged bit error
                self.glitches += 1
            out.append(RawFrame(self.seq, t_s, tuple(float(round(c)) for c in counts), flags, tuple(faults)))
            self.seq += 1
        return out


def do_it_right(proc: CalibrationProcedure, bench: Bench) -> None:
    """What a careful technician does for the current step."""
    step = proc.step
    if step.kind == "place":
        bench.put(step.target.mass_kg, step.target.point.x_mm, step.target.point.y_mm)
    else:
        bench.clear()


def run(proc: CalibrationProcedure, bench: Bench, act=None, *, max_polls: int = 20_000) -> None:
    """Drive the procedure to its end: act, confirm, feed a tenth of a second of frames, repeat."""
    act = act or (lambda p, b: do_it_right(p, b))
    for _ in range(max_polls):
        if proc.finished:
            return
        if proc.awaiting_confirmation:
            act(proc, bench)
            proc.confirm()
        for frame in bench.frames(8):
            proc.feed(frame)
    raise AssertionError("the procedure did not finish")


def procedure(masses=(20, 40), *, points: int = 5, **kwargs) -> CalibrationProcedure:
    plan = make_plan(masses, points=points, geometry=GEO)
    return CalibrationProcedure(plan, geometry=GEO, reference=REF, **kwargs)


def rejections(proc: CalibrationProcedure) -> list[str]:
    return [e.message for e in proc.events if e.kind == "rejected"]


# -- the plan --------------------------------------------------------------------------------------


def test_plan_places_every_mass_on_every_point_and_verifies_on_fresh_points():
    plan = make_plan([20, 40], points=9, geometry=GEO)
    assert [p.name for p in fit_points(GEO, points=9)] == [f"P{i}" for i in range(1, 10)]
    assert len(plan.fit) == 18 and [t.mass_kg for t in plan.fit[:9]] == [20.0] * 9
    fit_xy = {(p.x_mm, p.y_mm) for p in fit_points(GEO, points=9)}
    assert all((t.point.x_mm, t.point.y_mm) not in fit_xy for t in plan.verify)
    assert [t.mass_kg for t in plan.verify] == [20.0, 40.0, 20.0, 40.0]  # both masses verified
    assert len(make_plan([20, 40], points=5, geometry=GEO).fit) == 10
    assert {(p.x_mm, p.y_mm) for p in verification_points(GEO)} == {(0, 90), (120, 0), (0, -90), (-120, 0)}
    # points lie inside the cells, quadrants at half the half-spacing, corner regions at 80 %
    p = {q.name: q for q in fit_points(GEO, points=9)}
    assert (p["P3"].x_mm, p["P3"].y_mm) == (100, 75) and (p["P7"].x_mm, p["P7"].y_mm) == (160, 120)
    assert p["P2"].describe() == "P2 (front-left quadrant, x = -100 mm, y = +75 mm)"


@pytest.mark.parametrize("masses, unit, message", [
    ([0, 20], "kg", "mass 0 kg: a calibration mass must be more than 0 kg"),
    ([20, -5], "kg", "mass -5 kg: a calibration mass must be more than 0 kg"),
    ([-1, 40], "lb", "mass -1 lb: a calibration mass must be more than 0 lb"),
    ([20, 20], "kg", "give at least two different masses (got 20, 20 kg)"),
    ([20], "kg", "give at least two different masses"),
])
def test_plan_refuses_bad_masses(masses, unit, message):
    with pytest.raises(PlanError) as exc:
        make_plan(masses, unit=unit, geometry=GEO)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_plan_in_pounds_works_in_kg_and_speaks_pounds():
    plan = make_plan([44, 88], unit="lb", geometry=GEO)
    assert plan.masses_kg == pytest.approx((44 * 0.45359237, 88 * 0.45359237))
    assert plan.mass_text(plan.masses_kg[0]) == "44 lb"
    assert format_mass(20.0) == "20 kg" and format_mass(19.73) == "19.7 kg" and format_mass(150.0) == "150 kg"
    assert format_mass(0.012) == "0 kg" and format_mass(12.5) == "12.5 kg" and format_mass(-0.01) == "0 kg"
    proc = CalibrationProcedure(plan, geometry=GEO, reference=REF)
    proc.confirm()
    run(proc, Bench())
    assert proc.result.verification.passed
    assert any("44 lb" in e.message for e in proc.events)


def test_parse_masses():
    assert parse_masses("20,60") == (20.0, 60.0)
    assert parse_masses(" 12.5 ; 25 ") == (12.5, 25.0)
    for bad, message in (("20,abc", "mass 'abc' is not a number"), ("", "no calibration masses given"),
                         ("20,nan", "is not a number")):
        with pytest.raises(PlanError, match=message):
            parse_masses(bad)
    with pytest.raises(PlanError, match="--points must be 5"):
        make_plan([20, 40], points=7, geometry=GEO)
    with pytest.raises(PlanError, match="unit must be kg or lb"):
        make_plan([20, 40], unit="g", geometry=GEO)


# -- a good run --------------------------------------------------------------------------------


@pytest.mark.parametrize("points", [5, 9])
def test_a_careful_run_finds_the_true_gains_and_passes(points):
    proc = procedure(points=points, station_id="clinic-1", backend="test")
    bench = Bench(seed=points)
    run(proc, bench)
    assert proc.state is State.DONE and proc.failure == ""
    result = proc.result
    v = result.verification
    assert v.passed and v.max_cop_error_mm <= 1.0 and v.max_force_error_pct <= 0.5
    assert v.max_cop_error_mm < 0.1  # exact placements: only the noise is left
    np.testing.assert_allclose(result.calibration.gains_n_per_count, TRUE_GAINS, rtol=2e-4)
    np.testing.assert_allclose(result.calibration.offsets_counts, TRUE_OFFSETS, atol=15)
    assert len(result.placements) == 2 * points and len(result.verify_placements) == 4
    assert result.zero_return_n == pytest.approx(0.0, abs=0.1)
    assert not rejections(proc)
    cal = result.calibration
    assert cal.station_id == "clinic-1" and cal.backend == "test"
    assert cal.verification["passed"] is True and len(cal.placements) == 2 * points
    assert cal.extra["procedure"]["masses_kg"] == [20.0, 40.0]
    report = result.to_report()
    for key in ("max_cop_error_mm", "rms_cop_error_mm", "max_force_error_pct", "passed"):
        assert key in report
    assert proc.instruction == "Calibration done: verification passed."
    assert [e.kind for e in proc.events].count("accepted") == 1 + 2 * points + 4 + 1
    assert proc.overall_progress == 1.0 and proc.target is None


def test_progress_stability_and_instruction_are_exposed():
    proc = procedure()
    bench = Bench()
    assert proc.step.kind == "tare" and proc.awaiting_confirmation and proc.step_number == 1
    assert proc.instruction.startswith("Clear the plate")
    bench.clear()
    proc.confirm()
    while proc.step.kind == "tare":
        for f in bench.frames(1):
            proc.feed(f)
    assert proc.step.kind == "place" and proc.awaiting_confirmation
    assert proc.target.point.name == "P1" and proc.target.mass_kg == 20.0
    assert proc.instruction == "Place the 20 kg mass on P1 (centre, x = +0 mm, y = +0 mm), then let go of it."
    bench.put(20, 0, 0)
    proc.confirm()
    assert proc.state is State.MEASURING
    seen = []
    while proc.step.index == 1:
        for f in bench.frames(1):
            proc.feed(f)
        if proc.step.index == 1:
            seen.append((proc.progress, proc.stability_std_n, proc.steady, proc.overall_progress))
    progress = [s[0] for s in seen]
    assert progress[0] < 0.05 and progress[-1] > 0.95 and progress == sorted(progress)
    assert all(s[1] < proc.stable_std_n and s[2] for s in seen[5:])
    assert 1 / proc.n_steps < seen[-1][3] < 2 / proc.n_steps
    # the live reading: the mass's weight and where it stands, with the provisional calibration
    assert proc.live_fz_n == pytest.approx(20 * GRAVITY_M_S2, rel=0.1)
    assert math.hypot(*proc.live_cop_mm) < 15


def test_a_load_that_settles_late_is_measured_once_steady():
    proc = procedure()
    bench = Bench()
    bench.clear()
    proc.confirm()
    while proc.step.kind == "tare":
        for f in bench.frames(8):
            proc.feed(f)
    bench.put(20, 0, 0)
    bench.wobble = 0.05  # the technician still steadies the mass after confirming
    proc.confirm()
    for f in bench.frames(240):  # 3 s of rocking
        proc.feed(f)
    assert proc.step.index == 1 and proc.progress < 0.5 and not proc.steady
    bench.wobble = 0.0
    for f in bench.frames(200):
        proc.feed(f)
    assert proc.step.index == 2 and not rejections(proc)


def test_frames_before_the_confirmation_are_not_measured():
    proc = procedure()
    bench = Bench()
    bench.put(40, 100, 75)  # whatever is on the plate before the technician confirms does not count
    for f in bench.frames(400):
        proc.feed(f)
    assert proc.step.index == 0 and proc.awaiting_confirmation
    run(proc, bench)
    assert proc.result.verification.passed and not rejections(proc)


def test_events_are_popped_once():
    proc = procedure()
    first = proc.pop_events()
    assert [e.kind for e in first] == ["step"] and proc.pop_events() == []
    proc.confirm()
    proc.confirm()  # a second confirmation while measuring changes nothing
    assert [e.kind for e in proc.pop_events()] == ["measuring"]


def test_single_frame_glitches_do_not_disturb_the_readings():
    proc = procedure()
    bench = Bench(seed=4, glitch_rate=0.02)
    run(proc, bench)
    assert bench.glitches > 20
    assert proc.result.verification.passed and proc.result.verification.max_cop_error_mm < 0.1
    assert sum(p.rejected_frames for p in proc.result.placements) > 0
    assert not rejections(proc)


# -- bad input: a clear message, the step repeated, nothing wrong kept ---------------------------------


def fault_once(fault):
    """A technician who makes ``fault`` on the first try of the first placement, then does it right."""

    def act(proc, bench):
        do_it_right(proc, bench)
        bench.wobble = 0.0
        bench.dead.clear(), bench.saturated.clear(), bench.silent.clear(), bench.reversed.clear()
        bench.stuck.clear()
        if proc.attempt == 1 and proc.step.index == fault[0]:
            fault[1](bench)

    return act


BAD_INPUTS = {
    "wrong point": (1, lambda b: b.put(20, 100, 75),
                    "the mass is at x = ", "(near P3, front-right quadrant)", "move it to P1 (centre"),
    "not placed": (1, lambda b: b.clear(), "nothing on the plate: it reads 0 kg, the 20 kg mass was expected on P1"),
    "wrong mass": (1, lambda b: b.put(40, 0, 0), "the plate reads", "the 20 kg mass was expected"),
    "moving load": (1, lambda b: setattr(b, "wobble", 0.03),
                    "the load did not come to rest within 10 s", "keep hands and feet off the plate"),
    "dead cell": (1, lambda b: b.dead.add("br"), "cell br does not respond to the load"),
    "stuck cell at the tare": (0, lambda b: b.stuck.update(bl=0.0), "cell bl reads the same count (0) in every frame"),
    "stuck cell under load": (1, lambda b: b.stuck.update(fl=-1.0), "cell fl reads the same count (-1)"),
    "saturated cell": (1, lambda b: b.saturated.add("fr"), "cell fr saturates (reads the HX711's full-scale code)"),
    "cell that does not answer": (1, lambda b: b.silent.add("fl"), "cell fl does not answer"),
    "reversed cell": (1, lambda b: b.reversed.add("bl"), "cell bl reads", "swap its A+ and A- wires"),
    "loaded plate at the tare": (0, lambda b: b.put(20, 0, 0), "tare refused: the plate seems loaded"),
    "mass left at the end": (None, lambda b: b.put(20, 0, 0), "the plate still carries"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_each_bad_input_is_named_and_its_step_repeated(name):
    step, make, *phrases = BAD_INPUTS[name]
    proc = procedure()
    step = proc.n_steps - 1 if step is None else step
    run(proc, Bench(seed=11), fault_once((step, make)))
    found = rejections(proc)
    assert len(found) == 1, found
    for phrase in phrases:
        assert phrase in found[0]
    assert "\n" not in found[0]
    # the same step was asked again, and the bad reading was not kept
    retry = [e for e in proc.events if e.kind == "step" and e.step == step]
    assert len(retry) == 2 and retry[1].message.startswith("try again (2 of 3): ")
    assert proc.state is State.DONE and proc.result.verification.passed
    assert len(proc.result.placements) == len(proc.plan.fit)  # the bad reading was not kept
    np.testing.assert_allclose(proc.result.calibration.gains_n_per_count, TRUE_GAINS, rtol=5e-4)


@pytest.mark.parametrize("name", ["wrong point", "dead cell", "saturated cell", "moving load"])
def test_a_step_that_keeps_failing_stops_the_procedure_without_a_result(name):
    step, make, *phrases = BAD_INPUTS[name]
    proc = procedure(max_attempts=3)

    def act(p, b):
        do_it_right(p, b)
        if p.step.index == step:
            make(b)

    run(proc, Bench(seed=2), act)
    assert proc.state is State.FAILED and proc.result is None
    assert len(rejections(proc)) == 3
    assert proc.failure.startswith("step 2 of 16 failed 3 times; last: ")
    assert phrases[0] in proc.failure
    assert proc.events[-1].kind == "failed" and proc.events[-1].message.endswith("nothing was saved")
    assert proc.instruction.startswith("Calibration stopped: ")
    for f in Bench().frames(50):  # a finished procedure ignores further frames
        proc.feed(f)
    assert proc.state is State.FAILED


def test_the_wrong_point_message_says_where_the_mass_is_and_where_it_should_be():
    proc = procedure()

    def act(p, b):
        do_it_right(p, b)
        if p.step.index == 2 and p.attempt == 1:  # P2, front-left quadrant, gets a mass at (-150, -20)
            b.put(20, -150, -20)

    run(proc, Bench(seed=5), act)
    (message,) = rejections(proc)
    assert message.startswith("the mass is at x = -15")
    assert "y = -" in message and "mm from P2: move it to P2 (front-left quadrant, x = -100 mm, y = +75 mm)" in message
    assert "(near" not in message  # not near any marked point


def test_verification_masses_off_their_marks_fail_the_verification():
    proc = procedure()

    def act(p, b):
        do_it_right(p, b)
        if p.step.kind == "place" and p.step.target.role == "verify":
            t = p.step.target
            b.put(t.mass_kg, t.point.x_mm + 3.0, t.point.y_mm)

    run(proc, Bench(seed=6), act)
    assert proc.state is State.DONE
    v = proc.result.verification
    assert not v.passed and 2.5 < v.max_cop_error_mm < 3.5
    assert proc.instruction == "Calibration done, but the verification failed: it will not be saved."
    assert proc.result.calibration.verification["passed"] is False


def test_abort_stops_without_a_result():
    proc = procedure()
    proc.abort("stopped by the technician")
    assert proc.state is State.FAILED and proc.result is None
    assert proc.failure == "stopped by the technician"
    proc.confirm()
    assert proc.state is State.FAILED


def test_bad_parameters_are_refused():
    plan = make_plan([20, 40], geometry=GEO)
    for kwargs in ({"window_s": 0}, {"stable_std_n": -1}, {"timeout_s": 1.0}, {"max_attempts": 0}):
        with pytest.raises(ValueError):
            CalibrationProcedure(plan, geometry=GEO, reference=REF, **kwargs)


def test_crosstalk_between_cells_is_reported():
    class CrosstalkBench(Bench):
        """Cell fl also feels 8 % of fr's load (a cell bearing side load)."""

        def frames(self, n):
            out = []
            for f in super().frames(n):
                c = list(f.counts)
                fr_n = (c[1] - self.offsets[1]) * self.gains[1]
                c[0] += 0.08 * fr_n / self.gains[0]
                out.append(RawFrame(f.seq, f.t_s, tuple(c), f.flags, f.fault_cells))
            return out

    proc = procedure(points=9)
    run(proc, CrosstalkBench(seed=3))
    assert proc.state is State.DONE
    (warning,) = proc.result.warnings
    assert warning.startswith("the plate shows crosstalk between its cells: per-cell gains leave ")
    assert proc.result.matrix_fit.rms_residual_cop_mm < 0.1 < proc.result.gain_fit.rms_residual_cop_mm
    assert proc.result.calibration.matrix is None  # the saved calibration keeps per-cell gains
