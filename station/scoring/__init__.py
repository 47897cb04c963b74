"""station.scoring.scores."""
