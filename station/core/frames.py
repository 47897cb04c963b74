"""Raw frames: what every plate source yields.

A raw frame is one synchronous reading of the four load cells, in ADC counts,
before any calibration. The cell order is fixed everywhere in the project:
``fl`` front-left, ``fr`` front-right, ``bl`` back-left, ``br`` back-right
(DESIGN.md section 3).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from station.core.cop import GRAVITY_M_S2

CELLS: tuple[str, str, str, str] = ("fl", "fr", "bl", "br")

#: HX711 output codes for an input beyond full scale (24-bit two's complement).
HX711_MAX_CODE = 0x7FFFFF
HX711_MIN_CODE = -0x800000


class FrameFlag(enum.IntFlag):
    """Per-frame condition bits. ``NONE`` is a clean frame."""

    NONE = 0
    #: a cell returned an implausible value (spike, bit error); the counts are not to be trusted
    GLITCH = 1
    #: a cell returned a saturation code (0x7FFFFF or 0x800000)
    SATURATED = 2
    #: a cell did not answer (no data ready in time); its count is a repeat of the last good one
    CELL_FAULT = 4
    #: the source is replaying or simulating: not a measurement of a person
    SYNTHETIC = 8


#: plate source kinds (``PlateSource.kind``) whose frames are not a measurement of a person: the simulated
#: plate, a replayed recording, and the chip-model plate (the real HX711 backend on chip models fed by a
#: simulated person); the station uses the built-in calibration and the simulated patient on them
SYNTHETIC_SOURCES: tuple[str, ...] = ("simulated", "replay", "chip-model")


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One reading of the four cells.

    Parameters
    ----------
    seq : int
        Sequence number assigned by the source, incremented by one per frame
        produced (a gap means frames were lost after the source made them).
    t_s : float
        Time of the reading in seconds, on the source's clock. Live sources
        use ``time.monotonic()`` (system-wide on Linux, so comparable across
        processes); simulated sources in fast mode use simulated time.
    counts : tuple of 4 float
        Raw readings of ``fl, fr, bl, br``, in ADC counts.
    flags : FrameFlag
        Condition bits for this frame.
    fault_cells : tuple of str
        Names of the cells behind a ``CELL_FAULT``/``SATURATED``/``GLITCH`` flag.
    """

    seq: int
    t_s: float
    counts: tuple[float, float, float, float]
    flags: FrameFlag = FrameFlag.NONE
    fault_cells: tuple[str, ...] = field(default=())

    def counts_array(self) -> np.ndarray:
        return np.asarray(self.counts, dtype=np.float64)


@dataclass(slots=True)
class SourceStats:
    """Counters a source keeps about itself.

    ``dropped`` counts readings the source had to discard (for the HX711: a
    clock-high phase that ran long enough to risk a power-down, a read that
    timed out); ``glitches`` counts frames it delivered with a GLITCH or
    SATURATED flag.
    """

    frames: int = 0
    dropped: int = 0
    glitches: int = 0
    faults: int = 0
    last_fault: str = ""


def decode_twos_complement_24(word: int) -> int:
    """Return the signed value of a 24-bit two's complement word.

    >>> decode_twos_complement_24(0x000001), decode_twos_complement_24(0xFFFFFF)
    (1, -1)
    >>> decode_twos_complement_24(0x800000), decode_twos_complement_24(0x7FFFFF)
    (-8388608, 8388607)
    """
    if not 0 <= word <= 0xFFFFFF:
        raise ValueError(f"word must be a 24-bit unsigned integer, got {word!r}")
    return word - 0x1000000 if word & 0x800000 else word


@dataclass(frozen=True, slots=True)
class ForceFrame:
    """One calibrated frame.

    ``forces_n`` is in the cell order fl, fr, bl, br. ``cop_ml_mm`` and
    ``cop_ap_mm`` are NaN when nobody is on the plate.
    """

    seq: int
    t_s: float
    forces_n: tuple[float, float, float, float]
    fz_n: float
    cop_ml_mm: float
    cop_ap_mm: float
    flags: FrameFlag = FrameFlag.NONE

    @property
    def occupied(self) -> bool:
        return not math.isnan(self.cop_ml_mm)

    @property
    def mass_kg(self) -> float:
        """Fz as a mass, for display only."""
        return self.fz_n / GRAVITY_M_S2


class FrameLike(Protocol):
    """What the protocol runners and the drills read from a frame (a :class:`ForceFrame` has it)."""

    @property
    def t_s(self) -> float: ...
    @property
    def fz_n(self) -> float: ...
    @property
    def cop_ml_mm(self) -> float: ...
    @property
    def cop_ap_mm(self) -> float: ...
