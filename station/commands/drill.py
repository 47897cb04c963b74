"""`balance-station drill NAME --plate simulated --autoplay --duration-s S --json [--screenshot PNG]`.

One drill played unattended by the simulated person (DESIGN.md section 5).
It runs the same pieces as the patient screen: a simulated plate, the force
pipeline with the simulator's calibration, a :class:`~station.live.pipeline.LiveStation`,
the drill fed every frame by :class:`~station.screen.game.GameMode` and the
:class:`~station.drills.autoplay.AutoPlayer` steering the person, and prints
the drill's metrics as one JSON object.

By default the plate runs in process and as fast as the computer goes
(simulated time: S seconds take well under S seconds); ``--realtime`` runs the
plate in the acquisition process at its real rate, as the station does.

``--duration-s S`` is the drill's time limit (its ``duration_s`` parameter):
rounds are played until S seconds of play have passed, the round under way
being finished, never cut short (``--rounds N``: at most N rounds). A drill
still not over at ``S + MAX_OVERRUN_S`` s of plate time is stopped, and the
command fails.

The pelvis drills (``hip-dip``, ``level-pelvis-hold``) need the pelvis sensor:
the simulated person wears the simulated one (:class:`hardware.sim.pelvis.SimulatedPelvis`,
a healthy pelvis, or weak hip abductors with ``--skill poor``); the drill is fed
its angle with every frame, and the player's pelvis commands go to it. The JSON's
``autoplay.pelvis`` says so (absent for the other drills).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from station.core.errors import UserError
from station.core.sides import SIDES
from station.drills.autoplay import PelvisPlayer

#: screen frames per second of the unattended loop (as the patient screen)
FPS = 60
#: plate time after --duration-s at which a drill still running is stopped
MAX_OVERRUN_S = 120.0
#: the longest run accepted
MAX_DURATION_S = 3600.0
SKILLS = ("good", "average", "poor")
#: other names of drills on the command line (DESIGN.md section 5 says "hold")
ALIASES = {"hold": "single-leg-hold"}
SCREEN_SIZES = {"1280x720": (1280, 720), "800x480": (800, 480)}


def _size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size WIDTHxHEIGHT such as 1280x720, got {value!r}") from None
    if not (320 <= w <= 7680 and 240 <= h <= 4320):
        raise argparse.ArgumentTypeError(f"screen size out of range (320x240 to 7680x4320): {value!r}")
    return w, h


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``drill`` subcommand's own options (``--plate``, ``--config``, ``--data-dir`` are the common ones)."""
    p.add_argument("name", metavar="NAME",
                   help="the drill: reach, limits, symmetry, rhythm, single-leg-hold (alias: hold), or with the "
                        "pelvis sensor hip-dip, level-pelvis-hold")
    p.add_argument("--autoplay", action="store_true",
                   help="the simulated person plays (required with --plate simulated: there is no patient)")
    p.add_argument("--duration-s", type=float, required=True, metavar="S",
                   help="play rounds until S s of play have passed (the last round is finished, not cut short)")
    p.add_argument("--rounds", type=int, default=None, metavar="N",
                   help="play at most N rounds (within --duration-s)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the only output format)")
    p.add_argument("--screenshot", type=Path, default=None, metavar="PNG", help="save the last frame drawn")
    p.add_argument("--screen-size", type=_size, default=(1280, 720), metavar="WxH",
                   help="size of the screenshot (default 1280x720; the Pi's 7-inch screen is 800x480)")
    p.add_argument("--skill", choices=SKILLS, default="good", help="how well the simulated person plays")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seed of the plate, the person and the drill (default: a random one, printed)")
    p.add_argument("--feedback", choices=("continuous", "intermittent", "summary"), default="continuous",
                   help="when the cursor is shown (default continuous)")
    p.add_argument("--side", choices=SIDES, default=None,
                   help="stance leg (single-leg-hold, hip-dip, level-pelvis-hold; default left) or the leg to load "
                        "(symmetry)")
    p.add_argument("--level", type=int, default=None, metavar="N", help="starting level, 1 to 10")
    p.add_argument("--realtime", action="store_true",
                   help="run the plate in the acquisition process in real time (takes S seconds)")


# -- the in-process plate ---------------------------------------------------------------------------------


