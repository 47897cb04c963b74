"""Tests of station.commands."""
