"""station.clinic.controller."""
