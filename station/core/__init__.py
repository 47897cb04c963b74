"""station.core."""
