"""The ICM-42688-P driver: I2C through ``smbus2``, FIFO reads at 100 Hz or more, bounded waits.

The same code runs on the Raspberry Pi (the real ``smbus2`` on ``/dev/i2c-1``)
and in tests (:mod:`hardware.fakes.smbus2` on :class:`hardware.imu.chip.ICM42688Chip`):
it imports ``smbus2`` when it opens the bus, and keeps time with an injected
clock (the :mod:`time` module by default, a virtual clock in tests).

What it does
------------
* **open**: reads WHO_AM_I (0x47, else a fault naming what answered),
  soft-resets the chip, sets the full scales and the output data rate (the
  same for both sensors), the FIFO to stop-on-full with accel, gyro and
  temperature (16-byte packet 3), switches both sensors to low-noise mode,
  waits for the gyroscope to start (45 ms) and flushes the FIFO. On the Pi it
  also sets the I2C adapter's timeout to 100 ms (``ioctl I2C_TIMEOUT``), so
  one transfer on a stuck bus cannot block for the kernel's default second.
* **read**: polls FIFO_COUNT every ``poll_s`` (5 ms) until at least one
  packet is there or ``timeout_s`` passes, then reads whole packets in 32-byte
  block reads and decodes them. Every wait is bounded: no loop waits on the
  chip without a deadline.
* **time stamps**: on the host's monotonic clock (the plate's clock). The
  chip's own ODR time stamps (us, in every packet) give its time; each read
  pairs the chip time of its last packet with the host time of the read
  (late by the read's latency). A line through the last 1000 reads (the
  chip's rate against the host's: its RC oscillator is off by up to a few
  %), moved down onto the earliest of them (the smallest latency), turns
  chip time into host time. The error is about a millisecond, far below
  anything the pelvis does.
* **FIFO overflow** (the reader stalled for more than 1.28 s at 100 Hz):
  the chip keeps the oldest 128 samples (stop-on-full); the driver reads
  them, placing them after the previous samples by the chip's time stamps
  (on the time base from before the stall), flushes the FIFO, counts the overflow and the samples lost (``overflows``,
  ``lost_samples``) and starts again from the next sample: the gap stays a
  gap (the recording's pelvis cells stay empty there).
* **faults** (:class:`ImuFault`, one line): any I2C error (``OSError``: the
  cable pulled, nothing at the address: a NACK is immediate), a wrong
  WHO_AM_I, or no new sample for ``fault_timeout_s`` (0.5 s: a sensor that
  answers but has stopped, e.g. browned out). An unplugged or silent sensor is
  therefore reported within ``fault_timeout_s`` plus one poll, well within
  1 s, and nothing waits longer.

References
----------
.. [1] TDK InvenSense (2021) ICM-42688-P datasheet, DS-000347 rev 1.8:
   register map (bank 0), FIFO packet 3, sensitivity per full scale,
   temperature formulas, start-up times.
"""

from __future__ import annotations

import math
import time as _time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from hardware.imu.chip import ACCEL_FS_G, GYRO_FS_DPS, ODR_HZ, REG, WHO_AM_I_VALUE

__all__ = ["DEFAULT_ADDRESS", "ICM42688", "ImuFault", "ImuSample", "decode_packet"]

#: The ICM-42688-P's I2C address with AD0 low (0x69 with AD0 high).
DEFAULT_ADDRESS = 0x68
PACKET_BYTES = 16
FIFO_BYTES = 2048
BLOCK_MAX = 32
#: ioctl request of Linux's i2c-dev: the adapter's timeout, in units of 10 ms.
I2C_TIMEOUT = 0x0702
#: The chip's rate against the host's is measured once the reads kept span this long (s) ...
SCALE_AFTER_S = 2.0
#: ... over the last this many reads (about 10 s of reads at one read per sample at 100 Hz).
LINE_POINTS = 1000
_CODE_BY_ODR = {hz: code for code, hz in ODR_HZ.items()}
_FS_CODE_GYRO = {fs: code for code, fs in GYRO_FS_DPS.items()}
_FS_CODE_ACCEL = {fs: code for code, fs in ACCEL_FS_G.items()}


