"""Calibration: from raw counts to newtons per corner.

:mod:`calibration.model` holds the calibration itself and its file; the
procedure (tare, known-weight solver, verification, wizard) builds on it.
"""
