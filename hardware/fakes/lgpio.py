"""A fake ``lgpio`` module on a :class:`~hardware.fakes.board.Board`.

It has the part of the real module's API (lg 0.2, ``PY_LGPIO/lgpio.py``) that
the HX711 backend uses, with the same names, argument order, return values and
error reporting:

* ``gpiochip_open(gpiochip)`` returns a handle (``index | gpiochip << 16``);
  ``gpiochip_close(handle)``;
* ``gpio_claim_output(handle, gpio, level=0, lFlags=0)``,
  ``gpio_claim_input(handle, gpio, lFlags=0)``,
  ``group_claim_input(handle, gpio, lFlags=0)`` (``gpio`` a list; the first is
  the group leader), ``gpio_free(handle, gpio)``, ``group_free(handle, gpio)``;
* ``gpio_write(handle, gpio, level)``, ``gpio_read(handle, gpio)`` (0 or 1),
  ``group_read(handle, gpio)`` returning ``[group_size, levels]`` with bit
  *x* the level of the group's GPIO *x*;
* errors as negative codes (``GPIO_BUSY`` -79 ...) turned into
  ``lgpio.error(error_text(code))`` while ``lgpio.exceptions`` is True (the
  default), or returned as they are when it is False;
* the line flags ``SET_ACTIVE_LOW``, ``SET_OPEN_DRAIN``, ``SET_OPEN_SOURCE``,
  ``SET_BIAS_PULL_UP``, ``SET_BIAS_PULL_DOWN``, ``SET_BIAS_DISABLE`` (bias
  flags set the board's pull on inputs).

Every call costs ``clock.gpio_call()`` (1 us of virtual time by default) and
is counted in ``module.calls`` (a :class:`collections.Counter` by function
name), so tests can check how many bus operations a read takes. Error texts
are close to lg's but not guaranteed identical.
"""

from __future__ import annotations

import types
from collections import Counter
from typing import Any

from hardware.fakes.board import Board

__all__ = ["make_lgpio"]

# levels
LOW = OFF = CLEAR = 0
HIGH = ON = SET = 1
GROUP_ALL = 0xFFFFFFFFFFFFFFFF

# line flags
SET_ACTIVE_LOW = 4
SET_OPEN_DRAIN = 8
SET_OPEN_SOURCE = 16
SET_BIAS_PULL_UP = 32
SET_BIAS_PULL_DOWN = 64
SET_BIAS_DISABLE = 128

# error codes (the ones this fake can give)
OKAY = 0
BAD_HANDLE = -5
BAD_GPIO_NUMBER = -73
CANNOT_OPEN_CHIP = -78
GPIO_BUSY = -79
GPIO_NOT_ALLOCATED = -80
NOT_GROUP_LEADER = -87
GPIO_NOT_AN_OUTPUT = -104

_ERROR_TEXT = {
    BAD_HANDLE: "bad handle",
    BAD_GPIO_NUMBER: "bad GPIO number",
    CANNOT_OPEN_CHIP: "can not open gpiochip",
    GPIO_BUSY: "GPIO busy",
    GPIO_NOT_ALLOCATED: "GPIO not allocated",
    NOT_GROUP_LEADER: "GPIO not a group leader",
    GPIO_NOT_AN_OUTPUT: "GPIO not an output",
}

_MAX_GPIO = 53


