"""The shared-clock lgpio backend, running its real code on the fake lgpio and the chip models."""

from __future__ import annotations

import sys

import pytest

from hardware.base import SourceFault
from hardware.fakes.board import Board
from hardware.fakes.clock import RealClock, VirtualClock
from hardware.fakes.lgpio import make_lgpio
from hardware.hx711.lgpio_backend import SharedClockHX711Plate
from station.core.frames import FrameFlag

SCK = 5


def open_plate(board: Board, **options) -> tuple[SharedClockHX711Plate, object]:
    lg = make_lgpio(board)
    plate = SharedClockHX711Plate(clock=board.clock, lgpio=lg, **options)
    plate.open()
    return plate, lg


@pytest.mark.parametrize("values", [
    (0, -1, 1, -2),
    (123456, -123456, 8388606, -8388607),
    (1000, 0, -1, 250_000),
])
def test_decodes_known_values_exactly(clock, values):
    plate, _ = open_plate(Board.shared_clock(clock=clock, values=values))
    for _ in range(5):
        frame = plate.read()
        assert frame.counts == tuple(float(v) for v in values)
        assert frame.flags == FrameFlag.NONE and frame.fault_cells == ()
    assert plate.stats.frames == 5 and plate.stats.dropped == 0


def test_saturation_codes_are_flagged_and_carried(clock):
    plate, _ = open_plate(Board.shared_clock(clock=clock, values=(0x7FFFFF, 9_000_000, -0x800000, 5)))
    frame = plate.read()
    assert frame.counts == (8388607.0, 8388607.0, -8388608.0, 5.0)
    assert frame.flags == FrameFlag.SATURATED
    assert frame.fault_cells == ("fl", "fr", "bl")
    assert plate.stats.glitches == 1


def test_one_group_read_samples_the_four_lines_on_each_pulse(clock):
    board = Board.shared_clock(clock=clock, values=(1, 2, 3, 4), spread=False)
    plate, lg = open_plate(board)
    plate.read()
    clock.advance(s=0.013)  # the next results are ready: no polling needed
    before = dict(lg.calls)
    plate.read()
    delta = {name: n - before.get(name, 0) for name, n in lg.calls.items() if n != before.get(name, 0)}
    # one readiness check, 24 data pulses with one group_read each, the 25th pulse, one check after it
    assert delta == {"group_read": 1 + 24 + 1, "gpio_write": 2 * 25}


def test_frames_carry_the_monotonic_time_of_the_read_and_sequence_numbers(clock):
    plate, _ = open_plate(Board.shared_clock(clock=clock, spread=False))
    frames = [plate.read() for _ in range(4)]
    assert [f.seq for f in frames] == [0, 1, 2, 3]
    gaps = [b.t_s - a.t_s for a, b in zip(frames, frames[1:])]
    assert gaps == pytest.approx([1 / 80] * 3, abs=0.0006)  # one conversion period, within a poll interval


@pytest.mark.parametrize(("stall_us", "powers_down"), [(100, True), (55, False)])
def test_a_long_clock_high_phase_discards_the_frame_and_the_next_frames_are_right(clock, stall_us, powers_down):
    values = (1111, -2222, 3333, -4444)
    board = Board.shared_clock(clock=clock, values=values)
    plate, _ = open_plate(board)
    plate.read()
    downs_before = [chip.counters.power_downs for chip in board.chips.values()]
    board.arm_stall(gpio=SCK, stall_us=stall_us, after_rises=10)  # in the middle of the next read
    frames = [plate.read() for _ in range(10)]
    assert plate.stats.dropped == 1
    assert all(f.counts == tuple(float(v) for v in values) and f.flags == FrameFlag.NONE for f in frames)
    assert [f.seq for f in frames] == list(range(1, 11))  # nothing was delivered for the discarded read
    assert plate.longest_high_ns >= stall_us * 1000
    downs = [chip.counters.power_downs - before for chip, before in zip(board.chips.values(), downs_before)]
    # past 60 us the chips powered down and the plate reset them (a second power-down);
    # within 60 us they stayed awake, the read was completed and thrown away
    assert downs == [2 if powers_down else 0] * 4
    assert plate.resets == (2 if powers_down else 1)


