"""The per-board backend: the real ``hx711`` package on the fake RPi.GPIO and the chip models."""

from __future__ import annotations

import sys
import time

import pytest

from hardware.base import SourceFault
from hardware.fakes.board import Board
from hardware.fakes.clock import RealClock
from hardware.hx711.rpigpio_backend import PerBoardHX711Plate
from station.core.frames import FrameFlag

SCKS = (5, 6, 19, 26)
DATA = (17, 27, 22, 23)


@pytest.fixture
def open_plate(installed):
    """Open a per-board plate on a board, with the fake RPi.GPIO installed; closed at the end."""
    plates = []

    def make(board: Board, **options) -> tuple[PerBoardHX711Plate, object]:
        fakes = installed(board)
        plate = PerBoardHX711Plate(clock=board.clock, **options)
        plates.append(plate)
        plate.open()
        return plate, fakes

    yield make
    for plate in plates:
        plate.close()


@pytest.mark.parametrize("values", [
    (0, -1, 1, -2),  # the package's get_raw_data would drop the 0 and the -1
    (123456, -123456, 8388606, -8388607),
])
def test_decodes_known_values_exactly_including_0_and_minus_1(clock, open_plate, values):
    plate, _ = open_plate(Board.per_board_clock(clock=clock, values=values))
    for _ in range(5):
        frame = plate.read()
        assert frame.counts == tuple(float(v) for v in values)
        assert frame.flags == FrameFlag.NONE
    assert plate.stats.dropped == 0


def test_saturation_codes_are_flagged_and_carried(clock, open_plate):
    plate, _ = open_plate(Board.per_board_clock(clock=clock, values=(3, -9_000_000, 0x7FFFFF, -0x800000)))
    frame = plate.read()
    assert frame.counts == (3.0, -8388608.0, 8388607.0, -8388608.0)
    assert frame.flags == FrameFlag.SATURATED
    assert frame.fault_cells == ("fr", "bl", "br")


def test_runs_the_package_code_without_its_sleep_loop_or_get_raw_data(clock, open_plate):
    plate, fakes = open_plate(Board.per_board_clock(clock=clock, values=(1, 2, 3, 4)))
    import hx711

    sleeps_after_open = plate.package_sleeps
    for _ in range(20):
        plate.read()
    assert plate.package_sleeps == sleeps_after_open == 0  # its 10 ms readiness loop never ran
    assert plate.board_reads >= 80
    assert isinstance(plate._boards[0], hx711.HX711)
    with pytest.raises(RuntimeError, match="no timeout"):
        plate._boards[0].get_raw_data(times=2)
    # the package module itself is untouched: its functions still see the real time module
    assert hx711.HX711._read.__globals__["time"] is time
    assert fakes.rpi_gpio.calls["output"] > 0


def test_frame_time_is_the_mean_of_the_board_times_and_the_skew_is_kept(clock, open_plate):
    plate, _ = open_plate(Board.per_board_clock(clock=clock, values=(1, 2, 3, 4)))
    frames = [plate.read() for _ in range(40)]
    gaps = [b.t_s - a.t_s for a, b in zip(frames, frames[1:])]
    assert sum(gaps) / len(gaps) == pytest.approx(1 / 80, abs=0.0005)
    assert 0 <= plate.last_skew_s <= plate.max_skew_s < 1 / 80 + 0.002


def test_boards_out_of_phase_are_each_read_when_ready(clock, open_plate):
    phases = {"fl": 0.0, "fr": 0.003, "bl": 0.006, "br": 0.009}
    board = Board.per_board_clock(clock=clock, values=(1, 2, 3, 4),
                                  cells={cell: {"phase_s": p} for cell, p in phases.items()})
    plate, _ = open_plate(board)
    for chip in board.chips.values():  # de-synchronise them after the reset at open
        chip._restart(chip._next_conv_ns + round(phases[chip.name] * 1e9))
    frames = [plate.read() for _ in range(20)]
    assert all(f.counts == (1.0, 2.0, 3.0, 4.0) for f in frames)
    assert plate.max_skew_s == pytest.approx(0.009, abs=0.0015)


@pytest.mark.parametrize(("stall_us", "cell"), [(100, "fr"), (55, "br")])
def test_a_long_clock_high_phase_discards_the_reading_and_the_next_frames_are_right(clock, open_plate, stall_us,
                                                                                    cell):
    values = (1111, -2222, 3333, -4444)
    board = Board.per_board_clock(clock=clock, values=values)
    plate, _ = open_plate(board)
    plate.read()
    resets_before = plate.resets
    chip = board.chips[cell]
    downs_before = chip.counters.power_downs
    board.arm_stall(gpio=SCKS[("fl", "fr", "bl", "br").index(cell)], stall_us=stall_us, after_rises=12)
    frames = [plate.read() for _ in range(10)]
    assert plate.stats.dropped == 1
    assert all(f.counts == tuple(float(v) for v in values) and f.flags == FrameFlag.NONE for f in frames)
    assert plate.longest_high_ns >= stall_us * 1000
    # past 60 us: the chip powered down, the package gave up, the plate reset that board;
    # within 60 us: the read completed, was thrown away, no reset
    assert plate.resets - resets_before == (1 if stall_us > 60 else 0)
    assert chip.counters.power_downs - downs_before == (2 if stall_us > 60 else 0)