class error(Exception):  # noqa: N801 - the real module's name
    """lgpio module exception (as in the real module: ``str`` is the repr of the text)."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return repr(self.value)


def error_text(errnum: int) -> str:
    """A description of an lgpio error number."""
    return _ERROR_TEXT.get(errnum, f"unknown error {errnum}")


class _Claim:
    __slots__ = ("handle", "output", "leader")

    def __init__(self, handle: int, output: bool, leader: int | None) -> None:
        self.handle, self.output, self.leader = handle, output, leader


class _FakeLgpio:
    """The state behind one fake module: open handles, claims, groups."""

    def __init__(self, board: Board, module: types.ModuleType) -> None:
        self.board = board
        self.module = module
        self.calls: Counter[str] = Counter()
        self._handles: set[int] = set()
        self._next_index = 0
        self._claims: dict[int, _Claim] = {}
        self._groups: dict[int, list[int]] = {}

    # ------------------------------------------------------------- helpers

    def _status(self, code: int) -> int:
        if code < 0 and self.module.exceptions:
            raise error(error_text(code))
        return code

    def _enter(self, name: str) -> None:
        self.calls[name] += 1
        self.board.clock.gpio_call()

    def _check_handle(self, handle: int) -> int:
        return OKAY if handle in self._handles else BAD_HANDLE

    def _check_claim(self, handle: int, gpio: int) -> int:
        code = self._check_handle(handle)
        if code:
            return code
        claim = self._claims.get(gpio)
        if claim is None or claim.handle != handle:
            return GPIO_NOT_ALLOCATED
        return OKAY

    def _claimable(self, handle: int, gpio: int) -> int:
        code = self._check_handle(handle)
        if code:
            return code
        if not isinstance(gpio, int) or not 0 <= gpio <= _MAX_GPIO:
            return BAD_GPIO_NUMBER
        claim = self._claims.get(gpio)
        if claim is not None and claim.handle != handle:
            return GPIO_BUSY
        return OKAY

    def _apply_pull(self, gpio: int, flags: int) -> None:
        if flags & SET_BIAS_PULL_UP:
            self.board.set_pull(gpio, "up")
        elif flags & SET_BIAS_PULL_DOWN:
            self.board.set_pull(gpio, "down")
        elif flags & SET_BIAS_DISABLE:
            self.board.set_pull(gpio, "off")

    def _free(self, gpio: int) -> None:
        claim = self._claims.pop(gpio)
        if claim.output:
            self.board.release(gpio)

    # ------------------------------------------------------------ chip

    def gpiochip_open(self, gpiochip: int) -> int:
        self._enter("gpiochip_open")
        if gpiochip != self.board.gpiochip:
            return self._status(CANNOT_OPEN_CHIP)
        index = self._next_index
        self._next_index += 1
        handle = index | (gpiochip << 16)
        self._handles.add(handle)
        return handle

    def gpiochip_close(self, handle: int) -> int:
        self._enter("gpiochip_close")
        code = self._check_handle(handle)
        if code:
            return self._status(code)
        for gpio in [g for g, c in self._claims.items() if c.handle == handle]:
            self._free(gpio)
        for leader in [g for g in self._groups if g not in self._claims]:
            del self._groups[leader]
        self._handles.discard(handle)
        return OKAY

    # ------------------------------------------------------------ claims

    def gpio_claim_output(self, handle: int, gpio: int, level: int = 0, lFlags: int = 0) -> int:  # noqa: N803
        self._enter("gpio_claim_output")
        code = self._claimable(handle, gpio)
        if code:
            return self._status(code)
        self._claims[gpio] = _Claim(handle, True, None)
        self.board.drive(gpio, 1 if level else 0)
        return OKAY

    def gpio_claim_input(self, handle: int, gpio: int, lFlags: int = 0) -> int:  # noqa: N803
        self._enter("gpio_claim_input")
        code = self._claimable(handle, gpio)
        if code:
            return self._status(code)
        self._claims[gpio] = _Claim(handle, False, None)
        self.board.release(gpio)
        self._apply_pull(gpio, lFlags)
        return OKAY

    def group_claim_input(self, handle: int, gpio: list[int], lFlags: int = 0) -> int:  # noqa: N803
        self._enter("group_claim_input")
        gpios = list(gpio)
        if not gpios:
            return OKAY
        for g in gpios:
            code = self._claimable(handle, g)
            if code:
                return self._status(code)
        leader = gpios[0]
        for g in gpios:
            self._claims[g] = _Claim(handle, False, leader)
            self.board.release(g)
            self._apply_pull(g, lFlags)
        self._groups[leader] = gpios
        return OKAY

    def gpio_free(self, handle: int, gpio: int) -> int:
        self._enter("gpio_free")
        code = self._check_claim(handle, gpio)
        if code:
            return self._status(code)
        self._free(gpio)
        return OKAY

    def group_free(self, handle: int, gpio: int) -> int:
        self._enter("group_free")
        code = self._check_claim(handle, gpio)
        if code:
            return self._status(code)
        members = self._groups.pop(gpio, None)
        if members is None:
            return self._status(NOT_GROUP_LEADER)
        for g in members:
            self._free(g)
        return OKAY

    # --------------------------------------------------------------- I/O

    def gpio_write(self, handle: int, gpio: int, level: int) -> int:
        self._enter("gpio_write")
        code = self._check_claim(handle, gpio)
        if code:
            return self._status(code)
        if not self._claims[gpio].output:
            return self._status(GPIO_NOT_AN_OUTPUT)
        self.board.drive(gpio, 1 if level else 0)
        return OKAY

    def gpio_read(self, handle: int, gpio: int) -> int:
        self._enter("gpio_read")
        code = self._check_claim(handle, gpio)
        if code:
            return self._status(code)
        return self.board.level(gpio)

    def group_read(self, handle: int, gpio: int) -> list[int]:
        self._enter("group_read")
        code = self._check_claim(handle, gpio)
        if code == OKAY:
            claim = self._claims[gpio]
            if claim.leader is None:
                members = [gpio]
            elif claim.leader == gpio:
                members = self._groups[gpio]
            else:
                code = NOT_GROUP_LEADER
        if code:
            return [self._status(code), 0]
        level = self.board.level
        bits = 0
        for i, g in enumerate(members):
            bits |= level(g) << i
        return [len(members), bits]


def make_lgpio(board: Board) -> types.ModuleType:
    """A new fake ``lgpio`` module wired to ``board``.

    Its state is at ``module.calls`` (call counts) and ``module.fake``.
    """
    module = types.ModuleType("lgpio", "Fake lgpio module on a hardware.fakes board (for tests).")
    fake = _FakeLgpio(board, module)
    constants: dict[str, Any] = {
        name: value for name, value in globals().items()
        if name.isupper() and isinstance(value, int) and not name.startswith("_")
    }
    module.__dict__.update(constants)
    module.exceptions = True
    module.error = error
    module.error_text = error_text
    for name in ("gpiochip_open", "gpiochip_close", "gpio_claim_output", "gpio_claim_input",
                 "group_claim_input", "gpio_free", "group_free", "gpio_write", "gpio_read", "group_read"):
        setattr(module, name, getattr(fake, name))
    module.calls = fake.calls
    module.fake = fake
    module.board = board
    return module
