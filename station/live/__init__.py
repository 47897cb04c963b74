"""station.live.pipeline."""
