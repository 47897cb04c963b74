"""Checking a drill's parameters: each parameter a default and a check that names it when it fails."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any

__all__ = ["Check", "ParamSpec", "number", "integer", "choice", "boolean", "numbers", "check_params", "optional"]

Check = Callable[[str, Any], Any]
#: parameter -> (default, check); the default None means "from the level table" or "not set"
ParamSpec = dict[str, tuple[Any, Check]]


def number(lo: float, hi: float) -> Check:
    def check(where: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
            raise ValueError(f"{where} must be a number, got {value!r}")
        if not lo <= float(value) <= hi:
            raise ValueError(f"{where} must be between {lo:g} and {hi:g}, got {value!r}")
        return float(value)
    return check


def integer(lo: int, hi: int) -> Check:
    def check(where: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"{where} must be an integer from {lo} to {hi}, got {value!r}")
        return int(value)
    return check


def boolean() -> Check:
    def check(where: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    return check


def choice(*options: Any) -> Check:
    def check(where: str, value: Any) -> Any:
        if value not in options:
            raise ValueError(f"{where} must be one of {list(options)}, got {value!r}")
        return value
    return check


def numbers(lo: float, hi: float, *, min_n: int = 1, max_n: int = 50) -> Check:
    one = number(lo, hi)

    def check(where: str, value: Any) -> list[float]:
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__"):
            raise ValueError(f"{where} must be a list of numbers, got {value!r}")
        if not min_n <= len(value) <= max_n:
            raise ValueError(f"{where} must hold {min_n} to {max_n} numbers, got {len(value)}")
        return [one(f"{where}[{i}]", v) for i, v in enumerate(value)]
    return check


def optional(inner: Check) -> Check:
    def check(where: str, value: Any) -> Any:
        return None if value is None else inner(where, value)
    return check


def check_params(drill: str, spec: ParamSpec, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters the caller set, checked (no defaults filled in)."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a dict, got {params!r}")
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key not in spec:
            raise ValueError(f"params: unknown parameter {key!r} for drill {drill!r} (takes {sorted(spec)})")
        out[key] = spec[key][1](f"params[{key!r}]", value)
    return out
