"""station.commands."""
