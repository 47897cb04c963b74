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

- arrival -> drawn: from when the live station ingested the frame
  (``LiveSample.received_s``, monotonic) to the flip (target: 99th
  percentile at most 20 ms). The screen pumps the frames itself at the start
  of each of its frames (:meth:`station.live.pipeline.LiveStation.pump`), so
  this is now the screen's own part only: a frame's wait in the pipe until
  the screen's next frame is not in it;
- timestamp -> drawn: from the frame's own timestamp (the simulated plate
  stamps it on the same monotonic clock, in the acquisition process, just
  before it sends it) to the flip: the whole delay from the plate to the
  picture, the pipe and the wait for the screen's frame included. This is
  the cursor delay the patient sees (less the panel's own); the target is
  checked on it too;
- work: the time a screen frame spends in input, update and drawing;
- frame rate: frames flipped in each whole second, median over the run (target 60);
- CPU: of the whole station, main process (all its threads) plus the
  acquisition process and any other child, from /proc, in % of one core;
  the main process split by thread: the screen (the main thread), the pump,
  the web server's threads and any other.

The screen is drawn at most 720 lines high (:func:`station.screen.window.logical_size`):
on a 1920x1080 panel SDL scales the picture up (pygame's SCALED; the GPU on the
Pi). SDL's dummy driver has no GPU and shows nothing, so here the window is the
drawn size and the scaling is not in the CPU figures; ``cpu_sw_scale_pct`` says
what scaling each frame on the CPU would cost instead (``pygame.transform.scale``
of one frame to the panel, times the frame rate), for a machine without a GPU.

Then (unless ``--no-station``) the whole station is started as the technician
starts it (``python -m station.commands.cli --plate simulated``, a throw-away data
folder, a free port, the same screen size) ``--station-repeats`` times: its cold
start (to the patient screen open and the web page answering), its CPU while it
stands idle on the start screen, and the resident memory of all its processes
(RSS summed; PSS, which counts the pages the processes share once, beside it).

The first ``--warmup-s`` seconds of each run are not counted. The table
shows each run and the median of the runs (the machine may be shared);
``--json`` prints one JSON object with the medians (and each run) instead.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np  # noqa: E402
import pygame  # noqa: E402

from calibration.model import simulator_calibration  # noqa: E402
from station.commands.run import settle_memory  # noqa: E402
from station.core.config import ScreenSettings, load_settings  # noqa: E402
from station.core.geometry import PlateGeometry  # noqa: E402
from station.drills import make_drill  # noqa: E402
from station.drills.autoplay import AutoPlayer  # noqa: E402
from station.live.acquisition import AcquisitionProcess, SourceSpec  # noqa: E402
from station.live.pipeline import LiveStation  # noqa: E402
from station.screen.app import ScreenApp  # noqa: E402
from station.screen.game import FRESH_WAIT_S, GameMode  # noqa: E402
from station.screen.sounds import Sounds  # noqa: E402
from station.signal.forces import ForcePipeline  # noqa: E402

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


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds of this process's threads, by part: the screen (the main thread), the pump, the web
    server (its thread and uvicorn's), other threads."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    parts = {"screen": 0.0, "pump": 0.0, "web": 0.0, "other": 0.0}
    me = os.getpid()
    for entry in os.listdir(f"/proc/{me}/task"):
        try:
            data = Path(f"/proc/{me}/task/{entry}/stat").read_text()
        except OSError:
            continue
        fields = data[data.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        tid = int(entry)
        name = names.get(tid, "")
        if tid == me:
            parts["screen"] += cpu
        elif name == "frame-pump":
            parts["pump"] += cpu
        elif name == "web" or name.startswith(("AnyIO", "asyncio", "ThreadPoolExecutor")):
            parts["web"] += cpu
        else:
            parts["other"] += cpu
    return parts


def tree_memory_mb(root: int) -> tuple[float, float]:
    """(RSS summed, PSS summed) of ``root`` and its descendants, in MB."""
    rss = pss = 0.0
    for pid in tree_cpu_s(root):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) / 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) / 1024
        except OSError:
            continue
    return rss, pss


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


def run_once(args: argparse.Namespace, seed: int, *, live_view: bool = False) -> dict[str, Any]:
    """One run: a game played (or, ``live_view``, the live view of the plate shown: the simulated person
    stands on it), measured after the warm-up."""
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
                from station.commands.run import WebServer
                from webui.app import create_app

                settings = load_settings(None, plate_source="simulated", data_dir=Path(data_dir))
                web = WebServer(create_app(settings, live), host="127.0.0.1", port=free_port())
                if not web.start():
                    print("  (the web server did not start; measuring without it)", file=sys.stderr)
                    web = None
            w, h = args.size
            app = ScreenApp(live, geometry=geometry, settings=ScreenSettings(fullscreen=args.fullscreen, width=w,
                                                                              height=h, fps=TARGET_FPS))
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

            if not live_view:
                app.mode = new_game()
            probe = Probe(app)
            settle_memory()  # as the station does once it has started (station.commands.run)
            start = time.monotonic()
            counted_from = start + args.warmup_s
            end = counted_from + args.seconds
            cpu0: dict[int, float] | None = None
            threads0: dict[str, float] = {}
            wall0 = math.nan
            while True:
                now = time.monotonic()
                if cpu0 is None and now >= counted_from:
                    cpu0, threads0, wall0 = tree_cpu_s(os.getpid()), thread_cpu_s(), now
                if now >= end:
                    break
                probe.tick_started = now
                app.tick()
                if not live_view and app.mode.drill.finished:
                    app.mode.close()
                    app.mode = new_game()
            cpu1, threads1, wall1 = tree_cpu_s(os.getpid()), thread_cpu_s(), time.monotonic()
            cues = dict(getattr(app.mode, "cues", {}))
            drawn_at = app.surface.get_size()
            panel = tuple(pygame.display.get_desktop_sizes()[0]) if args.fullscreen else tuple(args.size)
            scale_ms = software_scale_ms(app.surface, panel)
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
            gc.unfreeze()  # the next run starts as a fresh station would

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
        **{f"cpu_{part}": 100 * (threads1[part] - threads0.get(part, 0.0)) / span for part in threads1},
        "drawn_at": drawn_at, "panel": panel, "sw_scale_ms": scale_ms,
        "over_pct": 100 * sum(1 for d in arrival_ms if d > TARGET_P99_MS) / max(1, len(arrival_ms)),
        "load": os.getloadavg()[0],
        "rate_hz": acq.rate_hz() or math.nan,
    }


