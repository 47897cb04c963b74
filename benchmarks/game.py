"""Game benchmark: cursor latency, frame rate and CPU of the whole station while a drill is played.

Run it from the repository root::

    python benchmarks/game.py                       # 3 runs of 20 s, about 75 s
    python benchmarks/game.py --seconds 8 --repeats 1   # a quick look

Each run starts the real station pieces: the acquisition process with the
simulated plate in real time (80 frames/s), the live station's pump thread,
the web server (idle, on a free local port, with a throw-away data folder),
and the patient screen (:class:`station.screen.app.ScreenApp`, 60 frames/s,
SDL's dummy video driver unless SDL_VIDEODRIVER is set) showing a
:class:`station.screen.game.GameMode` in which the simulated person
(:class:`station.drills.autoplay.AutoPlayer`) plays the drill (reach by
default; a new game starts when one ends).

For every screen frame drawn with a cursor, just after ``pygame.display.flip``
returns, it notes the live sample the cursor was drawn from and reports:

- arrival -> drawn: from when the live station's pump made the frame
  available (``LiveSample.received_s``, monotonic) to the flip: the delay the
  screen adds (target: 99th percentile at most 20 ms);
- timestamp -> drawn: from the frame's own timestamp (the simulated plate
  stamps it on the same monotonic clock, in the acquisition process) to the
  flip: also the transport from the acquisition process;
- work: the time a screen frame spends in input, update and drawing;
- frame rate: frames flipped in each whole second, median over the run (target 60);
- CPU: of the whole station, main process (all its threads) plus the
  acquisition process and any other child, from /proc, in % of one core.

The first ``--warmup-s`` seconds of each run are not counted. The table
shows each run and the median of the runs (the machine may be shared).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np  # noqa: E402
import pygame  # noqa: E402

from calibration.model import simulator_calibration  # noqa: E402
from station.acquisition import AcquisitionProcess, SourceSpec  # noqa: E402
from station.config import ScreenSettings, load_settings  # noqa: E402
from station.drills import make_drill  # noqa: E402
from station.drills.autoplay import AutoPlayer  # noqa: E402
from station.forces import ForcePipeline  # noqa: E402
from station.geometry import PlateGeometry  # noqa: E402
from station.live import LiveStation  # noqa: E402
from station.screen.app import ScreenApp  # noqa: E402
from station.screen.game import FRESH_WAIT_S, GameMode  # noqa: E402
from station.screen.sounds import Sounds  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGET_P99_MS = 20.0
TARGET_FPS = 60


# -- CPU of a process tree from /proc ------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a process, or None when it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu_s(root: int) -> dict[int, float]:
    """CPU seconds of ``root`` and all its descendants, by pid."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                parents[int(entry)], cpu[int(entry)] = st
    out = {}
    for pid in cpu:
        p = pid
        while p and p != root and p in parents:
            p = parents[p]
        if p == root:
            out[pid] = cpu[pid]
    return out


# -- measuring the screen ------------------------------------------------------------------------------------


