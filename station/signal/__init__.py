"""station.signal."""
