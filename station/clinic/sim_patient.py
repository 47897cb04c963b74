"""The simulated patient: on the simulated plate, the simulated person performs the test it is given.

A pure planner, no plate and no clock of its own: the trial controller
(:mod:`station.clinic.controller`) tells it what the protocol runner is doing, and it
answers with the commands the simulated plate should be given
(``(name, params)`` pairs for :meth:`hardware.base.PlateSource.command`).
Randomness comes only from the injected generator, so a seeded station
repeats a demonstration exactly.

Each test is done by a new person drawn from the simulated population
(:func:`hardware.sim.population.draw_person`: sway, force fluctuation, weight
transfer and lean from their literature ranges), so demonstrations show
varied, realistic people.

Profiles
--------
``healthy``
    A healthy person of any age group. Lifts the foot 0.5 to 1.2 s after the
    instruction and holds the full 30 s without a touchdown or hand support.
``weak_abductors``
    A person with weak hip abductors (more sway, a lateral lean), who leans
    on the table with 1 to 8 % of body weight for a few seconds, and puts the
    lifted foot down once or twice, on the plate or beside it: the pattern of
    a patient with a Trendelenburg sign. With the simulated pelvis sensor,
    the lifted side of the pelvis drops several degrees, more as the hold
    goes on.
``trunk_lean``
    Weak hip abductors compensated (Duchenne): as ``weak_abductors`` on the
    plate, but the trunk leans over the stance hip, so the COP sits a further
    10-25 mm lateral and the pelvis stays level.

The pelvis
----------
Each person also has a pelvis (:func:`hardware.sim.population.draw_pelvis`,
from a generator seeded by the person, so the plate's draws are unchanged):
a healthy one's lifted side rises a little. :meth:`SimulatedPatient.pelvis_commands`
gives the commands of the simulated pelvis sensor
(:class:`hardware.sim.pelvis.SimulatedPelvis`) for the test just planned, in
the plate's time.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from hardware.sim.population import RANGES, PelvisTraits, PersonTraits, draw_pelvis, draw_person
from station.core.sides import SIDES

__all__ = ["PROFILES", "Command", "SimulatedPatient"]

PROFILES = ("healthy", "weak_abductors", "trunk_lean")
#: Seeds the pelvis's own generator from the person's seed (a separate stream).
_PELVIS_STREAM = 0x9E1715

Command = tuple[str, dict[str, Any]]


class SimulatedPatient:
    """What the simulated person does in each phase of a test.

    Parameters
    ----------
    profile : {"healthy", "weak_abductors", "trunk_lean"}
        How well they do.
    rng : numpy.random.Generator
        Every random choice (reaction time, when and where a touchdown falls).
    """

    def __init__(self, *, profile: str = "healthy", rng: np.random.Generator | None = None) -> None:
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {list(PROFILES)}, got {profile!r}")
        self.profile = profile
        self.rng = rng if rng is not None else np.random.default_rng()
        #: the person doing the current test (drawn at each start)
        self.person: PersonTraits | None = None
        #: their pelvis (drawn with the person)
        self.pelvis: PelvisTraits | None = None
        self._steps: list[dict[str, Any]] = []

    @property
    def skill(self) -> str:
        return "normal" if self.profile == "healthy" else "weak_abductors"

    def on_start(self, *, plate_occupied: bool) -> list[Command]:
        """A test starts: the person is on the plate, standing quietly on both feet."""
        condition = "healthy" if self.profile == "healthy" else "weak_abductors"
        self.person = draw_person(self.rng, condition=condition)
        self.pelvis = draw_pelvis(np.random.default_rng([self.person.seed, _PELVIS_STREAM]), condition=condition,
                                  compensates=self.profile == "trunk_lean" if condition != "healthy" else None)
        if self.pelvis.trunk_lean_extra_mm > 0:  # the trunk lean moves the COP further over the stance foot
            self.person = dataclasses.replace(self.person,
                                              lean_mm=self.person.lean_mm + self.pelvis.trunk_lean_extra_mm)
        self._steps = []
        # the plate's configured mass is kept (a known patient's weight); the rest is the drawn person's
        commands: list[Command] = [("behaviour", {"name": "person", "skill": self.skill,
                                                  "traits": self.person.to_dict()})]
        commands.append(("behaviour", {"name": "quiet"} if plate_occupied else {"name": "step_on"}))
        return commands

    def on_lift_instruction(self, *, stance_side: str, hold_s: float) -> list[Command]:
        """The patient is told to lift the foot: the whole single-leg performance, as one scenario.

        Times in the scenario count from now. The person stands on
        ``stance_side``; the weak-abductor profile adds hand support and
        touchdowns inside the hold.
        """
        if stance_side not in SIDES:
            raise ValueError(f"stance_side must be 'left' or 'right', got {stance_side!r}")
        if not hold_s > 0:
            raise ValueError(f"hold_s must be positive, got {hold_s!r}")
        rng = self.rng
        lift_s = float(rng.uniform(0.5, 1.2))
        transition_s = self.person.transfer_s if self.person is not None else float(rng.uniform(0.5, 1.5))
        steps: list[dict[str, Any]] = [
            {"t_s": lift_s, "behaviour": "single_leg", "stance_side": stance_side, "transition_s": transition_s},
        ]
        onset = lift_s + transition_s
        if self.profile != "healthy":
            support_at = onset + float(rng.uniform(0.2, 0.45)) * hold_s
            level = RANGES["support_pct"]
            steps.append({"t_s": support_at, "behaviour": "hand_support",
                          "pct_bw": float(rng.uniform(level.lo, level.hi)), "duration_s": float(rng.uniform(2.0, 5.0))})
            n_touchdowns = int(rng.integers(1, 3))
            for k in range(n_touchdowns):
                at = onset + float(rng.uniform(0.55 + 0.2 * k, 0.7 + 0.2 * k)) * hold_s
                steps.append({"t_s": at, "behaviour": "touchdown", "where": str(rng.choice(["plate", "floor"])),
                              "duration_s": float(rng.uniform(0.4, 1.0)), "share_pct": float(rng.uniform(35, 55))})
        self._steps = steps
        return [("scenario", {"steps": steps})]

    def pelvis_commands(self, *, now_t_s: float, stance_side: str | None = None) -> list[Command]:
        """The simulated pelvis sensor's commands, in the plate's time.

        Call after :meth:`on_start` (the person: ``stance_side`` None) and
        after :meth:`on_lift_instruction` (its scenario, from ``now_t_s``, the
        plate's time when the scenario was sent).
        """
        if self.pelvis is None:
            return []
        if stance_side is None:
            return [("person", {"traits": self.pelvis.to_dict()})]
        lift = next((s for s in self._steps if s["behaviour"] == "single_leg"), None)
        if lift is None:
            return []
        touchdowns = [(now_t_s + s["t_s"], s["duration_s"]) for s in self._steps if s["behaviour"] == "touchdown"]
        return [("single_leg", {"at_s": now_t_s + lift["t_s"], "stance_side": stance_side,
                                "transition_s": lift["transition_s"], "touchdowns": touchdowns})]

    def on_end(self) -> list[Command]:
        """The test is over (or aborted): both feet down again."""
        return [("scenario", {"steps": []}), ("behaviour", {"name": "quiet", "transition_s": 0.4})]
