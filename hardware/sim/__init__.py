"""hardware.sim."""
