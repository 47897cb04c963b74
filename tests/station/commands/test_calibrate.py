"""The calibration wizard in this process: simulated technician, terminal technician, saving, report, screen."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest

from calibration.model import Calibration, simulator_calibration
from calibration.procedure import CalibrationProcedure, State, make_plan
from station.commands.calibrate import (
    SIM_BACKEND,
    AcquisitionSource,
    SimFault,
    SimulatedSource,
    SimulatedTechnician,
    TerminalView,
    calibrate,
    calibration_plate,
    gain_deviation_pct,
    run_procedure,
)
from station.commands.cli import build_parser, main
from station.core.errors import UserError
from station.core.frames import HX711_MAX_CODE, FrameFlag
from station.core.geometry import PlateGeometry

GEO = PlateGeometry()


@pytest.fixture
def seeded(monkeypatch):
    monkeypatch.setenv("BALANCE_STATION_SIMULATOR__SEED", "21")


def args_for(*argv: str):
    return build_parser().parse_args(["calibrate", *argv])


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["calibrate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- the simulated plate and technician ------------------------------------------------------------


def test_the_calibration_plate_differs_from_the_builtin_calibration():
    plate = calibration_plate(GEO, seed=3, realtime=False)
    dev = gain_deviation_pct(plate)
    assert np.all(np.abs(dev) <= 10.0) and np.any(np.abs(dev) > 1.0)
    offsets = np.asarray(plate.true_offsets_counts) - np.asarray(simulator_calibration().offsets_counts)
    assert np.all(np.abs(offsets) <= 1500) and np.any(offsets != 0)
    again = calibration_plate(GEO, seed=3, realtime=False)
    assert again.true_gains_n_per_count == plate.true_gains_n_per_count  # the seed fixes the cells
    assert calibration_plate(GEO, seed=4, realtime=False).true_gains_n_per_count != plate.true_gains_n_per_count


def test_simulated_source_injects_cell_faults():
    source = SimulatedSource(calibration_plate(GEO, seed=1, realtime=False))
    source.command("behaviour", behaviour="static_load", mass_kg=20, x_mm=0, y_mm=0)
    loaded = np.mean([f.counts for f in source.poll()[1:]], axis=0)
    source.cell_faults = {"br": "dead", "fr": "saturated"}
    frames = source.poll()
    assert all(f.flags & FrameFlag.SATURATED and f.fault_cells == ("fr",) for f in frames)
    assert all(f.counts[1] == HX711_MAX_CODE for f in frames)
    br = np.mean([f.counts[3] for f in frames])
    assert abs(br - source.plate.true_offsets_counts[3]) < 100 < abs(loaded[3] - source.plate.true_offsets_counts[3])
    assert len(frames) == source.frames_per_poll


def test_the_simulated_technician_calibrates_the_simulated_plate():
    plate = calibration_plate(GEO, seed=8, realtime=False)
    source = SimulatedSource(plate, seed=8)
    proc = CalibrationProcedure(make_plan([20, 40], points=9, geometry=GEO), geometry=GEO,
                                reference=simulator_calibration())
    said: list[str] = []
    out = io.StringIO()
    run_procedure(proc, source, SimulatedTechnician(source, seed=8, say=said.append), TerminalView(out))
    assert proc.state is State.DONE and proc.result.verification.passed
    assert proc.result.verification.max_cop_error_mm <= 1.0
    np.testing.assert_allclose(proc.result.calibration.gains_n_per_count, plate.true_gains_n_per_count, rtol=2e-3)
    assert said[0] == "simulated technician: clears the plate"
    assert "simulated technician: puts the 20 kg mass on P1" in said
    text = out.getvalue()
    assert "[ 1/24] Clear the plate" in text and "[24/24] Remove the mass" in text
    assert text.count("ok: ") == 24 and "PROBLEM" not in text


def test_sim_fault_parsing():
    assert SimFault.parse("wrong-point") == SimFault("wrong-point", 1, None)
    assert SimFault.parse("moving:once") == SimFault("moving", 1, 1)
    with pytest.raises(UserError, match="unknown fault 'upside-down'"):
        SimFault.parse("upside-down")
    with pytest.raises(UserError, match="add ':once' or nothing"):
        SimFault.parse("moving:twice")


# -- the command: unattended --------------------------------------------------------------------------


def test_unattended_run_saves_the_calibration_and_the_report(tmp_path, capsys, seeded):
    report = tmp_path / "r.json"
    code, out, err = run_cli(capsys, "--plate", "simulated", "--yes", "--report", str(report),
                             "--data-dir", str(tmp_path))
    assert code == 0, err
    assert "its cells' gains differ from the built-in calibration by fl " in err
    assert "Verification on fresh points (not used by the fit):" in out
    assert "fitted gains against the simulated cells' true gains:" in out
    path = tmp_path / "calibration.json"
    assert f"calibration saved: {path}" in out
    cal = Calibration.load(path)
    assert cal.backend == SIM_BACKEND and cal.verification["passed"] is True and len(cal.placements) == 18
    doc = json.loads(report.read_text())
    assert doc["passed"] is True and doc["saved"] is True and doc["calibration_file"] == str(path)
    assert 0 <= doc["max_cop_error_mm"] <= 1.0 and doc["rms_cop_error_mm"] <= doc["max_cop_error_mm"]
    assert 0 <= doc["max_force_error_pct"] <= 0.5
    assert len(doc["rows"]) == 4


def test_output_points_and_pounds(tmp_path, capsys, seeded):
    out_file = tmp_path / "elsewhere" / "cal.json"
    code, out, err = run_cli(capsys, "--plate", "simulated", "--yes", "--points", "5", "--masses", "45,90",
                             "--unit", "lb", "--output", str(out_file), "--data-dir", str(tmp_path / "data"))
    assert code == 0, err
    assert "masses 45 lb, 90 lb; 5 points; 10 placements to fit, 4 on fresh points to verify" in out
    assert "Place the 45 lb mass on P1" in out
    assert out_file.exists() and not (tmp_path / "data" / "calibration.json").exists()
    assert Calibration.load(out_file).extra["procedure"]["unit"] == "lb"


FAULT_MESSAGES = {
    "wrong-point": "the mass is at x = ",
    "not-placed": "nothing on the plate",
    "wrong-mass": "the 20 kg mass was expected",
    "moving": "the load did not come to rest",
    "dead-cell": "cell br does not respond to the load",
    "saturated": "cell fr saturates",
}


@pytest.mark.parametrize("fault", list(FAULT_MESSAGES))
def test_a_fault_on_every_try_stops_and_saves_nothing(fault, tmp_path, capsys, seeded):
    report = tmp_path / "r.json"
    code, out, err = run_cli(capsys, "--plate", "simulated", "--yes", "--sim-fault", fault, "--report", str(report),
                             "--data-dir", str(tmp_path))
    assert code == 2
    problems = [line for line in out.splitlines() if "PROBLEM: " in line]
    assert len(problems) == 3 and all(FAULT_MESSAGES[fault] in line for line in problems)
    last = err.strip().splitlines()[-1]
    assert last.startswith("balance-station: calibration stopped: step 2 of 24 failed 3 times; last: ")
    assert FAULT_MESSAGES[fault] in last and last.endswith("nothing was saved")
    assert not (tmp_path / "calibration.json").exists()
    doc = json.loads(report.read_text())
    assert doc["passed"] is False and doc["saved"] is False and FAULT_MESSAGES[fault] in doc["error"]


@pytest.mark.parametrize("fault", ["wrong-point", "dead-cell"])
def test_a_fault_once_is_repeated_and_the_calibration_is_right(fault, tmp_path, capsys, seeded):
    code, out, err = run_cli(capsys, "--plate", "simulated", "--yes", "--sim-fault", f"{fault}:once",
                             "--data-dir", str(tmp_path))
    assert code == 0, err
    assert out.count("PROBLEM: ") == 1 and FAULT_MESSAGES[fault] in out
    assert "try again (2 of 3): Place the 20 kg mass on P1" in out
    cal = Calibration.load(tmp_path / "calibration.json")
    assert cal.verification["passed"] is True and len(cal.placements) == 18


def test_a_failed_verification_is_not_saved_unless_forced(tmp_path, capsys, seeded):
    report = tmp_path / "r.json"
    code, out, err = run_cli(capsys, "--plate", "simulated", "--yes", "--sim-fault", "off-mark",
                             "--report", str(report), "--data-dir", str(tmp_path))
    assert code == 1
    assert "verification FAILED" in out and "calibration NOT saved: the verification failed" in err
    assert not (tmp_path / "calibration.json").exists()
    doc = json.loads(report.read_text())
    assert doc["passed"] is False and doc["saved"] is False and doc["max_cop_error_mm"] > 1.0
    code, out, err = run_cli(capsys, "--plate", "simulated", "--yes", "--sim-fault", "off-mark", "--force",
                             "--data-dir", str(tmp_path))
    assert code == 0 and "saved because of --force" in out
    assert Calibration.load(tmp_path / "calibration.json").verification["passed"] is False


def test_a_real_plates_calibration_is_not_replaced_by_a_simulated_one(tmp_path, capsys, seeded):
    path = tmp_path / "calibration.json"
    real = simulator_calibration()
    Calibration(offsets_counts=real.offsets_counts, gains_n_per_count=real.gains_n_per_count,
                created_at=real.created_at, backend="hx711-lgpio").save(path)
    before = path.read_text()
    code, out, err = run_cli(capsys, "--plate", "simulated", "--yes", "--data-dir", str(tmp_path))
    assert code == 2 and "holds the calibration of a real plate (hx711-lgpio" in err and "--output" in err
    assert path.read_text() == before


@pytest.mark.parametrize("argv, message", [
    (["--plate", "hx711", "--yes"], "--yes runs the simulated technician"),
    (["--plate", "hx711", "--sim-fault", "moving"], "--sim-fault needs the simulated plate"),
    (["--plate", "simulated", "--yes", "--masses", "0,20"], "mass 0 kg: a calibration mass must be more than 0 kg"),
    (["--plate", "simulated", "--yes", "--masses", "-5,20"], "mass -5 kg: a calibration mass must be more than 0"),
    (["--plate", "simulated", "--yes", "--masses", "20"], "give at least two different masses"),
])
def test_bad_options_are_one_line(argv, message, tmp_path, capsys):
    code, out, err = run_cli(capsys, *argv, "--data-dir", str(tmp_path))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "calibration.json").exists()


# -- the command: a person at the terminal -------------------------------------------------------------


def test_masses_typed_at_the_prompt_are_checked_and_asked_again(tmp_path, seeded):
    stdin = io.StringIO("0,20\n-3,20\n20\n15,30\n" + "\n" * 40)
    stdout = io.StringIO()
    code = calibrate(args_for("--plate", "simulated", "--points", "5", "--no-screen", "--data-dir", str(tmp_path)),
                     stdin=stdin, stdout=stdout)
    text = stdout.getvalue()
    assert code == 0, text
    assert "PROBLEM: mass 0 kg: a calibration mass must be more than 0 kg; enter the masses again" in text
    assert "PROBLEM: mass -3 kg: a calibration mass must be more than 0 kg; enter the masses again" in text
    assert "PROBLEM: give at least two different masses (got 20 kg)" in text
    assert "masses 15 kg, 30 kg" in text
    assert text.count("press Enter when done") == 16
    assert Calibration.load(tmp_path / "calibration.json").extra["procedure"]["masses_kg"] == [15.0, 30.0]


def test_q_stops_the_calibration_and_saves_nothing(tmp_path, seeded):
    stdin = io.StringIO("20,40\n\n\nq\n")
    with pytest.raises(UserError, match="calibration stopped: stopped by the technician; nothing was saved"):
        calibrate(args_for("--plate", "simulated", "--no-screen", "--data-dir", str(tmp_path)),
                  stdin=stdin, stdout=io.StringIO())
    assert not (tmp_path / "calibration.json").exists()


def test_end_of_input_stops_the_calibration_and_saves_nothing(tmp_path, seeded):
    with pytest.raises(UserError, match="standard input closed before the calibration finished"):
        calibrate(args_for("--plate", "simulated", "--no-screen", "--masses", "20,40", "--data-dir", str(tmp_path)),
                  stdin=io.StringIO("\n\n"), stdout=io.StringIO())
    assert not (tmp_path / "calibration.json").exists()


class FakeAcq:
    def __init__(self, *, error: str = "", ended: bool = False) -> None:
        self.info = {"kind": "hx711-lgpio", "description": "HX711 plate (test)"}
        self.error, self.ended, self.stopped = error, ended, False

    def frames(self, *, timeout_s: float = 0.1):
        return []

    def stop(self) -> None:
        self.stopped = True


def test_acquisition_source_reports_a_stopped_plate():
    source = AcquisitionSource(FakeAcq(error="cell fl (GPIO 17) does not answer"))
    assert source.kind == "hx711-lgpio" and source.description == "HX711 plate (test)"
    with pytest.raises(UserError, match="the plate stopped: cell fl"):
        source.poll()
    with pytest.raises(UserError, match="ended during the calibration"):
        AcquisitionSource(FakeAcq(ended=True)).poll()
    source.close()
    assert source.acq.stopped


# -- the patient screen -------------------------------------------------------------------------------


class ScreenDouble:
    """What run_procedure asks of a screen: Enter on it confirms a step."""

    def __init__(self) -> None:
        self.quit_requested = False
        self.confirm_requested = True
        self.ticks = 0

    def tick(self, proc) -> None:
        self.ticks += 1


def test_enter_on_the_screen_confirms_a_step():
    plate = calibration_plate(GEO, seed=2, realtime=False)
    source = SimulatedSource(plate)
    proc = CalibrationProcedure(make_plan([20, 40], points=5, geometry=GEO), geometry=GEO,
                                reference=simulator_calibration())

    class Idle:  # a technician who never confirms: the screen does
        def tick(self, proc):
            pass

    screen = ScreenDouble()
    source.command("behaviour", behaviour="empty")
    run_procedure(proc, source, Idle(), TerminalView(io.StringIO()), screen=screen, max_polls=50)
    assert proc.step.index >= 1 and screen.ticks > 0  # the tare was confirmed on the screen and done


def test_calibration_screen_draws_the_target_progress_and_messages(artifacts):
    import pygame

    from station.core.config import ScreenSettings
    from station.screen.calibration import TARGET, CalibrationScreen

    plate = calibration_plate(GEO, seed=1, realtime=False)
    source = SimulatedSource(plate, seed=1)
    proc = CalibrationProcedure(make_plan([20, 40], points=9, geometry=GEO), geometry=GEO,
                                reference=simulator_calibration())
    tech = SimulatedTechnician(source, seed=1, fault=SimFault("wrong-point", 3, 1))
    screen = CalibrationScreen(ScreenSettings(fullscreen=False, width=1280, height=720), geometry=GEO, synthetic=True)
    screen.open()
    shots = set()
    try:
        view = TerminalView(io.StringIO())
        while not proc.finished:
            view.events(proc)
            tech.tick(proc)
            for f in source.poll():
                proc.feed(f)
            if proc.step.index == 4 and proc.state is State.MEASURING and proc.progress > 0.5 and "m" not in shots:
                shots.add("m")
                screen.draw(proc)
                screen.screenshot(artifacts / "calibration-measuring.png")
                pv = screen.mode.plate_view(screen.surface)
                target = proc.target.point
                x, y = pv.to_px(target.x_mm, target.y_mm)
                radius = max(14, round(28 * pv.scale_px_per_mm))
                ring = [screen.surface.get_at((x + dx, y))[:3] for dx in range(radius - 4, radius + 1)]
                assert TARGET in ring
            if proc.step.index == 3 and proc.attempt == 2 and proc.awaiting_confirmation and "w" not in shots:
                shots.add("w")
                screen.draw(proc)
                screen.screenshot(artifacts / "calibration-wrong-point.png")
        screen.draw(proc)
        screen.screenshot(artifacts / "calibration-done.png")
        assert shots == {"m", "w"} and proc.result.verification.passed
        assert screen.frames_drawn == 3
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN, mod=0))
        screen.tick(proc)
        assert screen.confirm_requested and not screen.quit_requested
    finally:
        screen.close()
    for name in ("calibration-measuring.png", "calibration-wrong-point.png", "calibration-done.png"):
        assert (artifacts / name).stat().st_size > 5000



# -- a real plate: the HX711 branch, with a person who reads the terminal ---------------------------------


class PersonAtTheTerminal:
    """An acquisition process double whose plate a person loads as the terminal tells them.

    Before each frame batch the person reads the last instruction printed and
    puts the mass where it says (or clears the plate), then Enter (already
    typed) confirms it.
    """

    INSTRUCTION = re.compile(r"[Pp]lace the ([\d.]+) kg mass on \w+ \([^)]*x = ([+-]\d+) mm, y = ([+-]\d+) mm\)")

    def __init__(self, source: SimulatedSource, stdout: io.StringIO) -> None:
        self.source, self.stdout = source, stdout
        self.info = {"kind": "hx711-lgpio", "description": "HX711 plate, shared clock (test double)"}
        self.error, self.ended, self.stopped = "", False, False

    def frames(self, *, timeout_s: float = 0.1):
        lines = [line for line in self.stdout.getvalue().splitlines() if line.startswith("[")]
        if lines:
            match = self.INSTRUCTION.search(lines[-1])
            if match:
                mass, x, y = (float(v) for v in match.groups())
                self.source.command("behaviour", behaviour="static_load", mass_kg=mass, x_mm=x, y_mm=y)
            else:
                self.source.command("behaviour", behaviour="empty")
        return self.source.poll()

    def stop(self) -> None:
        self.stopped = True


def test_a_technician_calibrates_the_hx711_plate_from_its_previous_calibration(tmp_path, monkeypatch):
    import station.commands.run

    monkeypatch.setenv("BALANCE_STATION_HX711__BACKEND", "lgpio")
    plate = calibration_plate(GEO, seed=12, realtime=False)
    # the previous calibration of this plate: its zeros, gains 3 % off
    previous = Calibration(offsets_counts=plate.true_offsets_counts,
                           gains_n_per_count=tuple(g * 1.03 for g in plate.true_gains_n_per_count),
                           created_at=simulator_calibration().created_at, backend="hx711-lgpio")
    previous.save(tmp_path / "calibration.json")
    stdout = io.StringIO()
    acq = PersonAtTheTerminal(SimulatedSource(plate, seed=12), stdout)
    monkeypatch.setattr(station.commands.run, "start_plate", lambda settings: acq)
    code = calibrate(args_for("--masses", "20,40", "--points", "5", "--no-screen", "--data-dir", str(tmp_path)),
                     stdin=io.StringIO("\n" * 16), stdout=stdout)
    text = stdout.getvalue()
    assert code == 0, text
    assert "Checks start from the previous calibration" in text and "PROBLEM" not in text
    cal = Calibration.load(tmp_path / "calibration.json")
    assert cal.backend == "hx711-lgpio" and cal.verification["passed"] is True
    np.testing.assert_allclose(cal.gains_n_per_count, plate.true_gains_n_per_count, rtol=2e-3)
    assert acq.stopped


def test_a_replaced_cell_needs_ignore_previous(tmp_path, monkeypatch):
    import station.commands.run

    monkeypatch.setenv("BALANCE_STATION_HX711__BACKEND", "lgpio")
    plate = calibration_plate(GEO, seed=13, realtime=False)
    old_zeros = tuple(o + d for o, d in zip(plate.true_offsets_counts, (200_000, 0, 0, 0)))  # fl was replaced
    previous = Calibration(offsets_counts=old_zeros, gains_n_per_count=plate.true_gains_n_per_count,
                           created_at=simulator_calibration().created_at, backend="hx711-lgpio")
    previous.save(tmp_path / "calibration.json")
    before = (tmp_path / "calibration.json").read_text()
    for argv, expected in (((), 2), (("--ignore-previous",), 0)):
        stdout = io.StringIO()
        acq = PersonAtTheTerminal(SimulatedSource(calibration_plate(GEO, seed=13, realtime=False)), stdout)
        monkeypatch.setattr(station.commands.run, "start_plate", lambda settings, acq=acq: acq)
        args = args_for("--masses", "20,40", "--points", "5", "--no-screen", "--data-dir", str(tmp_path), *argv)
        if expected == 2:
            with pytest.raises(UserError, match="tare refused: the plate seems loaded"):
                calibrate(args, stdin=io.StringIO("\n" * 16), stdout=stdout)
            assert (tmp_path / "calibration.json").read_text() == before
        else:
            assert calibrate(args, stdin=io.StringIO("\n" * 16), stdout=stdout) == 0
            assert "Checks start from nominal gains" in stdout.getvalue()
            assert Calibration.load(tmp_path / "calibration.json").verification["passed"] is True


def test_the_terminal_shows_a_progress_bar_with_the_steadiness():
    plate = calibration_plate(GEO, seed=5, realtime=False)
    source = SimulatedSource(plate, seed=5)
    source.frames_per_poll = 2
    proc = CalibrationProcedure(make_plan([20, 40], points=5, geometry=GEO), geometry=GEO,
                                reference=simulator_calibration())
    out = io.StringIO()
    run_procedure(proc, source, SimulatedTechnician(source, seed=5, fault=SimFault("moving", 1, 1)),
                  TerminalView(out, progress_bar=True))
    text = out.getvalue()
    assert proc.result.verification.passed
    assert re.search(r"\r        measuring \[#{10,14}-{10,14}\]  [45]\d %  steady \(0\.0\d N, steady below 0\.3 N\)",
                     text)
    assert "MOVING (" in text  # the rocking mass on the first try
    bars = [chunk for chunk in text.split("\r") if chunk.startswith("        measuring [")]
    assert 16 * 10 < len(bars) < 16 * 80  # redrawn as it fills, not on every frame