class Probe:
    """Wraps ``pygame.display.flip``: after each flip, notes when and which live sample the cursor showed."""

    def __init__(self, app: ScreenApp) -> None:
        self.app = app
        self.tick_started = math.nan
        self.records: list[tuple[float, float, float, float]] = []  # flip, received, frame t_s, work
        self._flip = pygame.display.flip
        pygame.display.flip = self.flip  # ScreenApp.tick calls pygame.display.flip()

    def flip(self) -> None:
        self._flip()
        now = time.monotonic()
        sample = getattr(self.app.mode, "drawn_sample", None)
        received = sample.received_s if sample is not None else math.nan
        stamped = sample.frame.t_s if sample is not None else math.nan
        self.records.append((now, received, stamped, now - self.tick_started))

    def close(self) -> None:
        pygame.display.flip = self._flip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def run_once(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    geometry = PlateGeometry()
    spec = SourceSpec("simulated", {"seed": seed, "realtime": True, "ml_mm": geometry.ml_mm,
                                    "ap_mm": geometry.ap_mm, "feet_ml_mm": geometry.feet_ml_mm})
    acq = AcquisitionProcess(spec)
    acq.start()
    live = LiveStation(acq, ForcePipeline(simulator_calibration(), geometry))
    live.start()
    web = None
    app = None
    probe = None
    with tempfile.TemporaryDirectory(prefix="game-bench-") as data_dir:
        try:
            if not args.no_web:
                from station.runner import WebServer
                from webui.app import create_app

                settings = load_settings(None, plate_source="simulated", data_dir=Path(data_dir))
                web = WebServer(create_app(settings, live), host="127.0.0.1", port=free_port())
                if not web.start():
                    print("  (the web server did not start; measuring without it)", file=sys.stderr)
                    web = None
            w, h = args.size
            app = ScreenApp(live, geometry=geometry, settings=ScreenSettings(fullscreen=False, width=w, height=h,
                                                                              fps=TARGET_FPS))
            app.open()
            sounds = Sounds()
            rng = np.random.default_rng(seed)

            def new_game() -> GameMode:
                drill = make_drill(args.drill, geometry=geometry, rng=np.random.default_rng(rng.integers(2**32)),
                                   params={"rounds": 50}, stance_side="left" if args.drill == "single-leg-hold"
                                   else None)
                player = AutoPlayer(skill=args.skill, rng=np.random.default_rng(rng.integers(2**32)),
                                    geometry=geometry)
                return GameMode(live, geometry, drill, sounds=sounds, player=player,
                                fresh_wait_s=args.fresh_wait_ms / 1e3)

            app.mode = new_game()
            probe = Probe(app)
            start = time.monotonic()
            counted_from = start + args.warmup_s
            end = counted_from + args.seconds
            cpu0: dict[int, float] | None = None
            wall0 = math.nan
            while True:
                now = time.monotonic()
                if cpu0 is None and now >= counted_from:
                    cpu0, wall0 = tree_cpu_s(os.getpid()), now
                if now >= end:
                    break
                probe.tick_started = now
                app.tick()
                if app.mode.drill.finished:
                    app.mode.close()
                    app.mode = new_game()
            cpu1, wall1 = tree_cpu_s(os.getpid()), time.monotonic()
            cues = dict(app.mode.cues)
        finally:
            if probe is not None:
                probe.close()
            if app is not None:
                if isinstance(app.mode, GameMode):
                    app.mode.close()
                app.close()
            if web is not None:
                web.stop()
            live.stop()
            acq.stop()

    records = [r for r in probe.records if counted_from <= r[0] <= end]
    drawn = [r for r in records if not math.isnan(r[1])]
    arrival_ms = [1e3 * (flip - rec) for flip, rec, _, _ in drawn]
    stamp_ms = [1e3 * (flip - ts) for flip, _, ts, _ in drawn]
    work_ms = [1e3 * work for _, _, _, work in records]
    flips = [r[0] for r in records]
    per_second = [sum(1 for t in flips if counted_from + i <= t < counted_from + i + 1)
                  for i in range(int(args.seconds))]
    me = os.getpid()
    span = wall1 - wall0
    main_cpu = cpu1.get(me, 0.0) - cpu0.get(me, 0.0)
    total_cpu = sum(v - cpu0.get(pid, 0.0) for pid, v in cpu1.items())
    return {
        "frames": len(records), "with_cursor": len(drawn),
        "fps": statistics.median(per_second) if per_second else math.nan,
        "fps_min": min(per_second) if per_second else math.nan,
        "arrival_med": percentile(arrival_ms, 50), "arrival_p99": percentile(arrival_ms, 99),
        "arrival_max": max(arrival_ms) if arrival_ms else math.nan,
        "stamp_med": percentile(stamp_ms, 50), "stamp_p99": percentile(stamp_ms, 99),
        "work_med": percentile(work_ms, 50), "work_p99": percentile(work_ms, 99),
        "cpu_main": 100 * main_cpu / span, "cpu_children": 100 * (total_cpu - main_cpu) / span,
        "cpu_total": 100 * total_cpu / span, "web": web is not None, "cues": cues,
        "over_pct": 100 * sum(1 for d in arrival_ms if d > TARGET_P99_MS) / max(1, len(arrival_ms)),
        "load": os.getloadavg()[0],
        "rate_hz": acq.rate_hz() or math.nan,
    }


COLUMNS = [  # key, heading, width, decimals
    ("frames", "frames", 6, 0), ("fps", "fps", 5, 1), ("fps_min", "min", 4, 0),
    ("arrival_med", "arr med", 7, 1), ("arrival_p99", "arr p99", 7, 1), ("arrival_max", "arr max", 7, 1),
    ("stamp_med", "ts med", 6, 1), ("stamp_p99", "ts p99", 6, 1),
    ("work_med", "work med", 8, 2), ("work_p99", "work p99", 8, 2),
    ("cpu_main", "CPU main", 8, 1), ("cpu_children", "CPU acq", 7, 1), ("cpu_total", "CPU all", 7, 1),
    ("over_pct", ">20ms %", 7, 2), ("load", "load", 5, 2),
]


def row(label: str, r: dict[str, Any]) -> str:
    cells = []
    for key, _, width, decimals in COLUMNS:
        value = r[key]
        cells.append(f"{'-':>{width}}" if isinstance(value, float) and math.isnan(value)
                     else f"{value:>{width}.{decimals}f}")
    return f"{label:<7} " + " ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run (default 20)")
    parser.add_argument("--warmup-s", type=float, default=3.0, help="seconds not counted at the start (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="runs (default 3); the table shows their median")
    parser.add_argument("--drill", default="reach", help="the drill played (default reach)")
    parser.add_argument("--skill", default="good", choices=("good", "average", "poor"))
    parser.add_argument("--size", type=lambda v: tuple(int(x) for x in v.split("x")), default=(1280, 720),
                        help="screen size WxH (default 1280x720; the Pi's 7-inch screen is 800x480)")
    parser.add_argument("--no-web", action="store_true", help="do not start the web server")
    parser.add_argument("--fresh-wait-ms", type=float, default=FRESH_WAIT_S * 1e3,
                        help=f"the game's late latching (default {FRESH_WAIT_S * 1e3:g} ms; 0 turns it off)")
    args = parser.parse_args()

    print(f"Game benchmark: Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"SDL video driver {os.environ.get('SDL_VIDEODRIVER')}, screen {args.size[0]}x{args.size[1]}, "
          f"drill {args.drill} ({args.skill}), {args.seconds:g} s x {args.repeats} after {args.warmup_s:g} s warm-up, "
          f"late latching {args.fresh_wait_ms:g} ms")
    header = f"{'run':<7} " + " ".join(f"{head:>{width}}" for _, head, width, _ in COLUMNS)
    print(header)
    print("-" * len(header))
    runs = []
    for i in range(args.repeats):
        r = run_once(args, seed=100 + i)
        runs.append(r)
        print(row(f"{i + 1}", r), flush=True)
    med = {key: statistics.median(r[key] for r in runs) for key, *_ in COLUMNS}
    print("-" * len(header))
    print(row("median", med))
    print()
    print("arr: arrival (the pump made the frame available) -> flip of the frame drawn with it, ms; "
          "ts: the frame's timestamp -> flip, ms;")
    print("work: input + update + draw per screen frame, ms; fps: frames per whole second (median, min); "
          "CPU: % of one core (main process with all its threads; acquisition process and other children);")
    print(">20ms %: share of the frames drawn more than 20 ms after their arrival; load: the machine's 1-minute "
          "load average at the end of the run (other work on a shared machine shows up in the latency).")
    web = "idle web server running" if all(r["web"] for r in runs) else "WITHOUT the web server"
    ok_lat = med["arrival_p99"] <= TARGET_P99_MS
    ok_fps = med["fps"] >= TARGET_FPS - 0.5
    print(f"targets ({web}): arrival->drawn p99 <= {TARGET_P99_MS:g} ms: {'met' if ok_lat else 'NOT MET'} "
          f"({med['arrival_p99']:.1f} ms); {TARGET_FPS} frames/s: {'met' if ok_fps else 'NOT MET'} ({med['fps']:.1f})")
    print(f"plate rate {statistics.median(r['rate_hz'] for r in runs):.2f} Hz; cues in the last game of run 1: "
          f"{runs[0]['cues']}")


if __name__ == "__main__":
    main()
