"""Fakes for running the HX711 backends without a Raspberry Pi.

``clock`` (virtual and real clocks), ``board`` (GPIO lines wired to
:class:`hardware.hx711.chip.HX711Chip` models), ``lgpio`` and ``rpi_gpio``
(fake modules on a board) and ``install`` (puts the fake modules into
``sys.modules`` for a block of code); ``chip_plate``: the chip-model plate
(``--plate chip-model``), the real HX711 backend clocking four chip models fed
by the simulated person, in the acquisition process.
"""
