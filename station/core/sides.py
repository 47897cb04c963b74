"""The sides of the body, as the recording file, the API and the scores spell them."""

from __future__ import annotations

#: A standing (stance) side or the side of a drill: the patient's left or right.
SIDES: tuple[str, str] = ("left", "right")


def other_side(side: str) -> str:
    """The other side: ``"left"`` for ``"right"`` and the reverse.

    Raises
    ------
    ValueError
        ``side`` is not one of :data:`SIDES` (the message names it).
    """
    if side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    return SIDES[1 - SIDES.index(side)]
