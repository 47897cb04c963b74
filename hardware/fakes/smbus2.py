"""A fake ``smbus2`` module on I2C chip models (the pelvis sensor's :class:`~hardware.imu.chip.ICM42688Chip`).

It has the part of smbus2's API (0.4-0.6) that the IMU driver uses, with the
same names, argument order and error reporting:

* ``SMBus(bus=None, force=False)`` opens ``/dev/i2c-<bus>`` (here: the fake
  bus of that number; ``FileNotFoundError`` when there is none, as when I2C
  is not enabled on the Pi); ``open(bus)``, ``close()``, context manager,
  ``fd`` (None: there is no file to ``ioctl``);
* ``read_byte_data(i2c_addr, register, force=None)``,
  ``write_byte_data(i2c_addr, register, value, force=None)``,
  ``read_i2c_block_data(i2c_addr, register, length, force=None)`` (at most
  32 bytes: ``ValueError`` beyond, as smbus2 does),
  ``write_i2c_block_data(i2c_addr, register, data, force=None)``;
* a device that does not acknowledge (nothing at that address, the cable
  pulled, a chip within its reset time) raises ``OSError(121, 'Remote I/O
  error')``, what the Raspberry Pi's I2C driver reports for a NACK.

Every transfer costs virtual time on the bus's clock: ``(bytes + 2)`` times 9
bit periods at ``bus_hz`` (400 kHz by default) plus ``call_overhead_us`` (the
ioctl), so a test sees how long its reads take. ``calls`` counts the calls
by name. :func:`fake_smbus2_module` puts the module into :data:`sys.modules`
for a block of code, so ``import smbus2`` in the driver finds it.
"""

from __future__ import annotations

import errno
import sys
import types
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = ["FakeI2CBus", "I2CDevice", "fake_smbus2_module", "install_simulated_pelvis_sensor", "make_smbus2"]

I2C_SMBUS_BLOCK_MAX = 32


class I2CDevice(Protocol):
    def responds(self) -> bool: ...
    def read_register(self, addr: int) -> int: ...
    def read_block(self, addr: int, length: int) -> list[int]: ...
    def write_register(self, addr: int, value: int) -> None: ...


class FakeI2CBus:
    """One I2C bus: devices by 7-bit address, and the clock that transfers cost time on.

    Parameters
    ----------
    devices : mapping of int to device
        Chip models by address (0x68 for the ICM-42688-P with AD0 low).
    clock : object with ``advance(ns=...)``, or None
        A :class:`~hardware.fakes.clock.VirtualClock`; None costs nothing.
    bus_hz : float
        SCL rate, Hz.
    call_overhead_us : float
        The cost of one ioctl, us.
    """

    def __init__(self, devices: Mapping[int, I2CDevice], *, clock: Any = None, bus_hz: float = 400_000.0,
                 call_overhead_us: float = 30.0) -> None:
        self.devices = dict(devices)
        self.clock = clock
        self.bus_hz = float(bus_hz)
        self.call_overhead_us = float(call_overhead_us)
        self.calls: Counter[str] = Counter()
        self.bytes_transferred = 0

    def charge(self, n_bytes: int) -> None:
        self.bytes_transferred += n_bytes
        if self.clock is not None:
            ns = round(((n_bytes + 2) * 9 / self.bus_hz + self.call_overhead_us * 1e-6) * 1e9)
            self.clock.advance(ns=ns)

    def device(self, addr: int) -> I2CDevice:
        dev = self.devices.get(addr)
        if dev is None or not dev.responds():
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        return dev


