"""Left and right in one session: which leg is next, repeats of aborted trials, the summary.

A pure bookkeeping object, no frames: the driver asks :meth:`SingleLegSession.new_runner`
for the next trial's runner (the leg comes from the plan), runs it (live with
:class:`~station.clinic.live_trial.LiveTrial`), then hands back the scored result
(:meth:`SingleLegSession.record`) or reports an abort
(:meth:`SingleLegSession.record_aborted`), after which the same leg comes
again. Legs alternate (left, right, left, ...) until each has
``trials_per_side`` scored trials; Springer et al. (2007) take the best of 3.

References
----------
.. [1] Springer BA, Marin R, Cyhan T, Roberts H, Gill NW (2007) Normative
   values for the unipedal stance test with eyes open and closed. J Geriatr
   Phys Ther 30(1):8-15.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from station.core.geometry import PlateGeometry
from station.protocols.single_leg import SIDES, SingleLegConfig, SingleLegRunner

__all__ = ["SingleLegSession"]


class SingleLegSession:
    """The single-leg test on both legs, with repeats.

    Parameters
    ----------
    geometry : PlateGeometry
        The plate.
    config : SingleLegConfig
        Settings of every trial.
    sides : sequence of {"left", "right"}
        The stance legs, in the order they are tested (default left then right).
    trials_per_side : int
        Scored trials wanted per leg (1; 3 for Springer et al.'s best of 3).
    max_aborts_per_side : int
        After this many aborted trials a leg is given up (the summary says so).
    age_years : float or None
        The patient's age, for the age-matched norm in the summary.
    """

    def __init__(self, *, geometry: PlateGeometry | None = None, config: SingleLegConfig | None = None,
                 sides: Sequence[str] = SIDES, trials_per_side: int = 1, max_aborts_per_side: int = 3,
                 age_years: float | None = None) -> None:
        sides = tuple(sides)
        if not sides or any(s not in SIDES for s in sides) or len(set(sides)) != len(sides):
            raise ValueError(f"sides must be 'left' and/or 'right', each once, got {sides!r}")
        if isinstance(trials_per_side, bool) or not isinstance(trials_per_side, int) or not 1 <= trials_per_side <= 10:
            raise ValueError(f"trials_per_side must be an integer from 1 to 10, got {trials_per_side!r}")
        if isinstance(max_aborts_per_side, bool) or not isinstance(max_aborts_per_side, int) or max_aborts_per_side < 1:
            raise ValueError(f"max_aborts_per_side must be a positive integer, got {max_aborts_per_side!r}")
        self.geometry = geometry if geometry is not None else PlateGeometry()
        self.config = config if config is not None else SingleLegConfig()
        self.sides = sides
        self.trials_per_side = trials_per_side
        self.max_aborts_per_side = max_aborts_per_side
        self.age_years = age_years
        self.results: list[dict[str, Any]] = []
        self.aborted: list[tuple[str, str]] = []  # (side, reason)

    def _count(self, side: str) -> int:
        return sum(1 for r in self.results if r.get("stance_side") == side)

    def _aborts(self, side: str) -> int:
        return sum(1 for s, _ in self.aborted if s == side)

    def given_up(self, side: str) -> bool:
        return self._aborts(side) >= self.max_aborts_per_side

    def next_side(self) -> str | None:
        """The leg of the next trial (the one with the fewest scored trials, in plan order), None when done."""
        open_sides = [s for s in self.sides if self._count(s) < self.trials_per_side and not self.given_up(s)]
        if not open_sides:
            return None
        return min(open_sides, key=lambda s: (self._count(s), self.sides.index(s)))

    @property
    def done(self) -> bool:
        return self.next_side() is None

    def new_runner(self) -> SingleLegRunner:
        """A fresh runner for the next trial.

        Raises
        ------
        ValueError
            The session is complete.
        """
        side = self.next_side()
        if side is None:
            raise ValueError("the session is complete: every leg has its trials")
        return SingleLegRunner(stance_side=side, geometry=self.geometry, config=self.config)

    def record(self, result: Mapping[str, Any]) -> None:
        """A scored trial (the ``analyze`` contract dict of the single-leg test)."""
        if result.get("protocol") != "single-leg" or result.get("stance_side") not in SIDES:
            raise ValueError("record takes a scored single-leg result with its stance_side")
        self.results.append(dict(result))

    def record_aborted(self, side: str, reason: str) -> None:
        """An aborted trial on ``side``: it is repeated (up to ``max_aborts_per_side``)."""
        if side not in SIDES:
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        self.aborted.append((side, reason))

    def summary(self) -> dict[str, Any]:
        """:func:`station.scoring.scores.session_summary` of the scored trials, with the aborts and the plan."""
        from station.scoring.scores import session_summary  # scoring imports the protocols

        out = session_summary(self.results, age_years=self.age_years)
        out["aborted"] = [{"stance_side": s, "reason": r} for s, r in self.aborted]
        out["given_up"] = [s for s in self.sides if self.given_up(s)]
        out["complete"] = self.done and not out["given_up"]
        return out
