"""JSON clean-up: numbers and containers as plain JSON data, one rule for the whole station.

The ``analyze`` output, the live result, drill summaries and the database's JSON
columns all go through :func:`json_ready`, so a value looks the same wherever it
is shown: numpy scalars become Python numbers, tuples and arrays lists, and NaN
and infinities ``None`` (JSON has no NaN; PostgreSQL refuses it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["NotPlainData", "json_ready"]


class NotPlainData(ValueError):
    """A value that is not data (an object, bytes) where plain JSON data was required."""


def json_ready(value: Any, *, strict: bool = False, what: str = "value") -> Any:
    """``value`` as plain data for ``json.dumps(allow_nan=False)``, recursively.

    Parameters
    ----------
    value : object
        Mappings (keys become text), lists, tuples and arrays, numbers, text, None.
    strict : bool, optional
        Raise :class:`NotPlainData` for anything else (default: pass it through
        unchanged, for ``json.dumps`` to judge).
    what : str, optional
        The value's name in the error message.

    Returns
    -------
    object
        The same data with NaN and infinities as ``None``.
    """
    if isinstance(value, Mapping):
        return {str(k): json_ready(v, strict=strict, what=what) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v, strict=strict, what=what) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist(), strict=strict, what=what)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if strict and not (value is None or isinstance(value, str)):
        raise NotPlainData(f"{what} must be plain data (numbers, text, lists, mappings), got {type(value).__name__}")
    return value