def test_a_discarded_read_never_leaks_garbage_even_when_stalls_repeat(clock):
    values = (0, -1, 1, 77)
    board = Board.shared_clock(clock=clock, values=values)
    plate, _ = open_plate(board)
    for after in (3, 20, 24):  # early bit, late bit, the 25th pulse
        board.arm_stall(gpio=SCK, stall_us=80, after_rises=after)
        frame = plate.read()
        assert frame.counts == tuple(float(v) for v in values)
    assert plate.stats.dropped == 3


def test_several_discards_in_one_read_still_give_a_good_frame_within_the_timeout(clock):
    values = (5, 6, 7, 8)
    board = Board.shared_clock(clock=clock, values=values)
    plate, _ = open_plate(board)
    plate.read()
    for after in (0, 2, 4):  # the first pulse of three attempts in a row (each reset pulse is a rise too)
        board.arm_stall(gpio=SCK, stall_us=150, after_rises=after)
    t0 = clock.monotonic()
    frame = plate.read(timeout_s=1.0)
    assert clock.monotonic() - t0 < 1.0
    assert frame.counts == tuple(float(v) for v in values)
    assert plate.stats.dropped == 3 and plate.stats.faults == 0


@pytest.mark.parametrize(("cells", "named"), [
    ({"fr": {"unplugged": True}}, ["fr (DOUT GPIO 27)"]),
    ({"bl": {"unplugged": True}, "br": {"unplugged": True}}, ["bl (DOUT GPIO 22)", "br (DOUT GPIO 23)"]),
])
def test_an_unplugged_board_is_a_fault_naming_the_cell_within_1_s(clock, cells, named):
    plate, _ = open_plate(Board.shared_clock(clock=clock, values=(1, 2, 3, 4), cells=cells))
    t0 = clock.monotonic()
    with pytest.raises(SourceFault) as info:
        plate.read(timeout_s=1.0)
    assert clock.monotonic() - t0 <= 1.0
    message = str(info.value)
    for name in named:
        assert name in message
    assert "fl" not in message.replace("fl (", "")  # healthy cells are not blamed
    assert plate.stats.faults == 1 and plate.stats.last_fault == message


def test_no_board_answering_points_at_the_shared_clock_wire(clock):
    board = Board.shared_clock(clock=clock, cells={c: {"unplugged": True} for c in ("fl", "fr", "bl", "br")})
    plate, _ = open_plate(board)
    with pytest.raises(SourceFault, match="PD_SCK wire \\(GPIO 5\\)"):
        plate.read()


def test_the_fault_comes_within_the_read_timeout_when_it_is_shorter(clock):
    plate, _ = open_plate(Board.shared_clock(clock=clock, cells={"fl": {"unplugged": True}}))
    t0 = clock.monotonic()
    with pytest.raises(SourceFault, match="fl"):
        plate.read(timeout_s=0.1)
    assert clock.monotonic() - t0 <= 0.1 + 1e-5  # the last poll (one 1 us call) ends just after the deadline


def test_unplugged_board_in_real_time_returns_a_fault_and_never_hangs(guarded):
    board = Board.shared_clock(clock=RealClock(), values=(1, 2, 3, 4), cells={"br": {"unplugged": True}})
    plate = SharedClockHX711Plate(lgpio=make_lgpio(board))  # real time.monotonic / sleep

    def open_and_read():
        with plate:
            return plate.read(timeout_s=1.0)

    _, error, elapsed_s = guarded(open_and_read, limit_s=10.0)
    assert isinstance(error, SourceFault)
    assert "br (DOUT GPIO 23)" in str(error)
    assert elapsed_s < 5.0  # generous: the bound itself is proved in virtual time above


def test_sustains_80_frames_per_second_for_60_s_of_simulated_time(clock):
    board = Board.shared_clock(clock=clock, values=(100, 200, 300, 400), noise=True, seed=3)
    plate, _ = open_plate(board)
    t_end = clock.monotonic() + 60.0
    times = []
    while clock.monotonic() < t_end:
        times.append(plate.read().t_s)
    rate_hz = (len(times) - 1) / (times[-1] - times[0])
    assert rate_hz == pytest.approx(80.0, abs=0.5)
    assert plate.stats.dropped == 0 and plate.stats.faults == 0
    assert len(times) == pytest.approx(4800, abs=40)


