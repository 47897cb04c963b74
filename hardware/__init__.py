"""Plate sources: everything that turns load cells (real, simulated or recorded) into raw frames.

Every source implements :class:`hardware.base.PlateSource` and yields
:class:`station.core.frames.RawFrame` objects: a monotonic timestamp, four raw ADC
counts in the cell order ``fl, fr, bl, br`` and a bit set of flags.
"""