def make_smbus2(buses: Mapping[int, FakeI2CBus]) -> types.ModuleType:
    """A fake ``smbus2`` module whose ``SMBus(n)`` opens ``buses[n]``."""
    module = types.ModuleType("smbus2")
    module.__doc__ = "fake smbus2 (hardware.fakes.smbus2)"
    module.I2C_SMBUS_BLOCK_MAX = I2C_SMBUS_BLOCK_MAX  # type: ignore[attr-defined]
    calls: Counter[str] = Counter()
    module.calls = calls  # type: ignore[attr-defined]

    class SMBus:
        def __init__(self, bus: int | str | None = None, force: bool = False) -> None:
            self.fd: int | None = None
            self.force = force
            self._bus: FakeI2CBus | None = None
            if bus is not None:
                self.open(bus)

        def open(self, bus: int | str) -> None:
            n = int(str(bus).rsplit("-", 1)[-1]) if isinstance(bus, str) else int(bus)
            if n not in buses:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", f"/dev/i2c-{n}")
            self._bus = buses[n]
            self.fd = None  # no file behind the fake: the driver's ioctl (I2C_TIMEOUT) is skipped

        def close(self) -> None:
            self._bus = None
            self.fd = None

        def __enter__(self) -> SMBus:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

        def _take(self, name: str) -> FakeI2CBus:
            calls[name] += 1
            if self._bus is None:
                raise OSError(errno.EBADF, "Bad file descriptor")
            self._bus.calls[name] += 1
            return self._bus

        def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
            bus = self._take("read_byte_data")
            bus.charge(2)
            return int(bus.device(i2c_addr).read_register(register)) & 0xFF

        def write_byte_data(self, i2c_addr: int, register: int, value: int, force: bool | None = None) -> None:
            bus = self._take("write_byte_data")
            bus.charge(2)
            bus.device(i2c_addr).write_register(register, value)

        def read_i2c_block_data(self, i2c_addr: int, register: int, length: int,
                                force: bool | None = None) -> list[int]:
            if length > I2C_SMBUS_BLOCK_MAX:
                raise ValueError(f"Desired block length over {I2C_SMBUS_BLOCK_MAX} bytes")
            bus = self._take("read_i2c_block_data")
            bus.charge(length + 1)
            return [int(v) & 0xFF for v in bus.device(i2c_addr).read_block(register, length)]

        def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int],
                                 force: bool | None = None) -> None:
            if len(data) > I2C_SMBUS_BLOCK_MAX:
                raise ValueError(f"Data length cannot exceed {I2C_SMBUS_BLOCK_MAX} bytes")
            bus = self._take("write_i2c_block_data")
            bus.charge(len(data) + 1)
            dev = bus.device(i2c_addr)
            for k, value in enumerate(data):
                dev.write_register(register + k, value)

    module.SMBus = SMBus  # type: ignore[attr-defined]
    return module


@contextmanager
def fake_smbus2_module(buses: Mapping[int, FakeI2CBus]) -> Iterator[types.ModuleType]:
    """Install a fake ``smbus2`` for ``buses`` in :data:`sys.modules` for the block; restore it after."""
    missing = object()
    saved = sys.modules.get("smbus2", missing)
    module = make_smbus2(buses)
    sys.modules["smbus2"] = module
    try:
        yield module
    finally:
        if saved is missing:
            sys.modules.pop("smbus2", None)
        else:
            sys.modules["smbus2"] = saved  # type: ignore[assignment]


def install_simulated_pelvis_sensor() -> None:
    """Install, for good, a fake ``smbus2`` with a simulated pelvis sensor on bus 1 at 0x68, in real time.

    For a child process (``PelvisSpec(setup="hardware.fakes.smbus2:install_simulated_pelvis_sensor")``)
    and demos without hardware: the chip model on ``time.monotonic_ns``, worn on a sacrum sloping
    25 degrees, the pelvis swaying by about a degree at 0.3 Hz.
    """
    import math
    import time

    from hardware.imu.chip import ICM42688Chip, PelvisMotion, mounting

    motion = PelvisMotion(obliquity_deg=lambda t: math.sin(2 * math.pi * 0.3 * t), tilt_deg=lambda t: 8.0)
    chip = ICM42688Chip(motion=motion, now_ns=time.monotonic_ns, mount=mounting(twist_deg=3.0), seed=1)
    sys.modules["smbus2"] = make_smbus2({1: FakeI2CBus({0x68: chip})})
