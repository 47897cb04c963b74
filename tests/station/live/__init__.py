"""Tests of station.live."""
