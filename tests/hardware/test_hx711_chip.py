"""The HX711 chip model, driven pin by pin on a virtual clock."""

from __future__ import annotations

import statistics

import pytest

from hardware.fakes.clock import VirtualClock
from hardware.hx711.chip import HX711Chip
from station.core.frames import decode_twos_complement_24

PERIOD_S = 1 / 80


class Host:
    """Drives one chip the way a host does: 1 us high, 1 us low per pulse unless told otherwise."""

    def __init__(self, chip: HX711Chip, clock: VirtualClock) -> None:
        self.chip, self.clock = chip, clock

    def pulse(self, *, high_us: float = 1.0, low_us: float = 1.0) -> int:
        self.chip.set_sck(1)
        self.clock.advance(ns=round(high_us * 1000))
        bit = self.chip.dout()
        self.chip.set_sck(0)
        self.clock.advance(ns=round(low_us * 1000))
        return bit

    def read_word(self, *, pulses: int = 25) -> int:
        word = 0
        for _ in range(24):
            word = (word << 1) | self.pulse()
        for _ in range(pulses - 24):
            self.pulse()
        return word

    def wait_ready(self, *, limit_s: float = 1.0, step_us: float = 10.0) -> float:
        """Advance until DOUT is low; return the time it went low, in seconds."""
        end_ns = self.clock.now_ns() + round(limit_s * 1e9)
        while self.chip.dout():
            if self.clock.now_ns() >= end_ns:
                raise AssertionError("chip not ready in time")
            self.clock.advance(ns=round(step_us * 1000))
        return self.clock.monotonic()


@pytest.fixture
def chip(clock: VirtualClock) -> HX711Chip:
    return HX711Chip(now_ns=clock.now_ns, value=0)


@pytest.fixture
def host(chip: HX711Chip, clock: VirtualClock) -> Host:
    return Host(chip, clock)


@pytest.mark.parametrize("counts", [0, -1, 1, -2, 2, 123456, -123456, 0x7FFFFE, -0x7FFFFF])
def test_shifts_out_24_bit_twos_complement_msb_first(clock, counts):
    chip = HX711Chip(now_ns=clock.now_ns, value=counts)
    host = Host(chip, clock)
    assert chip.dout() == 0  # phase 0: a result is ready at once
    word = host.read_word()
    assert decode_twos_complement_24(word) == counts
    assert chip.counters.reads_completed == 1


@pytest.mark.parametrize(("counts", "word"), [
    (0x7FFFFF, 0x7FFFFF), (10_000_000, 0x7FFFFF), (-0x800000, 0x800000), (-10_000_000, 0x800000),
])
def test_input_beyond_full_scale_gives_saturation_codes(clock, counts, word):
    host = Host(HX711Chip(now_ns=clock.now_ns, value=counts), clock)
    assert host.read_word() == word


def test_dout_high_until_ready_then_high_after_the_25th_pulse_until_the_next_conversion(clock):
    chip = HX711Chip(now_ns=clock.now_ns, value=5, phase_s=0.004)
    host = Host(chip, clock)
    assert chip.dout() == 1
    t_ready = host.wait_ready()
    assert t_ready == pytest.approx(0.004, abs=20e-6)
    host.read_word(pulses=24)
    assert chip.dout() == 1  # the LSB of 5
    host.pulse()  # 25th
    assert chip.dout() == 1 and not chip.ready
    t_next = host.wait_ready()
    assert t_next == pytest.approx(0.004 + PERIOD_S, abs=20e-6)


def test_bits_are_valid_while_high_and_after_the_falling_edge(clock):
    chip = HX711Chip(now_ns=clock.now_ns, value=0x500000)  # bits 0, 1, 0, 1, 0...
    levels = []
    for _ in range(4):
        chip.set_sck(1)
        high = chip.dout()
        chip.set_sck(0)
        levels.append((high, chip.dout()))
    assert levels == [(0, 0), (1, 1), (0, 0), (1, 1)]


def test_unread_results_are_overwritten_by_newer_ones(clock):
    chip = HX711Chip(now_ns=clock.now_ns, value=lambda t_s: round(t_s * 1000))  # counts = time in ms
    host = Host(chip, clock)
    clock.advance(s=3 * PERIOD_S + 0.001)  # conversions at 0, 12.5, 25 and 37.5 ms, none read
    word = host.read_word()
    assert decode_twos_complement_24(word) == round(3 * PERIOD_S * 1000)
    assert chip.counters.conversions == 4
    assert chip.counters.overwritten == 3


def test_clock_high_for_more_than_60_us_powers_down(clock, chip, host):
    chip.set_sck(1)
    clock.advance(ns=60_000)
    assert chip.powered  # exactly 60 us: not "more than"
    clock.advance(ns=1_000)
    assert not chip.powered
    assert chip.dout() == 1
    assert chip.counters.power_downs == 1
    chip.set_sck(0)
    assert chip.powered and chip.counters.power_ups == 1


def test_a_read_interrupted_by_power_down_yields_ones(clock):
    chip = HX711Chip(now_ns=clock.now_ns, value=0)  # all-zero bits when read properly
    host = Host(chip, clock)
    bits = [host.pulse() for _ in range(10)]
    bits.append(host.pulse(high_us=100))  # the host samples after the chip powered down
    bits += [host.pulse() for _ in range(13)]
    assert bits[:10] == [0] * 10
    assert bits[10:] == [1] * 14  # garbage: all ones
    assert chip.counters.reads_aborted == 1


