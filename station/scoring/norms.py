"""Age-matched normative single-leg stance times (Springer et al. 2007), shown as reference values.

Springer et al. timed the unipedal stance test in 549 healthy adults: stand on
one leg, arms crossed, until the lifted foot touches the floor or the stance
foot moves, the arms are used, or 45 s pass. The table here is their eyes-open,
best-of-3-trials time per age group, in seconds (the values adopted by the
station's specification, issue 4). The station's test stops at 30 s
(Hardcastle & Nade 1985), so a norm above 30 s means a healthy person of that
age is expected to complete the hold; below it, the norm itself is the
expected hold time.

These are reference values for the clinician, not a pass/fail rule: the
station's test (hips level, hands on the hips, on a force plate, 30 s cap) is
not run exactly as Springer et al. ran theirs.

References
----------
.. [1] Springer BA, Marin R, Cyhan T, Roberts H, Gill NW (2007) Normative
   values for the unipedal stance test with eyes open and closed. J Geriatr
   Phys Ther 30(1):8-15. doi:10.1519/00139143-200704000-00003
.. [2] Hardcastle P, Nade S (1985) The significance of the Trendelenburg test.
   J Bone Joint Surg Br 67:741-746.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["SPRINGER_2007", "SPRINGER_2007_CITATION", "AgeNorm", "norm_for_age", "norm_reference"]

SPRINGER_2007_CITATION = (
    "Springer BA, Marin R, Cyhan T, Roberts H, Gill NW (2007) Normative values for the unipedal stance test "
    "with eyes open and closed. J Geriatr Phys Ther 30(1):8-15"
)
#: The condition the table is for.
SPRINGER_2007_CONDITION = "eyes open, best of 3 trials"


@dataclass(frozen=True, slots=True)
class AgeNorm:
    """One age group of the table: ``min_age_years`` to ``max_age_years`` inclusive, ``hold_s`` seconds."""

    min_age_years: int
    max_age_years: int
    hold_s: float

    @property
    def label(self) -> str:
        return f"{self.min_age_years}-{self.max_age_years}"


#: Eyes open, best of 3 trials, by age group (years) -> single-leg stance time (s).
SPRINGER_2007: tuple[AgeNorm, ...] = (
    AgeNorm(18, 39, 44.0),
    AgeNorm(40, 49, 41.0),
    AgeNorm(50, 59, 41.0),
    AgeNorm(60, 69, 32.0),
    AgeNorm(70, 79, 21.0),
    AgeNorm(80, 99, 9.0),
)


def norm_for_age(age_years: float) -> AgeNorm | None:
    """The age group holding ``age_years`` (completed years: 39.9 is in 18-39), or None outside 18-99.

    Raises
    ------
    ValueError
        ``age_years`` is not a finite, non-negative number.
    """
    if isinstance(age_years, bool) or not isinstance(age_years, (int, float)) or not math.isfinite(age_years) \
            or age_years < 0:
        raise ValueError(f"age_years must be a non-negative number of years, got {age_years!r}")
    whole = math.floor(age_years)
    for norm in SPRINGER_2007:
        if norm.min_age_years <= whole <= norm.max_age_years:
            return norm
    return None


def norm_reference(age_years: float | None, *, hold_s: float = 30.0) -> dict[str, Any] | None:
    """The reference block shown with a patient's single-leg results, or None when the age is unknown.

    Parameters
    ----------
    age_years : float or None
        The patient's age.
    hold_s : float
        The station's hold length (30 s): a norm above it means the hold is
        expected to be completed.

    Returns
    -------
    dict or None
        ``age_years``, ``age_group`` (e.g. ``"60-69"``, None outside the
        table's 18-99 years), ``norm_hold_s`` (None outside the table),
        ``expected_hold_s`` (the norm capped at ``hold_s``),
        ``expected_to_complete`` (norm above ``hold_s``), ``condition``
        (eyes open, best of 3 trials) and ``source`` (the citation).
    """
    if age_years is None:
        return None
    norm = norm_for_age(age_years)
    return {
        "age_years": float(age_years),
        "age_group": None if norm is None else norm.label,
        "norm_hold_s": None if norm is None else norm.hold_s,
        "expected_hold_s": None if norm is None else min(norm.hold_s, hold_s),
        "expected_to_complete": None if norm is None else norm.hold_s > hold_s,
        "condition": SPRINGER_2007_CONDITION,
        "source": SPRINGER_2007_CITATION,
    }
