"""Tests of station.scoring."""
