"""Tests of station.screen."""