class ImuFault(RuntimeError):
    """The pelvis sensor failed: not answering, a wrong chip, or no data. The message is one line."""


@dataclass(frozen=True)
class ImuSample:
    """One decoded sample: time on the host's monotonic clock (s), accel (g), gyro (dps), die temperature (degC)."""

    t_s: float
    accel_g: tuple[float, float, float]
    gyro_dps: tuple[float, float, float]
    temp_c: float


def _s16(hi: int, lo: int) -> int:
    return int.from_bytes(bytes((hi, lo)), "big", signed=True)


def decode_packet(packet: bytes | list[int], *, accel_fs_g: float,
                  gyro_fs_dps: float) -> tuple[np.ndarray, np.ndarray, float, int] | None:
    """Decode one 16-byte FIFO packet 3.

    Returns
    -------
    (accel_g, gyro_dps, temp_c, stamp_us) or None
        None for an empty or invalid packet (header bit 7 set, or not accel and
        gyro, or a sensor's invalid value -32768).

    Examples
    --------
    >>> a, g, t, s = decode_packet([0x68, 0x20, 0, 0, 0, 0xE0, 0, 0, 131, 0, 0, 0xFF, 0x7D, 4, 0x27, 0x10],
    ...                            accel_fs_g=4.0, gyro_fs_dps=250.0)
    >>> a.tolist(), g.round(3).tolist(), round(t, 2), s
    ([1.0, 0.0, -1.0], [1.0, 0.0, -1.0], 26.93, 10000)
    """
    p = bytes(packet)
    if len(p) != PACKET_BYTES or p[0] & 0x80 or (p[0] & 0x60) != 0x60:
        return None
    words = [_s16(p[1 + 2 * k], p[2 + 2 * k]) for k in range(6)]
    if -32768 in words:
        return None
    accel = np.array(words[:3], dtype=np.float64) * (accel_fs_g / 32768.0)
    gyro = np.array(words[3:], dtype=np.float64) * (gyro_fs_dps / 32768.0)
    temp = int.from_bytes(p[13:14], "big", signed=True) / 2.07 + 25.0
    stamp = (p[14] << 8) | p[15]
    return accel, gyro, temp, stamp


