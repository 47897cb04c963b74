"""Throughput of the station core: COP, analysis of a trial, causal filter per frame.

Run on demand (not collected by pytest)::

    .venv/bin/python benchmarks/core.py [--repeats N]

Prints a table of medians over the repeats. The data are synthetic and seeded,
so runs are comparable across machines (a Raspberry Pi 4 against a laptop).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from station.core.cop import centre_of_pressure, split_load
from station.core.geometry import PlateGeometry
from station.core.recording import Recording, parse_recording, recording_to_text
from station.scoring.analyze import analyze_recording
from station.signal.filters import CausalLowpass

FS_HZ = 80.0
SEED = 20261121


def trial(duration_s: float, *, fs_hz: float = FS_HZ) -> Recording:
    """A seeded quiet-stance trial: sway, cell noise and +-2 ms timing jitter."""
    rng = np.random.default_rng(SEED)
    n = int(duration_s * fs_hz)
    t = np.arange(n) / fs_hz + rng.uniform(-0.002, 0.002, n)
    t[0] = 0.0
    x = np.cumsum(rng.normal(0, 0.05, n)) + 2 * np.sin(2 * np.pi * 0.2 * t)
    y = np.cumsum(rng.normal(0, 0.08, n)) + 3 * np.sin(2 * np.pi * 0.13 * t)
    forces = split_load(np.full(n, 700.0), x, y, ml_mm=400.0, ap_mm=300.0) + rng.normal(0, 0.01, (n, 4))
    return Recording(t_s=t, forces_n=forces, sample_rate_hz=fs_hz, geometry=PlateGeometry(), name="bench.csv")


def median_time_s(fn: Callable[[], object], *, repeats: int, inner: int = 1) -> float:
    """Median over ``repeats`` of the wall time of ``inner`` calls, per call, in s."""
    fn()  # warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats per row (default 15)")
    args = parser.parse_args(argv)
    repeats = max(3, args.repeats)
    rows: list[tuple[str, str, str]] = []

    # centre of pressure over arrays of 80 Hz frames
    for n_frames in (4_800, 480_000):  # a 60 s trial, 100 minutes
        forces = trial(n_frames / FS_HZ).forces_n
        s = median_time_s(lambda f=forces: centre_of_pressure(f, ml_mm=400.0, ap_mm=300.0), repeats=repeats)
        rows.append((f"COP, array of {n_frames} frames", f"{n_frames / s / 1e6:.1f} M frames/s", f"{s * 1e3:.3f} ms"))

    # analysis of a 60 s trial
    rec = trial(60.0)
    s = median_time_s(lambda: analyze_recording(rec, protocol="quiet-stance"), repeats=repeats)
    rows.append(("analysis, 60 s at 80 Hz (10 Hz low-pass)", f"{s * 1e3:.2f} ms", "resample+COP+filter+metrics"))
    s = median_time_s(lambda: analyze_recording(rec, protocol="quiet-stance", lowpass_hz=None), repeats=repeats)
    rows.append(("analysis, 60 s at 80 Hz (low-pass off)", f"{s * 1e3:.2f} ms", "resample+COP+metrics"))
    text = recording_to_text(rec)
    s = median_time_s(lambda: parse_recording(text, name="bench.csv"), repeats=repeats)
    rows.append(("parse recording text, 60 s at 80 Hz", f"{s * 1e3:.2f} ms", f"{len(text) / 1e3:.0f} kB"))

    # causal filter, one frame at a time (Fz, COP x, COP y)
    frames = np.column_stack([rec.fz_n, *centre_of_pressure(rec.forces_n, ml_mm=400.0, ap_mm=300.0)[1:]])
    lp = CausalLowpass()
    it = iter(np.tile(frames, (50, 1)))
    s = median_time_s(lambda: lp.update(next(it)), repeats=repeats, inner=2000)
    rows.append(("causal low-pass, per frame of 3 channels", f"{s * 1e6:.1f} us",
                 f"{s * FS_HZ * 100:.3f} % of a core at 80 Hz"))

    width = max(len(r[0]) for r in rows)
    print(f"balance-station core benchmark: Python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.machine()}, median of {repeats} repeats")
    print(f"{'what':<{width}}  {'median':>16}  note")
    print(f"{'-' * width}  {'-' * 16}  {'-' * 30}")
    for what, value, note in rows:
        print(f"{what:<{width}}  {value:>16}  {note}")


if __name__ == "__main__":
    main()
