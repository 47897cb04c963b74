"""hardware.hx711."""
