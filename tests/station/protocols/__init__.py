"""Tests of station.protocols."""
