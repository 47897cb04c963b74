"""Tests of station.signal."""
