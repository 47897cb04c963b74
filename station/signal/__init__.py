"""Signal processing: raw counts to force frames, the empty plate's zero, filters, resampling and
the COP metrics.

The public face; the modules behind it: :mod:`.forces`, :mod:`.drift`, :mod:`.filters`,
:mod:`.resample`, :mod:`.metrics`, :mod:`.checks`.
"""

from station.signal.drift import ZeroEstimate, ZeroTracker
from station.signal.filters import CausalLowpass, lowpass_zero_phase, min_samples_zero_phase
from station.signal.forces import ForcePipeline
from station.signal.metrics import (
    COP_KEYS,
    cop_metrics,
    ellipse95_area_mm2,
    mean_velocity_mm_s,
    path_length_mm,
    prediction_ellipse_area_mm2,
    range_mm,
    rms_mm,
)
from station.signal.resample import resample_uniform, uniform_grid_s

__all__ = [
    "COP_KEYS",
    "CausalLowpass",
    "ForcePipeline",
    "ZeroEstimate",
    "ZeroTracker",
    "cop_metrics",
    "ellipse95_area_mm2",
    "lowpass_zero_phase",
    "mean_velocity_mm_s",
    "min_samples_zero_phase",
    "path_length_mm",
    "prediction_ellipse_area_mm2",
    "range_mm",
    "resample_uniform",
    "rms_mm",
    "uniform_grid_s",
]
