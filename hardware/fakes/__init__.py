"""Fakes for running the HX711 backends without a Raspberry Pi.

``clock`` (virtual and real clocks), ``board`` (GPIO lines wired to
:class:`hardware.hx711.chip.HX711Chip` models), ``lgpio`` and ``rpi_gpio``
(fake modules on a board) and ``install`` (puts the fake modules into
``sys.modules`` for a block of code).
"""
