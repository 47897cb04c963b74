"""The HX711's facts from its datasheet, in one place: the chip model and both backends use these.

References
----------
.. [1] Avia Semiconductor, HX711 24-Bit Analog-to-Digital Converter (ADC) for Weigh Scales,
   datasheet (timing diagram, table "PD_SCK pulse and input channel/gain", power-down).
"""

from __future__ import annotations

__all__ = ["GAIN_BY_PULSES", "POWER_DOWN_AFTER_NS", "POWER_DOWN_AFTER_US", "SETTLING_S", "CODE_MAX", "CODE_MIN"]

#: PD_SCK high for longer than this powers the chip down, us ("PD_SCK high > 60 us: power down").
POWER_DOWN_AFTER_US = 60
#: the same in ns, for the bit-level timing of the chip model and the backends' checks
POWER_DOWN_AFTER_NS = POWER_DOWN_AFTER_US * 1000

#: output settling time after power-up, reset or a channel/gain change, s, by output rate (Hz).
SETTLING_S = {80.0: 0.050, 10.0: 0.400}

#: (channel, gain) selected for the next conversion by the number of PD_SCK pulses in a read.
GAIN_BY_PULSES = {25: ("A", 128), 26: ("B", 32), 27: ("A", 64)}

#: the 24-bit two's-complement output's range (a saturated input reads one of these).
CODE_MAX = 0x7FFFFF
CODE_MIN = -0x800000
