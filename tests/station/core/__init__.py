"""Tests of station.core."""
