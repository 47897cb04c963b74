"""The chip-model plate in this process: the real backends on four chip models fed by the simulated person."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from calibration.model import simulator_calibration
from hardware.base import SourceFault
from hardware.fakes.chip_plate import POWER_DOWN_EVERY_S, ChipModelPlate, parse_fault
from hardware.fakes.clock import PacedClock
from station.core.cop import centre_of_pressure
from station.core.frames import FrameFlag


class FakeReal:
    """A real clock and sleep under the test's control."""

    def __init__(self) -> None:
        self.ns = 1_000_000_000
        self.slept: list[float] = []

    def now(self) -> int:
        return self.ns

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.ns += round(s * 1e9)


def test_paced_clock_counts_gpio_calls_not_the_hosts_slowness_and_catches_up_at_sleeps():
    real = FakeReal()
    clock = PacedClock(gpio_call_us=1.0, real_ns=real.now, real_sleep=real.sleep)
    assert clock.monotonic_ns() == real.ns
    t0 = clock.perf_counter_ns()
    clock.gpio_call()
    real.ns += 500_000  # the host spends 500 us in the middle of a pulse
    clock.gpio_call()
    assert clock.perf_counter_ns() - t0 == 2_000  # the pulse lasted two calls
    clock.sleep(0.0001)  # behind the real clock: jumps to it without sleeping
    assert clock.monotonic_ns() == real.ns and real.slept == []
    assert clock.max_lag_ns == 500_000 - 2_000 - 100_000
    clock.sleep(0.002)  # ahead of it: sleeps for real until then
    assert real.slept == [pytest.approx(0.002)] and clock.monotonic_ns() == real.ns


@pytest.mark.parametrize(("text", "parsed"), [
    (None, None), ("", None), ("none", None), ("fr:stuck_low", ("fr", "stuck_low")),
    ("BL:Power_Down", ("bl", "power_down")), ("fl:unplugged", ("fl", "unplugged")),
])
def test_parse_fault(text, parsed):
    assert parse_fault(text) == parsed


@pytest.mark.parametrize("text", ["fr", "xx:stuck_low", "fr:melted", "fr:stuck_low:1"])
def test_a_bad_fault_names_what_is_accepted(text):
    with pytest.raises(ValueError, match="CELL:KIND.*fl, fr, bl, br.*stuck_low, unplugged, power_down"):
        parse_fault(text)


@pytest.mark.parametrize(("options", "name"), [
    ({"backend": "spi"}, "backend"), ({"clock": "virtual"}, "clock"), ({"start": "jumping"}, "start"),
    ({"seed": -1}, "seed"), ({"fault_after_s": -1}, "fault_after_s"),
])
def test_bad_options_are_named(options, name):
    with pytest.raises(ValueError, match=name):
        ChipModelPlate(**options)


def read_for(plate: ChipModelPlate, seconds: float) -> list:
    frames = []
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        frames.append(plate.read())
    return frames


@pytest.mark.parametrize("backend", ["lgpio", "rpigpio"])
def test_the_backend_reads_the_persons_weight_through_the_chips_at_80_frames_per_second(backend):
    plate = ChipModelPlate(backend=backend, seed=3, mass_kg=70.0)
    assert "lgpio" not in sys.modules or not hasattr(sys.modules["lgpio"], "board")
    with plate:
        fake = sys.modules["lgpio" if backend == "lgpio" else "RPi.GPIO"]
        assert fake.board is plate.board  # the backend imported the fake module for this board
        frames = read_for(plate, 2.0)
    assert "RPi.GPIO" not in sys.modules or not hasattr(sys.modules["RPi.GPIO"], "board")  # put back at close
    rate_hz = (len(frames) - 1) / (frames[-1].t_s - frames[0].t_s)
    # the chips convert at 80/s whatever happens; a stall of this whole process (a loaded machine) loses the
    # results it slept through, as on a Pi: a margin for one such stall of up to 40 ms in the 2 s
    assert 78.5 < rate_hz < 80.5
    assert plate.stats.dropped == 0 and plate.stats.faults == 0
    assert all(f.flags == FrameFlag.SYNTHETIC for f in frames)
    assert [f.seq for f in frames] == list(range(len(frames)))
    forces = simulator_calibration().to_forces([f.counts for f in frames])
    fz = forces.sum(axis=1)
    assert np.median(fz) == pytest.approx(70.0 * 9.80665, rel=0.03)
    assert all(chip.counters.reads_completed >= len(frames) for chip in plate.board.chips.values())
    assert plate.kind == "chip-model" and "HX711 plate, 4 boards" in plate.describe()


def test_commands_move_the_person_on_the_chips():
    plate = ChipModelPlate(seed=5)
    with plate:
        plate.read()
        plate.command("lean_to", x_mm=80.0, y_mm=0.0)
        frames = read_for(plate, 2.5)
    forces = simulator_calibration().to_forces([f.counts for f in frames[-20:]])
    _, x, _ = centre_of_pressure(forces, ml_mm=400, ap_mm=300)
    assert x.mean() > 40.0
    with pytest.raises(ValueError, match="command name"):
        plate.command("teleport")


def test_a_stuck_data_line_is_the_backends_fault_naming_the_cell():
    plate = ChipModelPlate(seed=1, fault="bl:stuck_low", fault_after_s=0.0)
    with plate, pytest.raises(SourceFault, match=r"DOUT stays low after the read on cell bl \(DOUT GPIO 22\)"):
        for _ in range(3):
            frame = plate.read()
            assert frame.flags & FrameFlag.GLITCH and frame.fault_cells == ("bl",)


def test_an_unplugged_board_is_reported_within_the_ready_timeout():
    plate = ChipModelPlate(seed=1, fault="fr:unplugged", fault_after_s=0.0)
    with plate, pytest.raises(SourceFault, match=r"not ready within 0.50 s: cell fr \(DOUT GPIO 27\)"):
        plate.read()


def test_long_clock_pulses_power_the_chips_down_and_the_backend_discards_and_resets():
    plate = ChipModelPlate(seed=1, fault="fl:power_down", fault_after_s=0.0)
    with plate:
        frames = read_for(plate, 3 * POWER_DOWN_EVERY_S + 0.1)
    assert plate.pulses_injected >= 3
    assert plate.stats.dropped >= 3 and plate.backend.resets >= 4  # the one at open, one per pulse
    assert all(chip.counters.power_downs >= 3 for chip in plate.board.chips.values())  # a shared clock
    assert plate.stats.faults == 0
    forces = simulator_calibration().to_forces([f.counts for f in frames])
    assert np.all(np.abs(forces.sum(axis=1) - 686.0) < 100.0), "no garbage read was delivered"


def test_the_fakes_stay_out_of_the_stations_import_path():
    """On a Pi, nothing of hardware.fakes is imported unless the chip-model plate is asked for."""
    code = ("import sys, station.commands.run, station.commands.cli, station.live.acquisition, webui.app\n"
            "bad = sorted(m for m in sys.modules if m.startswith('hardware.fakes') or m in ('lgpio', 'RPi'))\n"
            "print(bad)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