@pytest.mark.parametrize(("rate_hz", "settling_s"), [(80, 0.050), (10, 0.400)])
def test_first_result_after_power_up_only_after_settling(clock, rate_hz, settling_s):
    chip = HX711Chip(now_ns=clock.now_ns, value=7, rate_hz=rate_hz)
    host = Host(chip, clock)
    host.read_word(pulses=27)  # select A/64 ...
    chip.set_sck(1)
    clock.advance(ns=100_000)
    chip.set_sck(0)  # ... then power down and up
    t_up = clock.monotonic()
    t_ready = host.wait_ready()
    assert t_ready - t_up == pytest.approx(settling_s, abs=20e-6)
    assert (chip.channel, chip.gain) == ("A", 128)  # reset to A/128
    assert decode_twos_complement_24(host.read_word()) == 7
    t_next = host.wait_ready()
    assert t_next - t_ready == pytest.approx(1 / rate_hz, abs=20e-6)


@pytest.mark.parametrize(("pulses", "channel", "gain", "expected"), [
    (25, "A", 128, 1000), (26, "B", 32, -300), (27, "A", 64, 500),
])
def test_pulse_count_selects_channel_and_gain_of_the_next_conversion(clock, pulses, channel, gain, expected):
    chip = HX711Chip(now_ns=clock.now_ns, value=1000, value_b=-300)
    host = Host(chip, clock)
    host.read_word(pulses=pulses)
    t_last = clock.monotonic()
    t_ready = host.wait_ready()
    assert (chip.channel, chip.gain) == (channel, gain)
    if pulses == 25:  # no change: the next conversion comes on time
        assert t_ready == pytest.approx(PERIOD_S, abs=20e-6)
        assert chip.counters.gain_changes == 0
    else:  # a change forces settling from the selecting pulse
        assert t_ready - t_last == pytest.approx(0.050, abs=20e-6)
        assert chip.counters.gain_changes == 1
    assert decode_twos_complement_24(host.read_word()) == expected


def test_pulses_while_not_ready_are_ignored(clock):
    chip = HX711Chip(now_ns=clock.now_ns, value=42, phase_s=0.005)
    host = Host(chip, clock)
    assert [host.pulse() for _ in range(5)] == [1] * 5
    assert chip.counters.stray_pulses == 5
    host.wait_ready()
    assert decode_twos_complement_24(host.read_word()) == 42


def test_a_conversion_completing_during_a_read_is_lost(clock):
    chip = HX711Chip(now_ns=clock.now_ns, value=lambda t_s: 1 if t_s < 0.01 else 2)
    host = Host(chip, clock)
    word = 0
    for i in range(24):
        word = (word << 1) | host.pulse(low_us=13_000 if i == 5 else 1)  # a slow host: 13 ms for one read
    host.pulse()
    assert decode_twos_complement_24(word) == 1
    assert chip.counters.lost_during_read == 1
    assert not chip.ready  # the next result comes with the next conversion
    host.wait_ready()
    assert decode_twos_complement_24(host.read_word()) == 2


def test_oscillator_tolerance_changes_the_rate(clock):
    fast = HX711Chip(now_ns=clock.now_ns, tolerance_ppm=1000)
    slow = HX711Chip(now_ns=clock.now_ns, tolerance_ppm=-1000)
    clock.advance(s=10.0)
    assert fast.dout() == 0 and slow.dout() == 0  # catch up
    assert fast.counters.conversions == 1 + int(10.0 * 80 * 1.001)
    assert slow.counters.conversions == 1 + int(10.0 * 80 / 1.001)


def test_seeded_noise_is_repeatable_and_about_40_counts_rms(clock):
    def readings(seed):
        chip = HX711Chip(now_ns=clock.now_ns, value=1000, noise=True, seed=seed)
        host = Host(chip, clock)
        values = []
        for _ in range(400):
            host.wait_ready(step_us=500)
            values.append(decode_twos_complement_24(host.read_word()))
        return values

    first, again, other = readings(1), readings(1), readings(2)
    assert first == again
    assert first != other
    assert statistics.fmean(first) == pytest.approx(1000, abs=10)
    assert statistics.pstdev(first) == pytest.approx(40, rel=0.15)


def test_unplugged_reads_high_and_stuck_low_reads_low(clock):
    unplugged = HX711Chip(now_ns=clock.now_ns, unplugged=True)
    stuck = HX711Chip(now_ns=clock.now_ns, stuck_low=True, phase_s=0.005)
    for _ in range(3):
        for chip in (unplugged, stuck):
            chip.set_sck(1)
            chip.set_sck(0)
        clock.advance(s=0.01)
        assert unplugged.dout() == 1
        assert stuck.dout() == 0


@pytest.mark.parametrize(("options", "name"), [
    ({"rate_hz": 20}, "rate_hz"),
    ({"phase_s": 0.02}, "phase_s"),
    ({"noise_rms_counts": -1}, "noise_rms_counts"),
    ({"tolerance_ppm": 1e6}, "tolerance_ppm"),
    ({"unplugged": True, "stuck_low": True}, "unplugged"),
])
def test_bad_options_are_named(clock, options, name):
    with pytest.raises(ValueError, match=name):
        HX711Chip(now_ns=clock.now_ns, **options)