class ICM42688:
    """The pelvis sensor on I2C.

    Parameters
    ----------
    bus : int or smbus2.SMBus-like
        The I2C bus number (``/dev/i2c-<n>``; 1 on the Pi's header pins 3 and
        5), opened with ``smbus2.SMBus`` at :meth:`open`, or an open bus object.
    address : int
        0x68 (AD0 low) or 0x69.
    odr_hz : float
        Output data rate: 100, 200, 500 or 1000 Hz (the station reads at 100 Hz or more).
    accel_fs_g : float
        Accelerometer full scale, 2, 4, 8 or 16 g (4: a standing pelvis sees about 1 g).
    gyro_fs_dps : float
        Gyroscope full scale, 15.625 to 2000 dps (250: the pelvis turns slower than that).
    clock : object
        ``monotonic()`` and ``sleep(s)`` (the :mod:`time` module, or a virtual clock).
    fault_timeout_s : float
        No new sample for this long is a fault (0.5 s).
    poll_s : float
        Pause between polls of the FIFO count (5 ms).
    """

    def __init__(self, *, bus: Any = 1, address: int = DEFAULT_ADDRESS, odr_hz: float = 100.0,
                 accel_fs_g: float = 4.0, gyro_fs_dps: float = 250.0, clock: Any = _time,
                 fault_timeout_s: float = 0.5, poll_s: float = 0.005) -> None:
        if odr_hz not in _CODE_BY_ODR or odr_hz < 100.0:
            raise ValueError(f"odr_hz must be one of 100, 200, 500, 1000, 2000 Hz, got {odr_hz!r}")
        if accel_fs_g not in _FS_CODE_ACCEL:
            raise ValueError(f"accel_fs_g must be one of {sorted(_FS_CODE_ACCEL)}, got {accel_fs_g!r}")
        if gyro_fs_dps not in _FS_CODE_GYRO:
            raise ValueError(f"gyro_fs_dps must be one of {sorted(_FS_CODE_GYRO)}, got {gyro_fs_dps!r}")
        if not 0.05 <= fault_timeout_s <= 0.9:
            raise ValueError(f"fault_timeout_s must be within 0.05..0.9 s (faults within 1 s), got {fault_timeout_s!r}")
        self._bus_arg = bus
        self.address = int(address)
        self.odr_hz = float(odr_hz)
        self.accel_fs_g = float(accel_fs_g)
        self.gyro_fs_dps = float(gyro_fs_dps)
        self.clock = clock
        self.fault_timeout_s = float(fault_timeout_s)
        self.poll_s = float(poll_s)
        self._bus: Any = None
        self._owns_bus = False
        self._last_sample_host_s: float | None = None
        self._last_t_s: float | None = None
        self._last_stamp: int | None = None
        self._chip_s: float | None = None
        self._reads: deque[tuple[float, float]] = deque(maxlen=LINE_POINTS)
        self._data_since_s: float | None = None
        self.overflows = 0
        self.lost_samples = 0
        self.samples_read = 0
        self.bad_packets = 0

    # -- bus access: every OSError becomes a fault -------------------------------------------------------------------

    @property
    def where(self) -> str:
        bus = self._bus_arg if isinstance(self._bus_arg, int) else "(given)"
        return f"I2C bus {bus} address 0x{self.address:02x}"

    def _fault(self, what: str, exc: OSError | None = None) -> ImuFault:
        detail = f" ({exc.strerror or exc})" if exc is not None else ""
        return ImuFault(f"pelvis sensor on {self.where}: {what}{detail}")

    def _read(self, reg: int) -> int:
        try:
            return int(self._bus.read_byte_data(self.address, reg))
        except OSError as exc:
            raise self._fault("does not answer: is it plugged in?", exc) from None

    def _write(self, reg: int, value: int) -> None:
        try:
            self._bus.write_byte_data(self.address, reg, value)
        except OSError as exc:
            raise self._fault("does not answer: is it plugged in?", exc) from None

    def _block(self, reg: int, length: int) -> list[int]:
        try:
            return list(self._bus.read_i2c_block_data(self.address, reg, length))
        except OSError as exc:
            raise self._fault("does not answer: is it plugged in?", exc) from None

    # -- life cycle ---------------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Open the bus, check the chip, configure it, start the FIFO. Raises :class:`ImuFault`."""
        if isinstance(self._bus_arg, int):
            import smbus2  # the real module on the Pi, the fake in tests

            try:
                self._bus = smbus2.SMBus(self._bus_arg)
            except OSError as exc:
                raise self._fault("no such I2C bus (is I2C enabled?)", exc) from None
            self._owns_bus = True
            fd = getattr(self._bus, "fd", None)
            if isinstance(fd, int):
                try:
                    import fcntl

                    fcntl.ioctl(fd, I2C_TIMEOUT, 10)  # 10 x 10 ms: a stuck transfer gives up after 0.1 s
                except (OSError, ValueError):
                    pass
        else:
            self._bus = self._bus_arg
        who = self._read(REG["WHO_AM_I"])
        if who != WHO_AM_I_VALUE:
            raise self._fault(f"WHO_AM_I is 0x{who:02x}, not 0x{WHO_AM_I_VALUE:02x}: not an ICM-42688-P")
        self._write(REG["REG_BANK_SEL"], 0)
        self._write(REG["DEVICE_CONFIG"], 0x01)  # soft reset
        deadline = self.clock.monotonic() + 0.05
        self.clock.sleep(0.002)  # 1 ms reset time, then the chip answers again
        while True:
            try:
                who = int(self._bus.read_byte_data(self.address, REG["WHO_AM_I"]))
                break
            except OSError as exc:
                if self.clock.monotonic() >= deadline:
                    raise self._fault("does not come back after its reset", exc) from None
                self.clock.sleep(0.001)
        odr = _CODE_BY_ODR[self.odr_hz]
        self._write(REG["GYRO_CONFIG0"], (_FS_CODE_GYRO[self.gyro_fs_dps] << 5) | odr)
        self._write(REG["ACCEL_CONFIG0"], (_FS_CODE_ACCEL[self.accel_fs_g] << 5) | odr)
        self._write(REG["FIFO_CONFIG1"], 0x07)  # accel, gyro, temperature: packet 3
        self._write(REG["FIFO_CONFIG"], 0x80)  # stop-on-full
        self._write(REG["PWR_MGMT0"], 0x0F)  # gyro and accel in low-noise mode
        self.clock.sleep(0.045)  # gyro start-up 30 ms (and no register writes for 200 us)
        self._flush()
        self._read(REG["INT_STATUS"])  # clears it
        now = self.clock.monotonic()
        self._data_since_s = now
        self._last_sample_host_s = now

    def close(self) -> None:
        """Put the sensors to sleep (best effort) and close the bus. Idempotent."""
        if self._bus is None:
            return
        try:
            self._bus.write_byte_data(self.address, REG["PWR_MGMT0"], 0x00)
        except OSError:
            pass
        if self._owns_bus:
            self._bus.close()
        self._bus = None

    def __enter__(self) -> ICM42688:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _flush(self) -> None:
        self._write(REG["SIGNAL_PATH_RESET"], 0x02)
        self._last_stamp = None  # the next sample starts a new time base
        self._chip_s = None

    # -- reading ------------------------------------------------------------------------------------------------------

    def fifo_count(self) -> int:
        """Bytes in the FIFO (FIFO_COUNTH/L read in one burst, so they belong together)."""
        hi, lo = self._block(REG["FIFO_COUNTH"], 2)
        return (hi << 8) | lo

    def read_data_registers(self) -> tuple[np.ndarray, np.ndarray, float]:
        """The latest sample from the data registers (one 14-byte burst): accel (g), gyro (dps), temperature (degC)."""
        raw = self._block(REG["TEMP_DATA1"], 14)
        temp = _s16(raw[0], raw[1]) / 132.48 + 25.0
        words = [_s16(raw[2 + 2 * k], raw[3 + 2 * k]) for k in range(6)]
        accel = np.array(words[:3], dtype=np.float64) * (self.accel_fs_g / 32768.0)
        gyro = np.array(words[3:], dtype=np.float64) * (self.gyro_fs_dps / 32768.0)
        return accel, gyro, temp

    def read(self, *, timeout_s: float = 0.1) -> list[ImuSample]:
        """The samples that arrived, waiting up to ``timeout_s`` for the first one.

        Returns
        -------
        list of ImuSample
            In time order, possibly empty (nothing yet within ``timeout_s``).

        Raises
        ------
        ImuFault
            The sensor does not answer, or no new sample came for ``fault_timeout_s``.
        """
        if self._bus is None:
            raise ImuFault(f"pelvis sensor on {self.where}: not open")
        deadline = self.clock.monotonic() + max(0.0, timeout_s)
        while True:
            count = self.fifo_count()
            now = self.clock.monotonic()
            if count >= PACKET_BYTES:
                return self._drain(count)
            assert self._last_sample_host_s is not None
            if now - self._last_sample_host_s >= self.fault_timeout_s:
                raise self._fault(f"no data for {now - self._last_sample_host_s:.2f} s (the sensor answers but "
                                  "has stopped measuring)")
            if now >= deadline:
                return []
            self.clock.sleep(min(self.poll_s, max(0.0, deadline - now)))

    def _host_line(self, chip: np.ndarray) -> np.ndarray:
        """Host times of chip times: the line through the recent reads, moved down onto their lower envelope.

        Each read gives a point (chip time of its last packet, host time of
        the read), late by the read's latency (0 to a poll period). The slope
        (the chip's rate against the host's) is the least-squares slope of the
        last :data:`LINE_WINDOW_S` of reads once they span
        :data:`SCALE_AFTER_S` (1 before); the line is then moved down until it
        touches the earliest point: the smallest latency seen.
        """
        c = np.array([p[0] for p in self._reads])
        h = np.array([p[1] for p in self._reads])
        slope = 1.0
        if c[-1] - c[0] >= SCALE_AFTER_S:
            slope = float(np.clip(np.polyfit(c - c[0], h - h[0], 1)[0], 0.97, 1.03))
        offset = float(np.min(h - slope * c))
        return offset + slope * chip

    def _drain(self, count: int) -> list[ImuSample]:
        overflowed = count >= FIFO_BYTES - PACKET_BYTES + 1
        if overflowed:
            self._read(REG["INT_STATUS"])  # clear FIFO_FULL
        n = count // PACKET_BYTES
        raw: list[int] = []
        per_block = BLOCK_MAX // PACKET_BYTES
        for k in range(0, n, per_block):
            raw += self._block(REG["FIFO_DATA"], PACKET_BYTES * min(per_block, n - k))
        t_read = self.clock.monotonic()
        decoded = []
        for k in range(n):
            d = decode_packet(raw[PACKET_BYTES * k: PACKET_BYTES * (k + 1)], accel_fs_g=self.accel_fs_g,
                              gyro_fs_dps=self.gyro_fs_dps)
            if d is None:
                self.bad_packets += 1
                continue
            decoded.append(d)
        if not decoded:
            if raw:  # out of step with the packets: start again clean
                self._flush()
            return []
        # the chip's time of each packet (s), unwrapped from its 16-bit us stamps since the last flush
        period_s = 1.0 / self.odr_hz
        chip = np.zeros(len(decoded))
        prev, acc = self._last_stamp, self._chip_s
        for k, d in enumerate(decoded):
            if prev is None or acc is None:
                acc = 0.0
            else:
                delta = (((d[3] - prev) & 0xFFFF) or round(period_s * 1e6)) / 1e6
                if k == 0 and delta > 1.5 * period_s:
                    self.lost_samples += int(round(delta / period_s)) - 1
                acc += delta
            chip[k] = acc
            prev = d[3]
        # host time = chip time + offset; the offset is the smallest read latency seen, let to rise slowly so
        # that it follows a chip oscillator slower than the host's (the ICM's RC oscillator is within +-2 %)
        if self._chip_s is None:
            self._reads.clear()
        if not overflowed or not self._reads:  # (old packets of a stop-on-full FIFO say nothing of the latency)
            self._reads.append((float(chip[-1]), t_read))
        self._chip_s = float(chip[-1])
        times = self._host_line(chip)
        out = []
        for (accel, gyro, temp, _stamp), t in zip(decoded, times):
            if self._last_t_s is not None and t <= self._last_t_s:
                t = self._last_t_s + 1e-6  # the read's latency varied: keep time increasing
            out.append(ImuSample(t_s=float(t), accel_g=tuple(accel.tolist()), gyro_dps=tuple(gyro.tolist()),
                                 temp_c=float(temp)))
            self._last_t_s = float(t)
        self._last_stamp = decoded[-1][3]
        self.samples_read += len(out)
        self._last_sample_host_s = t_read
        if overflowed:
            self.overflows += 1
            self._flush()
            lost = int(math.floor((t_read - self._last_t_s) * self.odr_hz))
            self.lost_samples += max(0, lost)
        return out
