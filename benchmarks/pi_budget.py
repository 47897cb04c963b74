"""The Pi budget, measured: one command a technician runs on the Pi, printing the table of docs/pi-budget.md.

Run it from the repository root, with the station's service stopped (it starts its own station)::

    .venv/bin/python benchmarks/pi_budget.py                      # about 4 minutes
    .venv/bin/python benchmarks/pi_budget.py --panel 1920x1080 --plate hx711 --config /etc/balance-station/station.toml
    SDL_VIDEODRIVER=kmsdrm .venv/bin/python benchmarks/pi_budget.py --fullscreen   # on the Pi's console, real screen

It runs, and prints as one table (and writes to ``--out``, JSON):

1. a fixed reference work in Python (pure-Python calls, numpy on small arrays, pygame drawing at
   1280x720), each part timed (median of 7): the ratio of these times between the Pi and the
   development machine is the measured scaling factor for each kind of work;
2. ``benchmarks/game.py --json`` at the panel's size (3 runs of 10 s): the whole station during a
   game at 60 frames/s with the web server idle, by part (screen, pump, web, acquisition), the
   cursor delay, and the whole station started as the service starts it (cold start, idle CPU,
   memory) on the simulated plate, then (``--plate hx711``) on the real plate, whose acquisition
   then is the real HX711 clocking.

Nothing is sent anywhere; the JSON is for pasting into docs/pi-budget.md beside the figures of
the development machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict[str, Any]:
    model = ""
    for path in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        try:
            model = Path(path).read_text().strip("\x00\n ")
            break
        except OSError:
            pass
    if not model:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"model": model or platform.processor(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "load_1min_at_start": os.getloadavg()[0]}


def reference_work(repeats: int = 7) -> dict[str, float]:
    """Times (ms, median of ``repeats``) of three small fixed works like the station's: the interpreter
    (calls, attributes, small loops), numpy on tiny arrays (the pump's per-frame maths), pygame drawing."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import numpy as np
    import pygame

    class Point:
        __slots__ = ("x", "y")

        def __init__(self, x: float, y: float) -> None:
            self.x, self.y = x, y

        def moved(self, dx: float, dy: float) -> Point:
            return Point(self.x + dx, self.y + dy)

    def interpreter() -> None:
        p = Point(0.0, 0.0)
        total = 0.0
        for i in range(200_000):
            p = p.moved(0.5, -0.25)
            total += p.x * 0.001 if i % 3 else -p.y * 0.002
        d = {f"k{i}": i for i in range(2000)}
        sum(d[f"k{i}"] for i in range(2000))

    window = np.random.default_rng(1).normal(700.0, 5.0, 80)

    def numpy_small() -> None:
        for _ in range(5000):
            v = np.array([1.5, -2.5])
            np.median(window)
            (v * 0.9 + 0.1).sum()

    pygame.display.init()
    surface = pygame.Surface((1280, 720))
    layer = pygame.Surface((1280, 720))
    layer.fill((14, 27, 44))

    def drawing() -> None:
        for i in range(200):
            surface.blit(layer, (0, 0))
            pygame.draw.circle(surface, (255, 122, 41), (200 + i, 300), 24)
            pygame.draw.rect(surface, (28, 45, 68), (900, 20, 360, 680), border_radius=20)

    out = {}
    for name, work in (("python_ms", interpreter), ("numpy_ms", numpy_small), ("pygame_ms", drawing)):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            work()
            times.append(1e3 * (time.perf_counter() - t0))
        out[name] = statistics.median(times)
    pygame.display.quit()
    return out


def game(args: argparse.Namespace, plate: str) -> dict[str, Any]:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "game.py"), "--json", "--size", args.panel,
           "--seconds", str(args.seconds), "--repeats", str(args.repeats), "--station-plate", plate,
           "--station-repeats", str(args.repeats)]
    if args.config is not None:
        cmd += ["--station-config", str(args.config)]
    if args.fullscreen:
        cmd.append("--fullscreen")
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmarks/game.py failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def table(here: dict[str, Any]) -> str:
    g = here["game"]
    rows = [
        ("screen (main thread), game at 60 fps", f"{g['cpu_screen_pct']:.1f} %"),
        ("frame pump (thread)", f"{g['cpu_pump_pct']:.1f} %"),
        ("web server, idle (threads)", f"{g['cpu_web_pct']:.1f} %"),
        ("acquisition process, simulated plate", f"{g['cpu_acquisition_pct']:.1f} %"),
        ("whole station during a game", f"{g['cpu_all_pct']:.1f} %"),
        ("cursor delay p99", f"{g['arrival_p99_ms']:.1f} ms"),
        ("frame rate (median)", f"{g['fps']:.0f} /s"),
        ("scaling to the panel on the CPU instead (no GPU)", f"{g['cpu_sw_scale_pct']:.1f} %"),
        ("whole station idle on the start screen", f"{g['cpu_idle_pct']:.1f} %"),
        ("whole station on the live view (plate occupied)", f"{g['cpu_live_view_pct']:.1f} %"),
        ("  of which the screen", f"{g['cpu_live_view_screen_pct']:.1f} %"),
        ("cold start (screen and web page)", f"{g['cold_start_s']:.1f} s"),
        ("memory, all processes (RSS / PSS)", f"{g['rss_total_mb']:.0f} / {g['pss_total_mb']:.0f} MB"),
    ]
    if "game_hx711" in here:
        h = here["game_hx711"]
        rows += [("whole station idle, HX711 plate (real acquisition)", f"{h['cpu_idle_pct']:.1f} %"),
                 ("  of which the main process", f"{h['cpu_idle_main_pct']:.1f} %")]
    ref = here["reference"]
    rows += [(f"reference work: {k[:-3]}", f"{v:.1f} ms") for k, v in ref.items()]
    width = max(len(r[0]) for r in rows)
    head = (f"{'part (CPU in % of one core)':<{width}} | {here['machine']['model']} ({g['screen']}, "
            f"drawn at {g['drawn_at']})")
    lines = [head, "-" * (width + 40)]
    lines += [f"{name:<{width}} | {value}" for name, value in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--panel", default="1920x1080", help="the screen's size, WxH (default 1920x1080)")
    parser.add_argument("--plate", choices=("simulated", "hx711"), default="simulated",
                        help="also measure the idle station on this plate (hx711: the wired plate)")
    parser.add_argument("--config", type=Path, default=None, help="the station's configuration (for --plate hx711)")
    parser.add_argument("--fullscreen", action="store_true", help="full screen on the real display (kmsdrm)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per game run (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--out", type=Path, default=Path("pi-budget.json"), help="where the JSON goes")
    args = parser.parse_args()

    here: dict[str, Any] = {"machine": machine(), "reference": reference_work()}
    here["game"] = game(args, "simulated")
    if args.plate == "hx711":
        here["game_hx711"] = game(args, "hx711")
    args.out.write_text(json.dumps(here, indent=2))
    print(table(here))
    print(f"\n(all of it in {args.out}; medians of {args.repeats} runs; load average now "
          f"{os.getloadavg()[0]:.2f}: other work on the machine shows in the figures)")


if __name__ == "__main__":
    main()