def software_scale_ms(surface: pygame.Surface, panel: tuple[int, int]) -> float:
    """What scaling one drawn frame up to the panel costs on the CPU (median of 30), in ms; 0 when drawn at
    the panel's size."""
    if surface.get_size() == tuple(panel):
        return 0.0
    dest = pygame.Surface(panel, 0, surface)
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        pygame.transform.scale(surface, panel, dest)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


# -- the whole station, as it is started -------------------------------------------------------------------


def _http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def run_station(args: argparse.Namespace) -> dict[str, Any]:
    """Start the station (simulated plate), time its cold start, then measure it idle: CPU and memory."""
    with tempfile.TemporaryDirectory(prefix="station-bench-") as data_dir:
        config = Path(data_dir) / "station.toml"
        w, h = args.size
        if args.station_config is not None:  # the Pi's own configuration (its plate's pins, its screen)
            config = args.station_config.resolve()
        else:
            config.write_text(f"[screen]\nfullscreen = {str(args.fullscreen).lower()}\n"
                              f"width = {w}\nheight = {h}\nfps = {TARGET_FPS}\n")
        port = free_port()
        cmd = [sys.executable, "-m", "station.commands.cli", "--plate", args.station_plate, "--config", str(config),
               "--data-dir", str(Path(data_dir) / "data"), "--port", str(port)]
        screen_at: list[float] = []
        lines: list[str] = []
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                cwd=Path(__file__).resolve().parent.parent)

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line.rstrip())
                if "screen: patient screen open" in line:
                    screen_at.append(time.monotonic())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        web_at = math.nan
        try:
            deadline = t0 + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if math.isnan(web_at) and _http_answers(f"http://127.0.0.1:{port}/"):
                    web_at = time.monotonic()
                if not math.isnan(web_at) and screen_at:
                    break
                time.sleep(0.02)
            if proc.poll() is not None or math.isnan(web_at) or not screen_at:
                raise RuntimeError("the station did not start: " + " | ".join(lines[-5:]))
            time.sleep(args.station_settle_s)
            cpu0, wall0 = tree_cpu_s(proc.pid), time.monotonic()
            time.sleep(args.station_idle_s)
            cpu1, wall1 = tree_cpu_s(proc.pid), time.monotonic()
            rss, pss = tree_memory_mb(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    span = wall1 - wall0
    return {
        "cold_start_s": max(web_at, screen_at[0]) - t0, "cold_start_web_s": web_at - t0,
        "cold_start_screen_s": screen_at[0] - t0,
        "cpu_idle_pct": 100 * sum(v - cpu0.get(pid, 0.0) for pid, v in cpu1.items()) / span,
        "cpu_idle_main_pct": 100 * (cpu1.get(proc.pid, 0.0) - cpu0.get(proc.pid, 0.0)) / span,
        "rss_total_mb": rss, "pss_total_mb": pss, "processes": len(cpu1),
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
    parser.add_argument("--fullscreen", action="store_true",
                        help="full screen on a real display (SDL_VIDEODRIVER=kmsdrm on the Pi's console): the panel's "
                             "own size, scaled by SDL; --size is then only the label")
    parser.add_argument("--json", action="store_true", help="print one JSON object (medians and each run)")
    parser.add_argument("--no-station", action="store_true",
                        help="do not start the whole station (cold start, idle CPU, memory)")
    parser.add_argument("--no-live-view", action="store_true",
                        help="(--json) do not measure the live view of the plate (shown instead of a game)")
    parser.add_argument("--station-repeats", type=int, default=3, help="station starts (default 3)")
    parser.add_argument("--station-config", type=Path, default=None,
                        help="the station's configuration file for the whole-station runs (default: one with "
                             "just the screen size, in a window)")
    parser.add_argument("--station-plate", default="simulated", choices=("simulated", "hx711"),
                        help="the plate of the whole station measured idle (default simulated; hx711 on a Pi "
                             "with the plate wired, to count the real acquisition)")
    parser.add_argument("--station-settle-s", type=float, default=3.0,
                        help="seconds after the start before the idle station is measured (default 3)")
    parser.add_argument("--station-idle-s", type=float, default=10.0,
                        help="seconds the idle station is measured (default 10)")
    parser.add_argument("--fresh-wait-ms", type=float, default=FRESH_WAIT_S * 1e3,
                        help=f"the game's late latching (default {FRESH_WAIT_S * 1e3:g} ms; 0 turns it off)")
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure_json(args), indent=2))
        return

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
    print("arr: arrival (the frame ingested, by the screen's own pump) -> flip of the frame drawn with it, ms; "
          "ts: the frame's timestamp -> flip (the whole delay), ms;")
    print("work: input + update + draw per screen frame, ms; fps: frames per whole second (median, min); "
          "CPU: % of one core (main process with all its threads; acquisition process and other children);")
    print(">20ms %: share of the frames drawn more than 20 ms after their arrival; load: the machine's 1-minute "
          "load average at the end of the run (other work on a shared machine shows up in the latency).")
    web = "idle web server running" if all(r["web"] for r in runs) else "WITHOUT the web server"
    ok_lat = med["arrival_p99"] <= TARGET_P99_MS
    ok_stamp = med["stamp_p99"] <= TARGET_P99_MS
    ok_fps = med["fps"] >= TARGET_FPS - 0.5
    print(f"targets ({web}): arrival->drawn p99 <= {TARGET_P99_MS:g} ms: {'met' if ok_lat else 'NOT MET'} "
          f"({med['arrival_p99']:.1f} ms); timestamp->drawn p99 <= {TARGET_P99_MS:g} ms: "
          f"{'met' if ok_stamp else 'NOT MET'} ({med['stamp_p99']:.1f} ms); "
          f"{TARGET_FPS} frames/s: {'met' if ok_fps else 'NOT MET'} ({med['fps']:.1f})")
    print(f"plate rate {statistics.median(r['rate_hz'] for r in runs):.2f} Hz; cues in the last game of run 1: "
          f"{runs[0]['cues']}")
    drawn = runs[0]["drawn_at"]
    print(f"main process by thread (% of one core, median): screen {med_of(runs, 'cpu_screen'):.1f}, "
          f"pump {med_of(runs, 'cpu_pump'):.1f}, web {med_of(runs, 'cpu_web'):.1f}, "
          f"other {med_of(runs, 'cpu_other'):.1f}; drawn at {drawn[0]}x{drawn[1]}"
          + (f" and scaled by SDL to {args.size[0]}x{args.size[1]} (scaling on the CPU instead of a GPU: "
             f"{med_of(runs, 'sw_scale_ms'):.2f} ms a frame)" if tuple(drawn) != tuple(args.size) else ""))
    if not args.no_station:
        stations = [run_station(args) for _ in range(args.station_repeats)]
        print("whole station (median of {}): cold start {:.2f} s (screen {:.2f} s, web page {:.2f} s); idle on the "
              "start screen {:.1f} % of one core; memory RSS {:.0f} MB, PSS {:.0f} MB ({} processes)".format(
                  len(stations), med_of(stations, "cold_start_s"), med_of(stations, "cold_start_screen_s"),
                  med_of(stations, "cold_start_web_s"), med_of(stations, "cpu_idle_pct"),
                  med_of(stations, "rss_total_mb"), med_of(stations, "pss_total_mb"), stations[0]["processes"]))


