"""Acquisition benchmark: both HX711 backends against the bit-level chip model.

Run it from the repository root::

    python benchmarks/acquisition.py            # about a minute on 2 cores
    python benchmarks/acquisition.py --sim-s 10 --repeats 1 --real-s 2   # quick look

For each backend, over ``--sim-s`` seconds of simulated time (virtual clock,
1 us per fake GPIO call), it reports the frame rate achieved, the frames
dropped, and the real CPU time per frame (``time.process_time``, median of
``--repeats`` runs), with the share of that spent inside the chip models
(measured in one extra, instrumented run). Then a real-time run of
``--real-s`` seconds per backend on the real clock: the frame rate and how
many frames were discarded for long clock-high phases on this machine (here
a "GPIO call" is a call into the Python fake, not lgpio on a Pi, so this
shows the scheduler's hiccups, not a Pi's GPIO speed).

Last, ``--process-s`` seconds (default 10; 0 skips it) of the acquisition
process as the station runs it (:class:`station.live.acquisition.AcquisitionProcess`):
the simulated plate, and the chip-model plate (``--plate chip-model``: the
backend in the child clocking the chip models fed by the simulated person) with
each backend on the paced clock, and the lgpio one on the system clock. For each:
the frame rate over the last 400 frames (what the status page shows), frames
missing from the timeline, reads discarded by the backend, and the CPU of the
child process in % of one core (from ``/proc``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from hardware.fakes.board import Board
from hardware.fakes.clock import RealClock, VirtualClock
from hardware.fakes.install import fake_gpio_modules
from hardware.fakes.lgpio import make_lgpio
from hardware.hx711.lgpio_backend import SharedClockHX711Plate
from hardware.hx711.rpigpio_backend import PerBoardHX711Plate

VALUES = (180_000, 175_000, 170_000, 185_000)  # about 70 kg on the plate, in counts


def _lgpio_plate(clock: Any, stack: ExitStack, *, profile: bool) -> tuple[Any, Board]:
    board = Board.shared_clock(clock=clock, values=VALUES, noise=True, seed=1)
    board.profile = profile
    real = isinstance(clock, RealClock)
    plate = SharedClockHX711Plate(clock=None if real else clock, lgpio=make_lgpio(board))
    return plate, board


def _rpigpio_plate(clock: Any, stack: ExitStack, *, profile: bool) -> tuple[Any, Board]:
    board = Board.per_board_clock(clock=clock, values=VALUES, noise=True, seed=1)
    board.profile = profile
    stack.enter_context(fake_gpio_modules(board))
    real = isinstance(clock, RealClock)
    plate = PerBoardHX711Plate(clock=None if real else clock)
    return plate, board


BACKENDS: dict[str, Callable[..., tuple[Any, Board]]] = {
    "hx711-lgpio (shared clock)": _lgpio_plate,
    "hx711-rpigpio (per board)": _rpigpio_plate,
}


def run(make: Callable[..., tuple[Any, Board]], *, clock: Any, duration_s: float, profile: bool = False) -> dict:
    """Open a plate, read frames for ``duration_s`` on ``clock``, return the figures."""
    with ExitStack() as stack:
        plate, board = make(clock, stack, profile=profile)
        with plate:
            plate.read()  # past the start-up settling
            board.chip_ns = 0
            cpu0, wall0 = time.process_time(), time.perf_counter_ns()
            start = clock.monotonic()
            times = []
            while clock.monotonic() - start < duration_s:
                times.append(plate.read().t_s)
            cpu_s = time.process_time() - cpu0
            wall_ns = time.perf_counter_ns() - wall0
    return {
        "frames": len(times),
        "rate_hz": (len(times) - 1) / (times[-1] - times[0]),
        "dropped": plate.stats.dropped,
        "cpu_ms_per_frame": 1e3 * cpu_s / len(times),
        "chip_share": board.chip_ns / wall_ns if profile else None,
        "longest_high_us": plate.longest_high_ns / 1000,
    }


#: the acquisition process's rows: (name, SourceSpec kind, params)
PROCESS_ROWS: list[tuple[str, str, dict[str, Any]]] = [
    ("simulated plate", "simulated", {"seed": 1, "realtime": True}),
    ("chip-model, lgpio, paced", "chip-model", {"backend": "lgpio", "seed": 1, "realtime_priority": True}),
    ("chip-model, rpigpio, paced", "chip-model", {"backend": "rpigpio", "seed": 1, "realtime_priority": True}),
    ("chip-model, lgpio, real clock", "chip-model", {"backend": "lgpio", "seed": 1, "clock": "real",
                                                      "realtime_priority": True}),
]


def _cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_process(kind: str, params: dict[str, Any], *, duration_s: float) -> dict:
    """The acquisition process on one source for ``duration_s`` after a second of warm-up."""
    from station.live.acquisition import AcquisitionProcess, SourceSpec

    acq = AcquisitionProcess(SourceSpec(kind, params))
    acq.start()
    try:
        t_warm = time.monotonic() + 1.0
        while time.monotonic() < t_warm:
            acq.frames(timeout_s=0.2)
        dropped0, discarded0 = acq.stats.dropped_frames, acq.stats.source.get("dropped", 0)
        cpu0, t0 = _cpu_s(acq.pid), time.monotonic()
        frames = 0
        while time.monotonic() - t0 < duration_s:
            frames += len(acq.frames(timeout_s=0.2))
        cpu_pct = 100 * (_cpu_s(acq.pid) - cpu0) / (time.monotonic() - t0)
        return {"frames": frames, "rate_hz": acq.rate_hz() or 0.0, "dropped": acq.stats.dropped_frames - dropped0,
                "discarded": acq.stats.source.get("dropped", 0) - discarded0, "cpu_pct": cpu_pct,
                "faults": acq.stats.faults}
    finally:
        acq.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sim-s", type=float, default=60.0, help="simulated seconds per run (default 60)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per backend for the CPU median (default 3)")
    parser.add_argument("--real-s", type=float, default=5.0, help="real-time seconds per backend (default 5)")
    parser.add_argument("--process-s", type=float, default=10.0,
                        help="seconds of the acquisition process per source, simulated and chip-model (default 10; "
                             "0 skips them)")
    args = parser.parse_args()

    print(f"HX711 acquisition benchmark: Python {platform.python_version()} on {platform.machine()}, "
          f"{args.sim_s:g} s simulated x {args.repeats} (+1 instrumented), {args.real_s:g} s real time")
    header = (f"{'backend':<28} {'clock':<8} {'span s':>6} {'frames':>6} {'frames/s':>8} {'dropped':>7} "
              f"{'CPU ms/frame':>12} {'chip model':>10} {'max high us':>11}")
    print(header)
    print("-" * len(header))
    for name, make in BACKENDS.items():
        runs = [run(make, clock=VirtualClock(), duration_s=args.sim_s) for _ in range(args.repeats)]
        profiled = run(make, clock=VirtualClock(), duration_s=args.sim_s, profile=True)
        first = runs[0]
        cpu = statistics.median(r["cpu_ms_per_frame"] for r in runs)
        print(f"{name:<28} {'virtual':<8} {args.sim_s:>6g} {first['frames']:>6} {first['rate_hz']:>8.2f} "
              f"{first['dropped']:>7} {cpu:>12.3f} {profiled['chip_share']:>10.0%} "
              f"{first['longest_high_us']:>11.1f}")
    for name, make in BACKENDS.items():
        real = run(make, clock=RealClock(), duration_s=args.real_s)
        print(f"{name:<28} {'real':<8} {args.real_s:>6g} {real['frames']:>6} {real['rate_hz']:>8.2f} "
              f"{real['dropped']:>7} {real['cpu_ms_per_frame']:>12.3f} {'-':>10} {real['longest_high_us']:>11.1f}")
    print("dropped: frames (lgpio) or board readings (rpigpio) discarded for a clock-high phase over 50 us.")
    print("CPU ms/frame in virtual time includes the fake GPIO modules and the chip models (their share shown).")
    if args.process_s > 0:
        print()
        header = (f"{'acquisition process':<32} {'s':>4} {'frames':>6} {'frames/s':>8} {'dropped':>7} "
                  f"{'discarded':>9} {'CPU % core':>10}")
        print(header)
        print("-" * len(header))
        for name, kind, params in PROCESS_ROWS:
            r = run_process(kind, params, duration_s=args.process_s)
            print(f"{name:<32} {args.process_s:>4g} {r['frames']:>6} {r['rate_hz']:>8.2f} {r['dropped']:>7} "
                  f"{r['discarded']:>9} {r['cpu_pct']:>10.1f}" + (f"  faults {r['faults']}" if r["faults"] else ""))
        print("frames/s over the last 400 frames (the status page's figure); dropped: frames missing from the "
              "timeline; discarded: reads the backend threw away for a long clock-high phase.")


if __name__ == "__main__":
    main()