@pytest.mark.parametrize("cell", ["fl", "bl"])
def test_an_unplugged_board_is_a_fault_naming_the_cell_within_1_s(clock, open_plate, cell):
    board = Board.per_board_clock(clock=clock, values=(1, 2, 3, 4), cells={cell: {"unplugged": True}})
    t0 = clock.monotonic()
    plate, _ = open_plate(board)  # the constructor's reads are bounded: open returns
    assert clock.monotonic() - t0 < 2.0
    t0 = clock.monotonic()
    with pytest.raises(SourceFault) as info:
        plate.read(timeout_s=1.0)
    assert clock.monotonic() - t0 <= 1.0
    i = ("fl", "fr", "bl", "br").index(cell)
    assert f"{cell} (DOUT GPIO {DATA[i]}, PD_SCK GPIO {SCKS[i]})" in str(info.value)
    assert plate.stats.faults == 1
    assert plate.package_sleeps == 0


def test_unplugged_board_in_real_time_returns_a_fault_and_never_hangs(installed, guarded):
    board = Board.per_board_clock(clock=RealClock(), values=(1, 2, 3, 4), cells={"fr": {"unplugged": True}})
    installed(board)
    plate = PerBoardHX711Plate()  # real time.monotonic / sleep / perf_counter

    def open_and_read():
        with plate:
            return plate.read(timeout_s=1.0)

    _, error, elapsed_s = guarded(open_and_read, limit_s=15.0)
    assert isinstance(error, SourceFault), error
    assert "fr (DOUT GPIO 27" in str(error)
    assert elapsed_s < 8.0  # open includes the package's settling reads; the bound is proved in virtual time


def test_a_data_line_stuck_low_is_flagged_then_a_fault(clock, open_plate):
    plate, _ = open_plate(Board.per_board_clock(clock=clock, values=(1, 2, 3, 4), cells={"fl": {"stuck_low": True}}))
    with pytest.raises(SourceFault, match="fl \\(DOUT GPIO 17\\)"):
        for _ in range(5):
            frame = plate.read()
            assert frame.flags & FrameFlag.GLITCH and "fl" in frame.fault_cells


def test_sustains_80_frames_per_second_in_simulated_time(clock, open_plate):
    plate, _ = open_plate(Board.per_board_clock(clock=clock, values=(10, 20, 30, 40), noise=True, seed=5))
    t_end = clock.monotonic() + 10.0
    times = []
    while clock.monotonic() < t_end:
        times.append(plate.read().t_s)
    assert (len(times) - 1) / (times[-1] - times[0]) == pytest.approx(80.0, abs=0.5)
    assert plate.stats.dropped == 0


def test_missing_packages_are_a_fault_saying_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)
    monkeypatch.setitem(sys.modules, "hx711", None)
    with pytest.raises(SourceFault, match="balance-station\\[pi\\]"):
        PerBoardHX711Plate().open()


def test_close_cleans_up_its_lines_and_is_idempotent(clock, open_plate):
    plate, fakes = open_plate(Board.per_board_clock(clock=clock))
    plate.read()
    plate.close()
    plate.close()
    assert fakes.rpi_gpio.fake.directions == {}
    with pytest.raises(SourceFault, match="before open"):
        plate.read()


def test_describe_and_kind(clock, open_plate):
    plate, _ = open_plate(Board.per_board_clock(clock=clock))
    assert plate.kind == "hx711-rpigpio"
    assert "fl SCK 5/DOUT 17" in plate.describe()


@pytest.mark.parametrize(("options", "name"), [
    ({"sck_gpios": (5, 6, 19)}, "sck_gpios"),
    ({"sck_gpios": (5, 6, 19, 17)}, "sck_gpios"),
    ({"data_gpios": (17, 17, 22, 23)}, "data_gpios"),
    ({"max_high_us": 0}, "max_high_us"),
    ({"ready_timeout_s": 0}, "ready_timeout_s"),
])
def test_bad_parameters_are_named(options, name):
    with pytest.raises(ValueError, match=name):
        PerBoardHX711Plate(**options)


def test_config_keys_are_the_constructor_parameters():
    plate = PerBoardHX711Plate(sck_gpios=[5, 6, 19, 26], data_gpios=[17, 27, 22, 23], ready_timeout_s=0.5,
                               max_high_us=50)
    assert plate.sck_gpios == (5, 6, 19, 26)
