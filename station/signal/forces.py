"""Force frames: raw counts turned into newtons, total force and centre of pressure.

:class:`ForcePipeline` is the one place where a raw frame becomes a force frame,
live and in tests alike. It applies the calibration, guards against glitches
(saturation codes and single-frame spikes from HX711 bit errors) and decides
occupancy: below the threshold nobody is on the plate and the COP is NaN.
"""

from __future__ import annotations

from calibration.model import Calibration
from station.core.cop import DEFAULT_OCCUPANCY_N, centre_of_pressure_one
from station.core.frames import ForceFrame, FrameFlag, RawFrame
from station.core.geometry import PlateGeometry

#: A change of one cell's force larger than this between two frames (12.5 ms at
#: 80 Hz) is physically implausible for a person on the plate: it is held as a
#: suspected glitch until the next frame confirms or refutes it.
DEFAULT_SPIKE_N = 100.0

#: one frame's forces on fl, fr, bl, br, in N
Forces = tuple[float, float, float, float]


class ForcePipeline:
    """Raw frames in, force frames out, with a one-frame glitch guard.

    Parameters
    ----------
    calibration : Calibration
        Turns counts into newtons per cell.
    geometry : PlateGeometry
        Cell spacing for the COP.
    occupancy_n : float
        Total force below which the plate counts as empty.
    spike_n : float
        Largest believable change of one cell's force between two frames, in N.

    Notes
    -----
    A frame flagged SATURATED or GLITCH by its source is replaced by the last
    good forces and flagged GLITCH. So is a frame that looks like an HX711 bit
    error: ONE cell jumps by more than ``spike_n`` from the last good frame
    while the other three move by less than a quarter of that (a real load
    change moves several cells at once, since the plate shares any load
    between them). When the next frame stays at the suspect's level (within
    ``spike_n / 2``), the change was real (a load dropped straight onto one
    corner) and is accepted, one frame late; otherwise the suspect was a
    glitch (two bit errors in a row on one cell are both caught). A bit-error spike never reaches the COP,
    except in the very
    first frame after a start or a calibration change, which has nothing to be
    compared with.
    """

    def __init__(
        self,
        calibration: Calibration,
        geometry: PlateGeometry,
        *,
        occupancy_n: float = DEFAULT_OCCUPANCY_N,
        spike_n: float = DEFAULT_SPIKE_N,
    ) -> None:
        if not occupancy_n > 0:
            raise ValueError(f"occupancy_n must be positive, got {occupancy_n!r}")
        if not spike_n > 0:
            raise ValueError(f"spike_n must be positive, got {spike_n!r}")
        self.calibration = calibration
        self.geometry = geometry
        self.occupancy_n = occupancy_n
        self.spike_n = spike_n
        self.glitch_frames = 0
        self._last_good: Forces | None = None
        self._suspect: Forces | None = None

    def set_calibration(self, calibration: Calibration) -> None:
        """Swap the calibration (after a re-zero or a new calibration); resets the guard."""
        self.calibration = calibration
        self._last_good = None
        self._suspect = None

    def process(self, raw: RawFrame) -> ForceFrame:
        forces = self.calibration.to_forces_one(raw.counts)  # per-cell gains, or the 3x4 matrix
        flags = raw.flags
        if flags & (FrameFlag.SATURATED | FrameFlag.GLITCH):
            forces = self._hold(forces, confirmable=False)
            flags |= FrameFlag.GLITCH
        elif self._suspect is not None and self._holds_suspect(forces):
            self._accept(forces)  # the suspect's level held: it was real
        elif self._last_good is not None and self._lone_jump(forces):
            forces = self._hold(forces, confirmable=True)
            flags |= FrameFlag.GLITCH
        else:
            self._accept(forces)
        return self._frame(raw, forces, flags)

    # plain floats, not numpy: four numbers, 80 times a second (numpy's call overhead would be most of it)
    def _lone_jump(self, forces: Forces) -> bool:
        """One cell jumps by more than spike_n while the others hardly move: a bit error's signature."""
        steps = sorted(abs(f - g) for f, g in zip(forces, self._last_good))
        return steps[-1] > self.spike_n and steps[-2] < self.spike_n / 4

    def _holds_suspect(self, forces: Forces) -> bool:
        """The frame after a suspect stays at the suspect's level: the change was real."""
        return max(abs(f - s) for f, s in zip(forces, self._suspect)) <= self.spike_n / 2

    def _accept(self, forces: Forces) -> None:
        self._last_good = forces
        self._suspect = None

    def _hold(self, forces: Forces, *, confirmable: bool) -> Forces:
        self.glitch_frames += 1
        self._suspect = forces if confirmable else None
        if self._last_good is None:
            return (0.0, 0.0, 0.0, 0.0) if not confirmable else forces
        return self._last_good

    def _frame(self, raw: RawFrame, forces: Forces, flags: FrameFlag) -> ForceFrame:
        fz, x, y = centre_of_pressure_one(forces, ml_mm=self.geometry.ml_mm, ap_mm=self.geometry.ap_mm,
                                          min_fz_n=self.occupancy_n)
        return ForceFrame(seq=raw.seq, t_s=raw.t_s, forces_n=forces, fz_n=fz, cop_ml_mm=x, cop_ap_mm=y, flags=flags)
