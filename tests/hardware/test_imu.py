"""The pelvis sensor: the ICM-42688-P chip model, the fake smbus2, the real driver, the obliquity.

The driver (hardware.imu.driver) runs unchanged on the fake ``smbus2``
module (hardware.fakes.smbus2) over the register-level chip model
(hardware.imu.chip), on a virtual clock: register values decode exactly,
scale settings take effect, a FIFO overflow is handled, an unplugged or
silent sensor is a fault within 1 s and nothing hangs; the obliquity from
imufusion is within 0.5 degrees at rest and 1.5 degrees during sway-speed
motion of known simulated motions.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from hardware.fakes.clock import RealClock, VirtualClock
from hardware.fakes.smbus2 import FakeI2CBus, fake_smbus2_module
from hardware.imu.chip import REG, ICM42688Chip, PelvisMotion, mounting
from hardware.imu.driver import ICM42688, ImuFault, decode_packet
from hardware.imu.orientation import (
    PelvisObliquity,
    calibration_matrix,
    obliquity_from_up,
)

UPRIGHT = np.eye(3)  # sensor axes = pelvis axes: z up, x right


def quiet_chip(clock, *, motion=None, mount=UPRIGHT, **kw) -> ICM42688Chip:
    """A chip with no noise, no bias and no temperature drift (exact values)."""
    return ICM42688Chip(motion=motion or PelvisMotion(), now_ns=clock.now_ns, mount=mount, seed=0,
                        accel_bias_g=np.zeros(3), gyro_bias_dps=np.zeros(3), accel_noise_ug_rthz=0.0,
                        gyro_noise_mdps_rthz=0.0, gyro_tc_dps_c=0.0, accel_tc_g_c=0.0, temp_start_c=25.0,
                        temp_skin_c=25.0, **kw)


@pytest.fixture
def rig(clock):
    """(clock, chip, bus, driver factory) with the fake smbus2 installed for the test."""
    made = {}

    def make(chip=None, **driver_kw):
        chip = chip or quiet_chip(clock)
        bus = FakeI2CBus({0x68: chip}, clock=clock)
        made["ctx"] = fake_smbus2_module({1: bus})
        made["module"] = made["ctx"].__enter__()
        return chip, bus, ICM42688(bus=1, clock=clock, **driver_kw)

    yield make
    if "ctx" in made:
        made["ctx"].__exit__(None, None, None)


# -- decoding ---------------------------------------------------------------------------------------------------


def test_a_fifo_packet_decodes_exactly():
    packet = [0x68,
              0x20, 0x00, 0xE0, 0x00, 0x7F, 0xFF,  # accel +8192, -8192, +32767
              0x00, 0x83, 0xFF, 0x7D, 0x80, 0x01,  # gyro +131, -131, -32767
              0x0F,  # temperature 15 / 2.07 + 25
              0x27, 0x10]  # stamp 10000 us
    accel, gyro, temp, stamp = decode_packet(packet, accel_fs_g=4.0, gyro_fs_dps=250.0)
    assert accel.tolist() == [1.0, -1.0, 32767 * 4.0 / 32768]
    assert gyro.tolist() == [131 * 250.0 / 32768, -131 * 250.0 / 32768, -32767 * 250.0 / 32768]
    assert temp == 15 / 2.07 + 25.0 and stamp == 10000
    assert decode_packet([0x80] + [0] * 15, accel_fs_g=4.0, gyro_fs_dps=250.0) is None  # FIFO empty
    assert decode_packet([0x68, 0x80, 0x00] + [0] * 13, accel_fs_g=4.0, gyro_fs_dps=250.0) is None  # invalid -32768
    assert decode_packet([0x68] * 8, accel_fs_g=4.0, gyro_fs_dps=250.0) is None  # short


def test_known_register_values_decode_exactly(rig, clock):
    # standing still, upright: accel (0, 0, 1) g; turning about the vertical at 10 dps; die at 30 degC
    motion = PelvisMotion(yaw_deg=lambda t: 10.0 * t)
    chip = quiet_chip(clock, motion=motion)
    chip.temp_start_c = chip.temp_skin_c = 30.0
    chip, _bus, imu = rig(chip)
    with imu:
        assert chip.regs[REG["ACCEL_CONFIG0"]] == (2 << 5) | 0x08  # +-4 g, 100 Hz
        assert chip.regs[REG["GYRO_CONFIG0"]] == (3 << 5) | 0x08  # +-250 dps, 100 Hz
        assert chip.regs[REG["PWR_MGMT0"]] == 0x0F and chip.regs[REG["FIFO_CONFIG"]] == 0x80
        clock.advance(s=0.05)
        raw = [chip.read_register(REG["TEMP_DATA1"] + k) for k in range(14)]
        assert raw[2:8] == [0, 0, 0, 0, 0x20, 0x00]  # accel z = 8192 = 1 g at +-4 g
        assert raw[12:14] == list(round(10.0 * 32768 / 250.0).to_bytes(2, "big"))  # 1311 = 10 dps
        assert raw[0:2] == list(round(5.0 * 132.48).to_bytes(2, "big"))  # (30 - 25) * 132.48
        accel, gyro, temp = imu.read_data_registers()
        assert accel.tolist() == [0.0, 0.0, 1.0]
        assert gyro[2] == 1311 * 250.0 / 32768 and abs(gyro[2] - 10.0) < 0.01
        assert temp == round(5.0 * 132.48) / 132.48 + 25.0
        samples = imu.read(timeout_s=0.1)
        assert samples and samples[0].accel_g == (0.0, 0.0, 1.0)


def test_who_am_i_and_reset(rig, clock):
    chip, _bus, _imu = rig()
    assert chip.read_register(REG["WHO_AM_I"]) == 0x47
    chip.write_register(REG["GYRO_CONFIG0"], 0x68)
    chip.write_register(REG["DEVICE_CONFIG"], 0x01)
    assert not chip.responds()  # within its 1 ms reset
    clock.advance(s=0.002)
    assert chip.responds() and chip.regs[REG["GYRO_CONFIG0"]] == 0x06 and chip.regs[REG["INTF_CONFIG0"]] == 0x30


def test_another_chip_at_the_address_is_refused(rig, clock):
    chip, _bus, imu = rig()
    chip.regs[REG["WHO_AM_I"]] = 0x68  # an MPU-6050 answers 0x68
    with pytest.raises(ImuFault, match="WHO_AM_I is 0x68, not 0x47"):
        imu.open()


def test_no_bus_and_no_device_are_faults(clock):
    with fake_smbus2_module({1: FakeI2CBus({}, clock=clock)}):
        with pytest.raises(ImuFault, match="no such I2C bus"):
            ICM42688(bus=3, clock=clock).open()
        with pytest.raises(ImuFault, match="does not answer: is it plugged in"):
            ICM42688(bus=1, clock=clock).open()


# -- scales -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fs_g,code", [(2.0, 3), (4.0, 2), (8.0, 1), (16.0, 0)])
def test_accelerometer_full_scales(rig, clock, fs_g, code):
    chip, _bus, imu = rig(accel_fs_g=fs_g)
    with imu:
        assert chip.regs[REG["ACCEL_CONFIG0"]] >> 5 == code
        clock.advance(s=0.05)
        hi, lo = chip.read_register(REG["ACCEL_DATA_X1"] + 4), chip.read_register(REG["ACCEL_DATA_X1"] + 5)
        assert (hi << 8 | lo) == round(32768 / fs_g)  # LSB per g: 16384, 8192, 4096, 2048
        assert imu.read(timeout_s=0.1)[-1].accel_g[2] == 1.0


@pytest.mark.parametrize("fs_dps", [2000.0, 1000.0, 500.0, 250.0, 125.0, 62.5, 31.25, 15.625])
def test_gyroscope_full_scales(rig, clock, fs_dps):
    rate = 20.0
    chip, _bus, imu = rig(quiet_chip(clock, motion=PelvisMotion(yaw_deg=lambda t: rate * t)), gyro_fs_dps=fs_dps)
    with imu:
        assert chip.gyro_fs_dps == fs_dps
        z = imu.read(timeout_s=0.1)[-1].gyro_dps[2]
        expected = min(32767, round(rate * 32768 / fs_dps)) * fs_dps / 32768
        assert z == pytest.approx(expected, abs=1e-9)
    if fs_dps == 15.625:  # beyond full scale: saturated at 32767
        assert expected == 32767 * fs_dps / 32768
    else:
        assert abs(expected - rate) < fs_dps / 32768


def test_settings_are_checked():
    with pytest.raises(ValueError):
        ICM42688(odr_hz=50.0)
    with pytest.raises(ValueError):
        ICM42688(accel_fs_g=3.0)
    with pytest.raises(ValueError):
        ICM42688(fault_timeout_s=2.0)


# -- reading at 100 Hz and more -----------------------------------------------------------------------------------


@pytest.mark.parametrize("odr_hz,ppm", [(100.0, 0.0), (100.0, 15000.0), (100.0, -15000.0), (200.0, 0.0)])
def test_samples_come_at_the_data_rate_stamped_on_the_host_clock(rig, clock, odr_hz, ppm):
    chip, _bus, imu = rig(quiet_chip(clock, odr_error_ppm=ppm), odr_hz=odr_hz)
    with imu:
        samples = []
        while clock.monotonic() < 30.0:
            samples += imu.read(timeout_s=0.03)
    t = np.array([s.t_s for s in samples])
    taken = np.array(chip.sample_times_ns)[-t.size:] / 1e9  # when the chip took them (a 1.5 % fast or slow chip)
    assert np.all(np.diff(t) > 0)
    assert len(samples) == pytest.approx(odr_hz * (1 + ppm * 1e-6) * (30.0 - 0.05), abs=3)
    late = t - taken
    assert late.min() >= -1e-6  # never stamped before it was taken
    assert np.abs(late[t > 3.0]).max() < 0.0015  # within 1.5 ms of it once the chip's rate is known
    assert imu.overflows == 0 and imu.lost_samples == 0


def test_a_fifo_overflow_is_counted_and_the_gap_kept(rig, clock):
    chip, _bus, imu = rig()
    with imu:
        before = []
        while clock.monotonic() < 2.0:
            before += imu.read(timeout_s=0.03)
        clock.advance(s=3.0)  # the reader stalls: 128 samples fit, 3 s = 300 come
        kept = imu.read()
        after = []
        while clock.monotonic() < 8.0:
            after += imu.read(timeout_s=0.03)
    assert imu.overflows == 1 and chip.counters["fifo_dropped"] > 0
    assert len(kept) == 128  # the FIFO's 2048 bytes: the oldest samples, stop-on-full
    t_kept = np.array([s.t_s for s in kept])
    assert t_kept[0] - before[-1].t_s == pytest.approx(0.01, abs=1e-6)  # they follow the previous ones
    assert np.allclose(np.diff(t_kept), 0.01)
    assert imu.lost_samples == pytest.approx(300 - 128, abs=8)
    t_after = np.array([s.t_s for s in after])
    assert t_after[0] - t_kept[-1] > 1.5  # the gap stays a gap
    assert np.all(np.diff(t_after) > 0) and len(after) == pytest.approx(100 * (8.0 - t_after[0]), abs=3)


# -- faults within 1 s, nothing hangs ---------------------------------------------------------------------------


def test_an_unplugged_sensor_is_a_fault_at_once(rig, clock):
    chip, _bus, imu = rig()
    with imu:
        imu.read(timeout_s=0.1)
        chip.connected = False
        t0 = clock.monotonic()
        with pytest.raises(ImuFault, match="does not answer: is it plugged in.*Remote I/O error"):
            imu.read(timeout_s=5.0)
        assert clock.monotonic() - t0 < 0.01


def test_a_silent_sensor_is_a_fault_within_one_second(rig, clock):
    chip, _bus, imu = rig()
    with imu:
        imu.read(timeout_s=0.1)
        chip.silent = True
        t0 = clock.monotonic()
        with pytest.raises(ImuFault, match="no data for 0.5"):
            while True:
                imu.read(timeout_s=0.1)
        assert 0.45 <= clock.monotonic() - t0 < 0.6


def test_in_real_time_an_unplugged_or_silent_sensor_is_reported_within_one_second():
    clock = RealClock()
    chip = ICM42688Chip(now_ns=time.monotonic_ns, mount=mounting(), seed=2)
    with fake_smbus2_module({1: FakeI2CBus({0x68: chip}, clock=None)}):
        with ICM42688(bus=1, clock=clock) as imu:
            n = 0
            start = time.monotonic()
            while time.monotonic() - start < 0.3:
                n += len(imu.read(timeout_s=0.05))
            assert n >= 25  # 100 Hz in real time
            chip.silent = True
            t0 = time.monotonic()
            with pytest.raises(ImuFault):
                while time.monotonic() - t0 < 3.0:
                    imu.read(timeout_s=0.2)
            silent_s = time.monotonic() - t0
            chip.silent, chip.connected = False, False
            t0 = time.monotonic()
            with pytest.raises(ImuFault):
                imu.read(timeout_s=2.0)
            unplugged_s = time.monotonic() - t0
    assert silent_s < 1.0 and unplugged_s < 1.0


# -- temperature ---------------------------------------------------------------------------------------------------


def test_the_die_warms_and_the_gyroscope_bias_drifts_with_it(clock):
    chip = ICM42688Chip(now_ns=clock.now_ns, mount=UPRIGHT, seed=4, gyro_noise_mdps_rthz=0.0,
                        accel_noise_ug_rthz=0.0, temp_start_c=22.0, temp_skin_c=32.0, warm_tau_s=60.0)
    with fake_smbus2_module({1: FakeI2CBus({0x68: chip}, clock=clock)}):
        with ICM42688(bus=1, clock=clock) as imu:
            first = imu.read(timeout_s=0.1)[0]
            clock.advance(s=300.0)
            imu.read(timeout_s=0.1)  # an overflow, then fresh samples
            last = imu.read(timeout_s=0.1)[-1]
    assert first.temp_c == pytest.approx(22.0, abs=0.5) and last.temp_c == pytest.approx(32.0, abs=0.5)
    drift = np.array(last.gyro_dps) - np.array(first.gyro_dps)
    assert np.allclose(np.abs(drift), 0.005 * 10.0, atol=0.01)  # 5 mdps/degC over 10 degC


# -- orientation ------------------------------------------------------------------------------------------------


def measure(motion: PelvisMotion, *, seconds: float, seed: int, calibrate=(5.0, 8.0), **mount_kw):
    """Run the chip, the driver and the obliquity filter; returns (t, measured, true) after the calibration."""
    clock = VirtualClock()
    chip = ICM42688Chip(motion=motion, now_ns=clock.now_ns, mount=mounting(**mount_kw), seed=seed)
    est = PelvisObliquity(sample_rate_hz=100.0)
    rows = []
    truth_at_calibration = motion.obliquity_deg(calibrate[0])
    with fake_smbus2_module({1: FakeI2CBus({0x68: chip}, clock=clock)}):
        with ICM42688(bus=1, clock=clock) as imu:
            state = "before"
            while clock.monotonic() < seconds:
                for s in imu.read(timeout_s=0.03):
                    if state == "before" and s.t_s >= calibrate[0]:
                        est.start_calibration()
                        state = "calibrating"
                    elif state == "calibrating" and s.t_s >= calibrate[1]:
                        est.finish_calibration()
                        state = "done"
                    value = est.update(t_s=s.t_s, gyro_dps=s.gyro_dps, accel_g=s.accel_g)
                    if value is not None:
                        rows.append((s.t_s, value, motion.obliquity_deg(s.t_s) - truth_at_calibration))
    return np.array(rows).T


@pytest.mark.parametrize("seed,twist,yaw,slope", [(1, 4.0, 3.0, 25.0), (7, -6.0, -2.0, 35.0), (11, 0.0, 0.0, 15.0)])
def test_obliquity_at_rest_is_within_half_a_degree(seed, twist, yaw, slope):
    # standing level (calibration), then still at 3 degrees right side up, then 4 degrees left side up,
    # each reached in a 1 s smooth movement
    def smooth(t: float, t0: float) -> float:
        u = min(1.0, max(0.0, t - t0))
        return 0.5 - 0.5 * math.cos(math.pi * u)

    motion = PelvisMotion(obliquity_deg=lambda t: 3.0 * smooth(t, 10.0) - 7.0 * smooth(t, 20.0),
                          tilt_deg=lambda t: 6.0)
    t, measured, true = measure(motion, seconds=30.0, seed=seed, twist_deg=twist, yaw_deg=yaw, sacral_slope_deg=slope)
    still = ((t > 12) & (t < 20)) | (t > 22)  # at rest: from 1 s after each movement
    error = np.abs(measured - true)[still]
    assert error.max() < 0.5, error.max()
    assert np.abs(measured[(t > 8) & (t < 10)]).max() < 0.5  # level after the calibration


@pytest.mark.parametrize("seed", [3, 5])
def test_obliquity_during_sway_speed_motion_is_within_1_5_degrees(seed):
    def obliquity(t: float) -> float:  # sway, then a Trendelenburg drop of 4 degrees on the right over 1 s
        if t < 10:
            return 0.0
        sway = 2.0 * math.sin(2 * math.pi * 0.5 * t) + math.sin(2 * math.pi * 1.2 * t)
        return sway - 4.0 * min(1.0, max(0.0, t - 20))

    motion = PelvisMotion(
        obliquity_deg=obliquity,
        tilt_deg=lambda t: 6.0 + (3.0 * math.sin(2 * math.pi * 0.3 * t) if t >= 10 else 0.0),
        yaw_deg=lambda t: 5.0 * math.sin(2 * math.pi * 0.2 * t) if t >= 10 else 0.0,
        acceleration_ms2=lambda t: (
            np.array([0.3 * math.sin(2 * math.pi * t), 0.2 * math.sin(2 * math.pi * 0.7 * t), 0.0])
            if t >= 10 else np.zeros(3)))
    t, measured, true = measure(motion, seconds=40.0, seed=seed, twist_deg=5.0, yaw_deg=3.0)
    moving = t > 10
    error = np.abs(measured - true)[moving]
    assert error.max() < 1.5, error.max()
    assert np.sqrt(np.mean(error ** 2)) < 0.5


def test_the_calibration_takes_out_the_mounting():
    # a sensor on a sacrum sloping 30 degrees, twisted 10 degrees on the belt: level pelvis reads 0
    mount = mounting(sacral_slope_deg=30.0, twist_deg=10.0)
    up_sensor = mount.T @ np.array([0.0, 0.0, 1.0])
    cal = calibration_matrix(up_sensor=up_sensor)
    assert obliquity_from_up(up_pelvis=cal @ up_sensor) == pytest.approx(0.0, abs=1e-12)
    # the right side 5 degrees up: up in the pelvis frame leans toward +x by 5 degrees
    tilted = PelvisMotion(obliquity_deg=lambda t: 5.0).rotation(0.0) @ mount
    assert obliquity_from_up(up_pelvis=cal @ (tilted.T @ np.array([0.0, 0.0, 1.0]))) == pytest.approx(5.0, abs=0.05)
    with pytest.raises(ValueError, match="wrong way round"):
        calibration_matrix(up_sensor=np.array([1.0, 0.0, 0.0]))
