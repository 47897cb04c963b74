"""Faded feedback: when the patient sees the cursor.

Three modes (:data:`FEEDBACK_MODES`):

``continuous``
    The cursor is always shown.
``intermittent``
    During a round the cursor is shown for ``on_s`` seconds of every
    ``period_s`` seconds, counted from the start of the round (1 s of every
    3 s by default): visible while ``elapsed_s mod period_s < on_s``.
``summary``
    The cursor is never shown during a round; the patient learns how it went
    from the round summary (knowledge of results only). Hit, miss and streak
    sounds are withheld during the round as well.

Outside a round (waiting, ready, the summary, done) the cursor is shown in
every mode, so that the patient can find the start position.

References
----------
.. [1] Winstein CJ, Schmidt RA (1990) Reduced frequency of knowledge of
   results enhances motor skill learning. J Exp Psychol Learn Mem Cogn
   16(4):677-691.
"""

from __future__ import annotations

import math

__all__ = ["FEEDBACK_MODES", "cursor_visible", "check_feedback"]

FEEDBACK_MODES: tuple[str, ...] = ("continuous", "intermittent", "summary")


def check_feedback(feedback: object, *, name: str = "feedback") -> str:
    if feedback not in FEEDBACK_MODES:
        raise ValueError(f"{name} must be one of {list(FEEDBACK_MODES)}, got {feedback!r}")
    return str(feedback)


def cursor_visible(*, mode: str, running: bool, elapsed_s: float, on_s: float = 1.0, period_s: float = 3.0) -> bool:
    """Whether the cursor is shown now.

    Parameters
    ----------
    mode : str
        One of :data:`FEEDBACK_MODES`.
    running : bool
        Whether a round is running (outside rounds the cursor is always shown).
    elapsed_s : float
        Time since the start of the round, in s.
    on_s, period_s : float
        Intermittent mode: shown ``on_s`` s of every ``period_s`` s (``0 < on_s <= period_s``).
    """
    check_feedback(mode, name="mode")
    if not (isinstance(period_s, (int, float)) and math.isfinite(period_s) and period_s > 0):
        raise ValueError(f"period_s must be a positive number of seconds, got {period_s!r}")
    if not (isinstance(on_s, (int, float)) and 0 < on_s <= period_s):
        raise ValueError(f"on_s must be a number of seconds in (0, period_s], got {on_s!r}")
    if not (isinstance(elapsed_s, (int, float)) and math.isfinite(elapsed_s)):
        raise ValueError(f"elapsed_s must be a finite number of seconds, got {elapsed_s!r}")
    if not running or mode == "continuous":
        return True
    if mode == "summary":
        return False
    return math.fmod(max(elapsed_s, 0.0), period_s) < on_s
