"""The simulated plate's load cells as built: counts with nothing on them and newtons per count.

These are hardware facts of the simulated plate (100 kg cells, 2 mV/V, 5 V
excitation, HX711 gain 128), in the cell order ``fl, fr, bl, br``. The plate
turns forces into counts with them, replay does the same for recorded forces,
and :func:`calibration.model.simulator_calibration` is made from them, so the
built-in calibration reads the simulated plate exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CellModel", "SIMULATED_CELLS"]


@dataclass(frozen=True)
class CellModel:
    """Four linear load cells: ``counts = forces_n / gains_n_per_count + offsets_counts``.

    Attributes
    ----------
    offsets_counts : tuple of 4 float
        Counts with no load, per cell.
    gains_n_per_count : tuple of 4 float
        Newtons per count, per cell (nonzero; negative for a cell wired the other way).
    """

    offsets_counts: tuple[float, float, float, float]
    gains_n_per_count: tuple[float, float, float, float]

    def to_counts(self, forces_n: np.ndarray) -> np.ndarray:
        """Counts (not rounded) from corner forces in N, shape ``(..., 4)``."""
        f = np.asarray(forces_n, dtype=np.float64)
        return f / np.asarray(self.gains_n_per_count) + np.asarray(self.offsets_counts)


#: The simulated plate's cells.
SIMULATED_CELLS = CellModel(offsets_counts=(72150.0, 51820.0, 88410.0, 60230.0),
                            gains_n_per_count=(0.000231, 0.000228, 0.000235, 0.000226))
