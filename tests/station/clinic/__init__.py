"""Tests of station.clinic."""
