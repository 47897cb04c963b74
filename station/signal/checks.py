"""Argument checks shared by the signal functions: each names the bad argument."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["check_fs_hz"]


def check_fs_hz(fs_hz: float, *, name: str = "fs_hz") -> float:
    """``fs_hz`` as a float; ValueError naming ``name`` unless it is a positive finite rate in Hz."""
    if not (isinstance(fs_hz, (int, float, np.integer, np.floating)) and not isinstance(fs_hz, bool)
            and math.isfinite(fs_hz) and fs_hz > 0):
        raise ValueError(f"{name} must be a positive finite sampling rate in Hz, got {fs_hz!r}")
    return float(fs_hz)
