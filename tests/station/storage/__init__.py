"""Tests of station.storage."""
