"""Install the fake GPIO modules where ``import lgpio`` and ``import RPi.GPIO`` find them.

::

    board = Board.shared_clock(clock=VirtualClock())
    with fake_gpio_modules(board) as fakes:
        import hx711          # the real package, running on the fake RPi.GPIO
        fakes.lgpio.calls     # what the lgpio backend did

On entry the fakes go into :data:`sys.modules` as ``lgpio``, ``RPi`` and
``RPi.GPIO``, and any ``hx711`` module already imported is dropped, so that
the package is imported afresh against this board's fake (it binds
``RPi.GPIO`` at import time). On exit every one of those entries is put back
as it was, so nothing leaks from one test into the next.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hardware.fakes.board import Board
from hardware.fakes.lgpio import make_lgpio
from hardware.fakes.rpi_gpio import make_rpi_gpio

__all__ = ["FakeModules", "fake_gpio_modules"]

#: module names the fakes replace or make stale
MODULE_NAMES = ("lgpio", "RPi", "RPi.GPIO", "hx711")


@dataclass(frozen=True)
class FakeModules:
    """The fake modules installed for one board."""

    board: Board
    lgpio: types.ModuleType
    rpi: types.ModuleType
    rpi_gpio: types.ModuleType


@contextmanager
def fake_gpio_modules(board: Board) -> Iterator[FakeModules]:
    """Install fake ``lgpio`` and ``RPi.GPIO`` modules for ``board`` for the duration of the block."""
    missing = object()
    saved = {name: sys.modules.get(name, missing) for name in MODULE_NAMES}
    lgpio = make_lgpio(board)
    rpi, rpi_gpio = make_rpi_gpio(board)
    sys.modules.pop("hx711", None)
    sys.modules["lgpio"] = lgpio
    sys.modules["RPi"] = rpi
    sys.modules["RPi.GPIO"] = rpi_gpio
    try:
        yield FakeModules(board=board, lgpio=lgpio, rpi=rpi, rpi_gpio=rpi_gpio)
    finally:
        for name, module in saved.items():
            if module is missing:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