def med_of(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def measure_json(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark as one JSON object: medians of the runs, and each run."""
    runs = [run_once(args, seed=100 + i) for i in range(args.repeats)]
    drawn = runs[0]["drawn_at"]
    fps = med_of(runs, "fps")
    out: dict[str, Any] = {
        "screen": "{}x{}".format(*runs[0]["panel"]),
        "drawn_at": f"{drawn[0]}x{drawn[1]}",
        "cpu_all_pct": med_of(runs, "cpu_total"),
        "cpu_main_pct": med_of(runs, "cpu_main"),
        "cpu_acquisition_pct": med_of(runs, "cpu_children"),
        "cpu_screen_pct": med_of(runs, "cpu_screen"),
        "cpu_pump_pct": med_of(runs, "cpu_pump"),
        "cpu_web_pct": med_of(runs, "cpu_web"),
        "cpu_other_threads_pct": med_of(runs, "cpu_other"),
        "cpu_sw_scale_pct": med_of(runs, "sw_scale_ms") * fps / 10,
        "arrival_median_ms": med_of(runs, "arrival_med"),
        "arrival_p99_ms": med_of(runs, "arrival_p99"),
        "stamp_median_ms": med_of(runs, "stamp_med"),
        "stamp_p99_ms": med_of(runs, "stamp_p99"),
        "work_median_ms": med_of(runs, "work_med"),
        "work_p99_ms": med_of(runs, "work_p99"),
        "fps": fps,
        "fps_min": med_of(runs, "fps_min"),
        "plate_rate_hz": med_of(runs, "rate_hz"),
        "web_server": "idle" if all(r["web"] for r in runs) else "off",
        "drill": args.drill, "skill": args.skill, "seconds": args.seconds, "repeats": args.repeats,
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "video_driver": os.environ.get("SDL_VIDEODRIVER"),
        "load_1min": os.getloadavg()[0],
        "note": "medians of the runs; CPU in % of one core; the machine may be shared (see load_1min)",
    }
    if not args.no_live_view:
        views = [run_once(args, seed=200 + i, live_view=True) for i in range(args.repeats)]
        out["cpu_live_view_pct"] = med_of(views, "cpu_total")
        out["cpu_live_view_screen_pct"] = med_of(views, "cpu_screen")
        out["live_view_fps"] = med_of(views, "fps")
    if not args.no_station:
        stations = [run_station(args) for _ in range(args.station_repeats)]
        for key in ("cold_start_s", "cold_start_screen_s", "cold_start_web_s", "cpu_idle_pct",
                    "cpu_idle_main_pct", "rss_total_mb", "pss_total_mb"):
            out[key] = med_of(stations, key)
        out["station_plate"] = args.station_plate
        out["station_runs"] = stations
    out["runs"] = [{k: v for k, v in r.items() if k != "cues"}
                   | {"drawn_at": list(r["drawn_at"]), "panel": list(r["panel"])} for r in runs]
    return out


if __name__ == "__main__":
    main()