class InProcessFeed:
    """A frame feed over a :class:`~hardware.sim.plate.SimulatedPlate` read in this process.

    The live station is fed by hand (:meth:`LiveStation.ingest`, no pump
    thread), so the plate runs as fast as it is read. :meth:`until` reads the
    frames up to a plate time.
    """

    def __init__(self, plate: Any) -> None:
        self.plate = plate
        self.info: dict[str, Any] = {"kind": "simulated", "description": plate.describe(),
                                     "nominal_rate_hz": plate.nominal_rate_hz}
        self.ended = False
        self.error = ""
        self.alive = True
        self._next: Any = None

    def frames(self, *, timeout_s: float = 0.1, max_frames: int = 10_000) -> list[Any]:
        return []  # nothing is pumped: see until()

    def until(self, t_s: float) -> list[Any]:
        """The plate's raw frames stamped up to ``t_s`` (plate time)."""
        out = []
        while not self.ended:
            if self._next is None:
                self._next = self.plate.read()
                if self._next is None:
                    self.ended = True
                    break
            if self._next.t_s > t_s:
                break
            out.append(self._next)
            self._next = None
        return out

    def command(self, name: str, /, **params: Any) -> None:
        self.plate.command(name, **params)

    def rate_hz(self) -> float | None:
        return self.plate.actual_rate_hz


#: the drills that stand on one leg: --side is the stance leg, left by default
SINGLE_LEG = ("single-leg-hold", "hip-dip", "level-pelvis-hold")


def resolve_name(name: str) -> str:
    from station.drills.catalogue import ALL_DRILLS

    name = ALIASES.get(name, name)
    if name not in ALL_DRILLS:
        raise UserError(f"drill: unknown drill {name!r}: choose one of {', '.join(ALL_DRILLS)}")
    return name


def check_args(args: argparse.Namespace) -> None:
    """The options that argparse cannot check alone; raises :class:`UserError` with one line."""
    plate = getattr(args, "plate", None) or "auto"
    if plate != "simulated":
        raise UserError(f"drill: --plate {plate}: only the simulated plate can play a drill unattended; "
                        "give --plate simulated --autoplay (a patient plays on the station's screen)")
    if not args.autoplay:
        raise UserError("drill: --autoplay is required with --plate simulated: there is no patient, "
                        "the simulated person plays")
    if not (math.isfinite(args.duration_s) and 1.0 <= args.duration_s <= MAX_DURATION_S):
        raise UserError(f"drill: --duration-s must be between 1 and {MAX_DURATION_S:g} s, got {args.duration_s:g}")
    if args.rounds is not None and not 1 <= args.rounds <= 50:
        raise UserError(f"drill: --rounds must be between 1 and 50, got {args.rounds}")
    if args.seed is not None and args.seed < 0:
        raise UserError(f"drill: --seed must be a non-negative integer, got {args.seed}")
    if args.level is not None and not 1 <= args.level <= 10:
        raise UserError(f"drill: --level must be between 1 and 10, got {args.level}")


def build(args: argparse.Namespace, geometry: Any, seed: int) -> tuple[Any, Any]:
    """The drill and the simulated player, from the options and the seed."""
    import numpy as np

    from station.drills import make_drill
    from station.drills.autoplay import AutoPlayer
    from station.drills.catalogue import needs_pelvis

    name = resolve_name(args.name)
    side = args.side
    if name in SINGLE_LEG and side is None:
        side = "left"
    params: dict[str, Any] = {"duration_s": float(args.duration_s)}
    if args.rounds is not None:
        params["rounds"] = args.rounds
    drill_ss, player_ss = np.random.SeedSequence([seed, 1]).spawn(2)
    pelvis = simulated_pelvis(args.skill, seed) if needs_pelvis(name) else None
    try:
        drill = make_drill(name, geometry=geometry, rng=np.random.default_rng(drill_ss), params=params,
                           feedback=args.feedback, stance_side=side, level=args.level,
                           pelvis_sensor=True if pelvis is not None else None)
    except ValueError as exc:
        raise UserError(f"drill {name}: {exc}") from None
    player = AutoPlayer(skill=args.skill, rng=np.random.default_rng(player_ss), geometry=geometry)
    if pelvis is not None:
        from station.drills.pelvis import PelvisFed

        return PelvisFed(drill, pelvis), PelvisPlayer(player, pelvis)
    return drill, player


def simulated_pelvis(skill: str, seed: int) -> Any:
    """The simulated person's pelvis sensor: a healthy pelvis, or (``poor``) weak hip abductors that drop it."""
    import numpy as np

    from hardware.sim.pelvis import SimulatedPelvis
    from hardware.sim.population import draw_pelvis

    condition = "weak_abductors" if skill == "poor" else "healthy"
    traits = draw_pelvis(np.random.default_rng([seed, 2]), condition=condition, compensates=False)
    return SimulatedPelvis(traits=traits)


