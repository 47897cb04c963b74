"""A register-level model of the ICM-42688-P 6-axis IMU, driven by a known pelvis motion.

The model answers the I2C register reads and writes the driver makes
(through :mod:`hardware.fakes.smbus2`) the way the chip does, for the part of
the register map the station uses (user bank 0, TDK InvenSense DS-000347
rev 1.8):

=======  ===================  ===========================================================
addr     register             model
=======  ===================  ===========================================================
0x11     DEVICE_CONFIG        bit 0 SOFT_RESET_CONFIG: every register back to its reset
                              value; the chip answers again 1 ms later (NACK before)
0x16     FIFO_CONFIG          bits 7:6 FIFO_MODE: 00 bypass (nothing stored), 01 stream
                              (when full the oldest packet is dropped), 1x stop-on-full
                              (when full new packets are dropped)
0x1D-1E  TEMP_DATA1/0         16-bit two's complement, T = value / 132.48 + 25 degC
0x1F-24  ACCEL_DATA_X1..Z0    16-bit two's complement, big endian, at the accel full scale;
                              -32768 while the accelerometer is off
0x25-2A  GYRO_DATA_X1..Z0     the same for the gyroscope
0x2D     INT_STATUS           bit 3 DATA_RDY_INT, bit 1 FIFO_FULL_INT; cleared on read
0x2E-2F  FIFO_COUNTH/L        bytes in the FIFO, big endian (FIFO_COUNT_ENDIAN = 1)
0x30     FIFO_DATA            a block read pops successive FIFO bytes (no address increment);
                              0xFF when empty
0x4B     SIGNAL_PATH_RESET    bit 1 FIFO_FLUSH (self-clearing)
0x4C     INTF_CONFIG0         reset 0x30 (big endian data and count); kept, not modelled
0x4E     PWR_MGMT0            bits 3:2 GYRO_MODE, bits 1:0 ACCEL_MODE (11 low noise, 00 off);
                              data start 30 ms (gyro) / 10 ms (accel) after switching on
0x4F     GYRO_CONFIG0         bits 7:5 GYRO_FS_SEL (2000/2^n dps), bits 3:0 GYRO_ODR
0x50     ACCEL_CONFIG0        bits 7:5 ACCEL_FS_SEL (16/2^n g), bits 3:0 ACCEL_ODR
0x5F     FIFO_CONFIG1         bit 0 ACCEL_EN, bit 1 GYRO_EN, bit 2 TEMP_EN (packet 3 needs all)
0x75     WHO_AM_I             0x47
0x76     REG_BANK_SEL         other banks are accepted and read as 0 (not modelled)
=======  ===================  ===========================================================

The output data rate codes (the chip's "sample-rate divider": it divides its
32 kHz clock by a fixed ratio per code) are 0x05 2 kHz, 0x06 1 kHz, 0x07
200 Hz, 0x08 100 Hz, 0x09 50 Hz, 0x0A 25 Hz, 0x0F 500 Hz.

FIFO: 2048 bytes of 16-byte packets (packet 3: header 0x68, accel X/Y/Z,
gyro X/Y/Z big endian, temperature as one byte T = value / 2.07 + 25 degC,
and the 16-bit ODR time stamp in us, modulo 65536), that is 128 samples,
1.28 s at 100 Hz. Packets are written at the gyroscope's ODR while both
sensors are on and FIFO_CONFIG1 enables accel, gyro and temperature; other
packet formats are not modelled.

What is measured: the sensor's specific force (gravity, plus the sacrum's
linear acceleration) and angular rate in its own axes, from a
:class:`PelvisMotion` (the pelvis's orientation against time) and the
mounting (how the sensor sits on the pelvis), plus per-axis bias, white noise
(datasheet noise densities: 70 ug/sqrt(Hz), 2.8 mdps/sqrt(Hz)), a warm-up of
the die from room to skin temperature with the biases drifting with it, and
the chip's oscillator error. Values beyond full scale saturate at
+-32767.

Nothing runs in the background: whenever the chip is touched it catches up
with the clock (samples due since the last access), so a virtual clock gives
repeatable runs. ``connected = False`` (the cable pulled) makes every access
fail as a NACK does; ``silent = True`` keeps it answering while no new data
come (a sensor browned out into sleep).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ACCEL_FS_G",
    "GYRO_FS_DPS",
    "ODR_HZ",
    "REG",
    "WHO_AM_I_VALUE",
    "ICM42688Chip",
    "PelvisMotion",
    "rotation_x",
    "rotation_y",
    "rotation_z",
]

WHO_AM_I_VALUE = 0x47
G_MS2 = 9.80665

#: Register addresses (user bank 0).
REG = {
    "DEVICE_CONFIG": 0x11,
    "FIFO_CONFIG": 0x16,
    "TEMP_DATA1": 0x1D,
    "TEMP_DATA0": 0x1E,
    "ACCEL_DATA_X1": 0x1F,
    "GYRO_DATA_X1": 0x25,
    "INT_STATUS": 0x2D,
    "FIFO_COUNTH": 0x2E,
    "FIFO_COUNTL": 0x2F,
    "FIFO_DATA": 0x30,
    "SIGNAL_PATH_RESET": 0x4B,
    "INTF_CONFIG0": 0x4C,
    "PWR_MGMT0": 0x4E,
    "GYRO_CONFIG0": 0x4F,
    "ACCEL_CONFIG0": 0x50,
    "FIFO_CONFIG1": 0x5F,
    "WHO_AM_I": 0x75,
    "REG_BANK_SEL": 0x76,
}
#: Reset values of the registers that are not 0.
RESET_VALUES = {0x4C: 0x30, 0x4F: 0x06, 0x50: 0x06, 0x75: WHO_AM_I_VALUE}
#: ODR code -> rate, Hz.
ODR_HZ = {0x05: 2000.0, 0x06: 1000.0, 0x07: 200.0, 0x08: 100.0, 0x09: 50.0, 0x0A: 25.0, 0x0F: 500.0}
#: FS_SEL code -> full scale.
GYRO_FS_DPS = {code: 2000.0 / 2 ** code for code in range(8)}
ACCEL_FS_G = {0: 16.0, 1: 8.0, 2: 4.0, 3: 2.0}
FIFO_BYTES = 2048
PACKET_BYTES = 16
PACKET3_HEADER = 0x68
INT_DATA_RDY = 0x08
INT_FIFO_FULL = 0x02
GYRO_START_S = 0.030
ACCEL_START_S = 0.010
RESET_TIME_S = 0.001
INVALID = -32768


def rotation_x(deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rotation_y(deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rotation_z(deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _const(value: float) -> Callable[[float], float]:
    return lambda t: value


@dataclass
class PelvisMotion:
    """The pelvis's orientation against time: the truth the chip measures.

    The pelvis frame: x to the patient's right (the line between the hip
    bones), y forward, z up when standing level. Its orientation in the world
    (z up) is ``Rz(yaw) Ry(-obliquity) Rx(-tilt)``, so ``obliquity_deg`` is
    exactly the angle of the pelvis's right-pointing axis above the horizontal
    (positive: the right side higher, DESIGN.md section 4), whatever the tilt
    (anterior tilt positive) and the heading.

    Parameters
    ----------
    obliquity_deg, tilt_deg, yaw_deg : callable of t_s -> degrees
        The three angles against time (s).
    acceleration_ms2 : callable of t_s -> (3,) or None
        The sacrum's linear acceleration in the world frame, m/s^2 (sway of
        the body's centre of mass); None for none.
    """

    obliquity_deg: Callable[[float], float] = _const(0.0)
    tilt_deg: Callable[[float], float] = _const(0.0)
    yaw_deg: Callable[[float], float] = _const(0.0)
    acceleration_ms2: Callable[[float], np.ndarray] | None = None

    def rotation(self, t_s: float) -> np.ndarray:
        """Pelvis frame -> world frame at ``t_s``."""
        return rotation_z(self.yaw_deg(t_s)) @ rotation_y(-self.obliquity_deg(t_s)) @ rotation_x(-self.tilt_deg(t_s))


def mounting(*, sacral_slope_deg: float = 25.0, twist_deg: float = 0.0, yaw_deg: float = 0.0) -> np.ndarray:
    """Sensor axes -> pelvis axes for a sensor on a sacral belt.

    The sensor's board lies on the back of the sacrum: its x axis (marked
    "R" on the housing) to the patient's right, its y axis up along the
    sacrum, its z axis out of the back. ``sacral_slope_deg``: the sacrum's
    back faces backward and up, so the board leans back from vertical by this
    angle; ``twist_deg``: the belt sitting askew, the board rotated in its own
    plane; ``yaw_deg``: the board turned about the vertical (the belt off
    centre on a round back).
    """
    return rotation_z(yaw_deg) @ rotation_x(90.0 - sacral_slope_deg) @ rotation_z(twist_deg)


class ICM42688Chip:
    """The ICM-42688-P model (see the module notes).

    Parameters
    ----------
    motion : PelvisMotion
        What the sensor's wearer does.
    now_ns : callable
        The clock (``VirtualClock.now_ns`` or ``time.monotonic_ns``).
    mount : ndarray (3, 3)
        Sensor axes -> pelvis axes (:func:`mounting`).
    seed : int
        Seeds the noise and, unless given, the biases.
    accel_bias_g, gyro_bias_dps : array of 3 or None
        Biases at 25 degC; None draws them within the datasheet's typical
        spread (+-20 mg, +-0.5 dps).
    accel_noise_ug_rthz, gyro_noise_mdps_rthz : float
        White noise densities.
    temp_start_c, temp_skin_c, warm_tau_s : float
        The die warms from ``temp_start_c`` toward ``temp_skin_c`` with this time constant.
    gyro_tc_dps_c, accel_tc_g_c : float
        Bias drift with temperature (per axis, signs drawn).
    odr_error_ppm : float
        The chip's oscillator error (positive: samples come faster).
    start_s : float
        The time (on ``now_ns``) the chip is powered.
    """

    def __init__(self, *, motion: PelvisMotion | None = None, now_ns: Callable[[], int],
                 mount: np.ndarray | None = None, seed: int = 0, accel_bias_g: np.ndarray | None = None,
                 gyro_bias_dps: np.ndarray | None = None, accel_noise_ug_rthz: float = 70.0,
                 gyro_noise_mdps_rthz: float = 2.8, temp_start_c: float = 22.0, temp_skin_c: float = 31.0,
                 warm_tau_s: float = 300.0, gyro_tc_dps_c: float = 0.005, accel_tc_g_c: float = 0.00015,
                 odr_error_ppm: float = 0.0) -> None:
        self.motion = motion or PelvisMotion()
        self.now_ns = now_ns
        self.mount = np.eye(3) if mount is None else np.asarray(mount, dtype=np.float64)
        self.rng = np.random.default_rng(seed)
        self.accel_bias_g = (self.rng.uniform(-0.02, 0.02, 3) if accel_bias_g is None
                             else np.asarray(accel_bias_g, dtype=np.float64))
        self.gyro_bias_dps = (self.rng.uniform(-0.5, 0.5, 3) if gyro_bias_dps is None
                              else np.asarray(gyro_bias_dps, dtype=np.float64))
        self.gyro_tc = gyro_tc_dps_c * self.rng.choice([-1.0, 1.0], 3)
        self.accel_tc = accel_tc_g_c * self.rng.choice([-1.0, 1.0], 3)
        self.accel_noise_ug_rthz = accel_noise_ug_rthz
        self.gyro_noise_mdps_rthz = gyro_noise_mdps_rthz
        self.temp_start_c, self.temp_skin_c, self.warm_tau_s = temp_start_c, temp_skin_c, warm_tau_s
        self.odr_scale = 1.0 + odr_error_ppm * 1e-6
        self.t0_ns = now_ns()
        #: the cable: False makes every access fail (NACK)
        self.connected = True
        #: True: the chip answers but produces no new data
        self.silent = False
        self.fifo: deque[bytes] = deque()
        self.counters = {"samples": 0, "fifo_dropped": 0, "resets": 0}
        #: when each of the last samples was taken, ns on ``now_ns`` (for checking time stamps)
        self.sample_times_ns: deque[int] = deque(maxlen=100_000)
        self._reset()

    # -- registers --------------------------------------------------------------------------------------------------

    def _reset(self) -> None:
        self.regs = bytearray(128)
        for addr, value in RESET_VALUES.items():
            self.regs[addr] = value
        self.fifo.clear()
        self._fifo_partial = b""  # bytes of the head packet not yet read
        now = self.now_ns()
        self._busy_until_ns = now
        self._gyro_on_ns: int | None = None
        self._accel_on_ns: int | None = None
        self._next_sample_ns: int | None = None
        self._last = (np.full(3, INVALID), np.full(3, INVALID), 0)  # raw accel, gyro, temp

    def responds(self) -> bool:
        """Whether the chip acknowledges its address now (connected, not within a reset)."""
        return self.connected and self.now_ns() >= self._busy_until_ns

    def read_register(self, addr: int) -> int:
        """One register read (the bus checked :meth:`responds`)."""
        self._catch_up()
        if self.regs[REG["REG_BANK_SEL"]] & 0x07:
            return 0
        if addr == REG["FIFO_DATA"]:
            return self._pop_fifo_byte()
        if addr == REG["INT_STATUS"]:
            value = self.regs[addr]
            self.regs[addr] = 0
            return value
        if addr in (REG["FIFO_COUNTH"], REG["FIFO_COUNTL"]):
            count = self.fifo_count_bytes
            return (count >> 8) & 0xFF if addr == REG["FIFO_COUNTH"] else count & 0xFF
        if REG["TEMP_DATA1"] <= addr <= REG["GYRO_DATA_X1"] + 5:
            return self._data_byte(addr)
        return self.regs[addr]

    def read_block(self, addr: int, length: int) -> list[int]:
        """A burst read: successive registers, except FIFO_DATA which pops successive FIFO bytes."""
        if addr == REG["FIFO_DATA"]:
            return [self.read_register(addr) for _ in range(length)]
        return [self.read_register(addr + k) for k in range(length)]

    def write_register(self, addr: int, value: int) -> None:
        """One register write."""
        self._catch_up()
        value &= 0xFF
        if addr == REG["REG_BANK_SEL"]:
            self.regs[addr] = value
            return
        if self.regs[REG["REG_BANK_SEL"]] & 0x07:
            return  # other banks: accepted, not modelled
        if addr == REG["DEVICE_CONFIG"] and value & 0x01:
            self.counters["resets"] += 1
            self._reset()
            self._busy_until_ns = self.now_ns() + round(RESET_TIME_S * 1e9)
            return
        if addr == REG["SIGNAL_PATH_RESET"]:
            if value & 0x02:
                self.fifo.clear()
                self._fifo_partial = b""
            return  # self-clearing
        if addr in (REG["WHO_AM_I"], REG["INT_STATUS"], REG["FIFO_COUNTH"], REG["FIFO_COUNTL"]):
            return  # read-only
        old = self.regs[addr]
        self.regs[addr] = value
        if addr == REG["PWR_MGMT0"]:
            now = self.now_ns()
            gyro_on, accel_on = (value >> 2) & 0x03 == 0x03, value & 0x03 == 0x03
            if gyro_on and (old >> 2) & 0x03 != 0x03:
                self._gyro_on_ns = now + round(GYRO_START_S * 1e9)
            elif not gyro_on:
                self._gyro_on_ns = None
            if accel_on and old & 0x03 != 0x03:
                self._accel_on_ns = now + round(ACCEL_START_S * 1e9)
            elif not accel_on:
                self._accel_on_ns = None
            self._next_sample_ns = None
        elif addr in (REG["GYRO_CONFIG0"], REG["ACCEL_CONFIG0"]) and (old & 0x0F) != (value & 0x0F):
            self._next_sample_ns = None  # a new rate starts a new sample clock

    # -- settings as numbers ------------------------------------------------------------------------------------------

    @property
    def odr_hz(self) -> float:
        return ODR_HZ.get(self.regs[REG["GYRO_CONFIG0"]] & 0x0F, 1000.0)

    @property
    def gyro_fs_dps(self) -> float:
        return GYRO_FS_DPS[self.regs[REG["GYRO_CONFIG0"]] >> 5]

    @property
    def accel_fs_g(self) -> float:
        return ACCEL_FS_G.get(self.regs[REG["ACCEL_CONFIG0"]] >> 5, 16.0)

    @property
    def fifo_count_bytes(self) -> int:
        return len(self.fifo) * PACKET_BYTES + len(self._fifo_partial)

    def temperature_c(self, t_s: float) -> float:
        """The die's temperature at ``t_s`` since power-up."""
        return self.temp_skin_c + (self.temp_start_c - self.temp_skin_c) * math.exp(-t_s / self.warm_tau_s)

    # -- what the sensor measures ------------------------------------------------------------------------------

    def true_specific_force_g(self, t_s: float) -> np.ndarray:
        """Gravity reaction plus linear acceleration in the sensor's axes, g (no bias, no noise)."""
        r_ws = self.motion.rotation(t_s) @ self.mount
        f_world = np.array([0.0, 0.0, 1.0])
        if self.motion.acceleration_ms2 is not None:
            f_world = f_world + np.asarray(self.motion.acceleration_ms2(t_s), dtype=np.float64) / G_MS2
        return r_ws.T @ f_world

    def true_rate_dps(self, t_s: float, *, h_s: float = 1e-4) -> np.ndarray:
        """Angular rate of the sensor in its own axes, dps (central difference of the orientation)."""
        a = self.motion.rotation(t_s - h_s) @ self.mount
        b = self.motion.rotation(t_s + h_s) @ self.mount
        d = a.T @ b  # rotation over 2 h in the sensor's axes
        angle = math.acos(max(-1.0, min(1.0, (np.trace(d) - 1.0) / 2.0)))
        if angle < 1e-12:
            return np.zeros(3)
        axis = np.array([d[2, 1] - d[1, 2], d[0, 2] - d[2, 0], d[1, 0] - d[0, 1]]) / (2.0 * math.sin(angle))
        return np.degrees(axis * angle / (2.0 * h_s))

    def _sample(self, t_s: float) -> tuple[np.ndarray, np.ndarray, int]:
        """Raw accel, gyro and temperature codes at ``t_s`` since power-up."""
        temp = self.temperature_c(t_s)
        dt_c = temp - 25.0
        odr = self.odr_hz
        bw = odr / 2.0
        accel = (self.true_specific_force_g(t_s) + self.accel_bias_g + self.accel_tc * dt_c
                 + self.accel_noise_ug_rthz * 1e-6 * math.sqrt(bw) * self.rng.standard_normal(3))
        gyro = (self.true_rate_dps(t_s) + self.gyro_bias_dps + self.gyro_tc * dt_c
                + self.gyro_noise_mdps_rthz * 1e-3 * math.sqrt(bw) * self.rng.standard_normal(3))
        a_code = np.clip(np.round(accel * 32768.0 / self.accel_fs_g), -32767, 32767).astype(int)
        g_code = np.clip(np.round(gyro * 32768.0 / self.gyro_fs_dps), -32767, 32767).astype(int)
        t_code = int(np.clip(round((temp - 25.0) * 132.48), -32767, 32767))
        return a_code, g_code, t_code

    def _catch_up(self) -> None:
        """Produce every sample due up to now (into the data registers and the FIFO)."""
        now = self.now_ns()
        if self.silent or self._gyro_on_ns is None or self._accel_on_ns is None:
            return
        start = max(self._gyro_on_ns, self._accel_on_ns)
        if now < start:
            return
        period_ns = 1e9 / (self.odr_hz * self.odr_scale)
        if self._next_sample_ns is None:
            self._next_sample_ns = start
        while self._next_sample_ns <= now:
            t_s = (self._next_sample_ns - self.t0_ns) / 1e9
            a, g, temp = self._sample(t_s)
            self._last = (a, g, temp)
            self.counters["samples"] += 1
            self.sample_times_ns.append(self._next_sample_ns)
            self.regs[REG["INT_STATUS"]] |= INT_DATA_RDY
            self._push_fifo(a, g, temp, t_s)
            self._next_sample_ns = round(self._next_sample_ns + period_ns)

    def _push_fifo(self, a: np.ndarray, g: np.ndarray, temp_code: int, t_s: float) -> None:
        mode = self.regs[REG["FIFO_CONFIG"]] >> 6
        if mode == 0 or (self.regs[REG["FIFO_CONFIG1"]] & 0x07) != 0x07:
            return
        temp_c = temp_code / 132.48 + 25.0
        temp8 = int(np.clip(round((temp_c - 25.0) * 2.07), -128, 127)) & 0xFF
        stamp = int(round(t_s * 1e6)) & 0xFFFF
        body = b"".join(int(v).to_bytes(2, "big", signed=True) for v in (*a, *g))
        packet = bytes([PACKET3_HEADER]) + body + bytes([temp8]) + stamp.to_bytes(2, "big")
        if self.fifo_count_bytes + PACKET_BYTES > FIFO_BYTES:
            self.regs[REG["INT_STATUS"]] |= INT_FIFO_FULL
            self.counters["fifo_dropped"] += 1
            if mode == 1:  # stream: the oldest whole packet makes room
                self.fifo.popleft()
            else:  # stop-on-full: the new packet is lost
                return
        self.fifo.append(packet)

    def _pop_fifo_byte(self) -> int:
        if not self._fifo_partial:
            if not self.fifo:
                return 0xFF
            self._fifo_partial = self.fifo.popleft()
        byte, self._fifo_partial = self._fifo_partial[0], self._fifo_partial[1:]
        return byte

    def _data_byte(self, addr: int) -> int:
        a, g, temp = self._last
        if addr in (REG["TEMP_DATA1"], REG["TEMP_DATA0"]):
            word = temp
        else:
            k = (addr - REG["ACCEL_DATA_X1"]) // 2
            word = int(a[k]) if k < 3 else int(g[k - 3])
        raw = word.to_bytes(2, "big", signed=True)
        return raw[0] if (addr - REG["TEMP_DATA1"]) % 2 == 0 else raw[1]
