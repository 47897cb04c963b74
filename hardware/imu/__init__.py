"""The pelvis sensor: an ICM-42688-P IMU on a sacral belt, on I2C through a differential extender.

``chip`` (a register-level model of the ICM-42688-P driven by a known pelvis
motion, for tests and demos), ``driver`` (the real driver: smbus2, FIFO
reads at 100 Hz or more, bounded waits, faults), ``orientation`` (the
pelvis's frontal-plane obliquity from the samples with the imufusion AHRS,
and the mounting calibration in two-foot stance). The part, the link and the
mounting are justified in ``docs/pelvis-sensor.md``.
"""