def drill_command(args: argparse.Namespace) -> int:
    """Run ``balance-station drill``; prints the metrics; returns the exit code."""
    import numpy as np

    check_args(args)
    resolve_name(args.name)
    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 1_000_000)
    from station.core.config import load_settings

    settings = load_settings(getattr(args, "config", None), plate_source="simulated",
                             data_dir=getattr(args, "data_dir", None))
    geometry = settings.plate.geometry()
    drill, player = build(args, geometry, seed)
    started = time.monotonic()
    if args.realtime:
        game, plate_s = run_realtime(args, drill, player, geometry, seed, settings)
    else:
        game, plate_s = run_fast(args, drill, player, geometry, seed, mass_kg=settings.simulator.body_mass_kg)
    wall_s = time.monotonic() - started
    if args.screenshot is not None:
        save_screenshot(game, args.screenshot, args.screen_size)
    out = dict(drill.metrics())
    out["autoplay"] = {"skill": args.skill, "seed": seed, "realtime": bool(args.realtime),
                       "plate_time_s": round(plate_s, 3), "wall_time_s": round(wall_s, 3),
                       "frames": game.frames_fed, "cues": dict(sorted(game.cues.items()))}
    if isinstance(player, PelvisPlayer):
        out["autoplay"]["pelvis"] = {"sensor": "simulated", "strategy": player.pelvis.traits.strategy}
    json.dump(out, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")
    if drill.state != "done":
        print(f"balance-station: drill {drill.name}: not finished: {drill.end_reason or drill.state}", file=sys.stderr)
        return 1
    return 0


def _cap_s(args: argparse.Namespace) -> float:
    return float(args.duration_s) + MAX_OVERRUN_S


def run_fast(args: argparse.Namespace, drill: Any, player: Any, geometry: Any, seed: int, *,
             mass_kg: float = 70.0) -> tuple[Any, float]:
    """The plate in process, in simulated time: a screen frame every 1/60 s of plate time."""
    from calibration.model import simulator_calibration
    from hardware.sim.plate import SimulatedPlate
    from station.live.pipeline import LiveStation
    from station.screen.game import GameMode
    from station.screen.sounds import Sounds
    from station.signal.forces import ForcePipeline

    plate = SimulatedPlate(geometry=geometry, seed=seed, realtime=False, mass_kg=mass_kg)
    feed = InProcessFeed(plate)
    live = LiveStation(feed, ForcePipeline(simulator_calibration(), geometry))
    game = GameMode(live, geometry, drill, sounds=Sounds(enabled=False), player=player)
    cap = _cap_s(args)
    k = 0
    t = 0.0
    while not drill.finished and t < cap and not feed.ended:
        k += 1
        t = k / FPS
        for raw in feed.until(t):
            live.ingest(raw)
        game.update()
    if not drill.finished:
        drill.abort("time limit reached" if t >= cap else "the plate stopped")
        game.view = drill.view()
    game.close()
    return game, t


def run_realtime(args: argparse.Namespace, drill: Any, player: Any, geometry: Any, seed: int,
                 settings: Any) -> tuple[Any, float]:
    """The plate in the acquisition process at its real rate, the live station's pump, 60 screen frames/s."""
    from calibration.model import simulator_calibration
    from hardware.base import SourceFault
    from station.live.acquisition import AcquisitionProcess, SourceSpec
    from station.live.pipeline import LiveStation
    from station.screen.game import GameMode
    from station.screen.sounds import Sounds
    from station.signal.forces import ForcePipeline

    spec = SourceSpec("simulated", {"seed": seed, "realtime": True, "ml_mm": geometry.ml_mm, "ap_mm": geometry.ap_mm,
                                    "feet_ml_mm": geometry.feet_ml_mm,
                                    "body_mass_kg": settings.simulator.body_mass_kg})
    acq = AcquisitionProcess(spec)
    try:
        acq.start()
    except SourceFault as exc:
        raise UserError(f"drill: the simulated plate did not start: {exc}") from None
    live = LiveStation(acq, ForcePipeline(simulator_calibration(), geometry))
    game = None
    try:
        live.start()
        game = GameMode(live, geometry, drill, sounds=Sounds(enabled=False), player=player)
        t0 = time.monotonic()
        cap = _cap_s(args)
        next_s = t0
        while not drill.finished and time.monotonic() - t0 < cap:
            game.update()
            if acq.error or not live.pump_alive:
                raise UserError(f"drill: the plate stopped: {acq.error or live.pump_error}")
            next_s += 1.0 / FPS
            delay = next_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_s = time.monotonic()
        if not drill.finished:
            drill.abort("time limit reached")
            game.view = drill.view()
        return game, time.monotonic() - t0
    finally:
        if game is not None:
            game.close()
        live.stop()
        acq.stop()


def save_screenshot(game: Any, path: Path, size: tuple[int, int]) -> None:
    """Draw the game's last frame on an off-screen surface (no display needed) and save it as PNG."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    pygame.font.init()
    surface = pygame.Surface(size)
    game.draw(surface)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(surface, str(path))
    except (OSError, pygame.error) as exc:
        raise UserError(f"drill: --screenshot {path}: {exc}") from None