def test_noisy_counts_average_to_the_input(clock):
    values = (5000, -5000, 0, 123)
    plate, _ = open_plate(Board.shared_clock(clock=clock, values=values, noise=True, seed=11))
    frames = [plate.read() for _ in range(400)]
    for i, value in enumerate(values):
        mean = sum(f.counts[i] for f in frames) / len(frames)
        assert mean == pytest.approx(value, abs=8)  # 40 counts rms / sqrt(400) = 2


def test_a_data_line_stuck_low_is_flagged_then_a_fault(clock):
    plate, _ = open_plate(Board.shared_clock(clock=clock, values=(1, 2, 3, 4), cells={"bl": {"stuck_low": True}}))
    for _ in range(2):
        frame = plate.read()
        assert frame.flags & FrameFlag.GLITCH and frame.fault_cells == ("bl",)
    with pytest.raises(SourceFault, match="bl \\(DOUT GPIO 22\\)"):
        plate.read()


def test_imports_the_installed_lgpio_module_in_open(clock, installed):
    board = Board.shared_clock(clock=clock, values=(9, 8, 7, 6))
    fakes = installed(board)
    plate = SharedClockHX711Plate(clock=clock)
    with plate:
        assert plate.read().counts == (9.0, 8.0, 7.0, 6.0)
    assert fakes.lgpio.calls["gpiochip_open"] == 1


def test_missing_lgpio_is_a_fault_saying_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lgpio", None)  # makes "import lgpio" fail
    plate = SharedClockHX711Plate()
    with pytest.raises(SourceFault, match="pip install lgpio"):
        plate.open()


def test_a_wrong_gpiochip_is_a_fault_with_the_pi5_hint(clock):
    board = Board.shared_clock(clock=clock, gpiochip=4)
    with pytest.raises(SourceFault, match="gpiochip0.*gpiochip = 4"):
        open_plate(board)


def test_a_busy_clock_line_is_a_fault_naming_it(clock):
    board = Board.shared_clock(clock=clock)
    lg = make_lgpio(board)
    other = lg.gpiochip_open(0)
    lg.gpio_claim_output(other, SCK, 0)  # another program holds GPIO 5
    plate = SharedClockHX711Plate(clock=clock, lgpio=lg)
    with pytest.raises(SourceFault, match="PD_SCK GPIO 5.*GPIO busy"):
        plate.open()
    assert lg.fake._claims.keys() == {SCK}  # the plate released what it had claimed


def test_close_releases_the_lines_leaves_the_clock_low_and_is_idempotent(clock):
    board = Board.shared_clock(clock=clock)
    plate, lg = open_plate(board)
    plate.read()
    plate.close()
    plate.close()
    assert lg.fake._claims == {} and lg.calls["gpiochip_close"] == 1
    assert all(chip.powered for chip in board.chips.values())
    with pytest.raises(SourceFault, match="before open"):
        plate.read()


def test_describe_names_the_wiring(clock):
    plate, _ = open_plate(Board.shared_clock(clock=clock))
    assert "PD_SCK GPIO 5" in plate.describe() and "fl 17, fr 27, bl 22, br 23" in plate.describe()
    assert plate.kind == "hx711-lgpio" and plate.nominal_rate_hz == 80


@pytest.mark.parametrize(("options", "name"), [
    ({"max_high_us": 60}, "max_high_us"),
    ({"ready_timeout_s": 1.5}, "ready_timeout_s"),
    ({"data_gpios": (17, 27, 22)}, "data_gpios"),
    ({"data_gpios": (5, 27, 22, 23)}, "sck_gpio"),
    ({"gpiochip": -1}, "gpiochip"),
])
def test_bad_parameters_are_named(options, name):
    with pytest.raises(ValueError, match=name):
        SharedClockHX711Plate(**options)


def test_config_keys_are_the_constructor_parameters():
    plate = SharedClockHX711Plate(gpiochip=0, sck_gpio=5, data_gpios=[17, 27, 22, 23], max_high_us=50,
                                  ready_timeout_s=0.5)
    assert plate.data_gpios == (17, 27, 22, 23)


def test_virtual_clock_models_call_overhead():
    clock = VirtualClock(gpio_call_us=2.0)
    plate, lg = open_plate(Board.shared_clock(clock=clock, spread=False))
    plate.read()
    # 25 pulses of 2 calls each, plus group reads, at 2 us per call: the high phases are measured as 6 us
    assert plate.longest_high_ns == 6_000
