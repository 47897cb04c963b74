"""Web benchmark: the scores CSV export of 10,000 trials, and a patient's trial list of 1,000 trials.

Run it from the repository root::

    python benchmarks/web.py                 # about half a minute on 2 cores
    python benchmarks/web.py --repeats 3     # quicker look

A temporary database (SQLite, WAL, as on the station) is seeded with
``--trials`` single-leg trials spread over 10 patients (the first patient
gets ``--patient-trials`` of them), each with metrics shaped like the analyze
output (COP measures, support, touchdowns...). The app runs in-process with
Starlette's TestClient, logged in, so the times include routing, the login
check, the database and the serialisation, not a network.

Reported: the median (and min, max) of ``--repeats`` runs of
``GET /api/v1/export/scores.csv`` (all trials, read to the end of the stream)
and ``GET /api/v1/trials?patient=CODE``; the time per trial; the ratio of the
export's median to its 2 s budget (issue 6: "10,000 trials in < 2 s").
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for the test helpers' seeding

EXPORT_BUDGET_S = 2.0


def _timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000, help="trials in the database (default 10000)")
    parser.add_argument("--patient-trials", type=int, default=1_000, help="trials of the listed patient (default 1000)")
    parser.add_argument("--repeats", type=int, default=7, help="runs of each request (default 7)")
    args = parser.parse_args(argv)

    from argon2 import PasswordHasher
    from fastapi.testclient import TestClient

    import station.storage.accounts
    from tests.webui.helpers import login, make_app, seed_trials

    station.storage.accounts.HASHER = PasswordHasher(time_cost=1, memory_cost=1024,
                                                     parallelism=1)  # the login is not measured
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        app, db = make_app(Path(tmp))
        t0 = time.perf_counter()
        seed_trials(db, "P-001", args.patient_trials, seed=1)
        rest = args.trials - args.patient_trials
        for i in range(9):
            n = rest // 9 + (1 if i < rest % 9 else 0)
            if n:
                seed_trials(db, f"P-{i + 2:03d}", n, seed=i + 2)
        seeded_s = time.perf_counter() - t0
        try:
            with TestClient(app, base_url="http://localhost") as client:
                login(client)

                def export() -> None:
                    with client.stream("GET", "/api/v1/export/scores.csv") as r:
                        assert r.status_code == 200, r.status_code
                        size = sum(len(chunk) for chunk in r.iter_bytes())
                    assert size > 0

                def trial_list() -> None:
                    r = client.get("/api/v1/trials", params={"patient": "P-001"})
                    assert r.status_code == 200 and len(r.json()) == args.patient_trials

                rows = len(client.get("/api/v1/export/scores.csv").text.splitlines()) - 1
                assert rows == args.trials, rows
                export()  # warm-up
                trial_list()
                export_times = _timed(export, args.repeats)
                list_times = _timed(trial_list, args.repeats)
        finally:
            db.close()

    ex, li = statistics.median(export_times), statistics.median(list_times)
    print(f"python {platform.python_version()} on {platform.machine()}, {args.repeats} runs each; "
          f"seeded {args.trials} trials in {seeded_s:.1f} s")
    print(f"scores.csv export, {args.trials} trials: median {ex:.3f} s (min {min(export_times):.3f}, "
          f"max {max(export_times):.3f}); {ex / args.trials * 1e6:.0f} us per trial; "
          f"{ex / EXPORT_BUDGET_S:.2f} of the {EXPORT_BUDGET_S:g} s budget")
    print(f"trial list, {args.patient_trials} trials of one patient: median {li:.3f} s (min {min(list_times):.3f}, "
          f"max {max(list_times):.3f}); {li / args.patient_trials * 1e6:.0f} us per trial")
    print(f"per trial, the JSON list costs {li / args.patient_trials / (ex / args.trials):.1f}x the CSV export")
    return 0 if ex < EXPORT_BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
