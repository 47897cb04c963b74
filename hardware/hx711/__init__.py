"""The HX711: its datasheet's facts (:mod:`.datasheet`), the two backends that clock it on a Pi
(:mod:`.lgpio_backend`, :mod:`.rpigpio_backend`) and the bit-level chip model the tests and the
``chip-model`` plate run them against (:mod:`.chip`).
"""
