"""Fixtures for the HX711 tests: a virtual clock, boards of chip models, fake GPIO modules, a hang guard."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from hardware.fakes.board import Board
from hardware.fakes.clock import VirtualClock
from hardware.fakes.install import fake_gpio_modules


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def installed() -> Callable[[Board], Any]:
    """Install the fake lgpio/RPi.GPIO modules for a board until the test ends."""
    contexts = []

    def install(board: Board) -> Any:
        context = fake_gpio_modules(board)
        contexts.append(context)
        return context.__enter__()

    yield install
    for context in reversed(contexts):
        context.__exit__(None, None, None)


@pytest.fixture
def guarded() -> Callable[..., tuple[Any, BaseException | None, float]]:
    """Run a call in a thread with a hard time limit, so that a hang fails the test instead of blocking it.

    Returns (result, exception raised or None, wall time in seconds).
    """

    def run(call: Callable[[], Any], *, limit_s: float) -> tuple[Any, BaseException | None, float]:
        outcome: dict[str, Any] = {}

        def target() -> None:
            t0 = time.monotonic()
            try:
                outcome["result"] = call()
            except BaseException as exc:  # noqa: BLE001 - handed back to the test
                outcome["error"] = exc
            outcome["elapsed_s"] = time.monotonic() - t0

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(limit_s)
        if thread.is_alive():
            pytest.fail(f"the call did not return within {limit_s} s: it hangs")
        return outcome.get("result"), outcome.get("error"), outcome["elapsed_s"]

    return run
