"""The clinic database: the patient page with 1,000 trials and the scores CSV of 10,000 trials, on PostgreSQL.

Run on demand (not collected by pytest), against a PostgreSQL server on which the URL's account may
create a database::

    .venv/bin/python benchmarks/clinic.py                      # URL from BALANCE_TEST_POSTGRES_URL
    .venv/bin/python benchmarks/clinic.py postgresql+psycopg://user:pw@clinic-db/postgres --repeats 5

A throw-away database (``bench_clinic_<random>``) is made on that server and dropped afterwards. It is
seeded as the SQLite benchmarks seed theirs (``benchmarks/pages.py``: one patient with ``--page-trials``
scored single-leg trials, ten a visit; ``benchmarks/web.py``: ``--trials`` trials over ten patients
with ``tests/webui/helpers.seed_trials``), and the app (:func:`webui.app.create_app`) runs in-process
with Starlette's test client, logged in: the times include routing, the login check, the queries over
the connection to the server, the charts and the template or the CSV, not a browser or a network to it.

Printed: the median (and min, max) of ``--repeats`` runs of each, against the targets of issue 15:
the patient page under 200 ms, the scores CSV of 10,000 trials under 2 s. Exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the test helpers' seeding; the sibling benchmark's
sys.path.insert(0, str(REPO / "benchmarks"))

PAGE_TARGET_MS = 200.0
CSV_TARGET_S = 2.0


def _timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _scratch(admin_url: str):
    """(URL of a new database on the server, a function that drops it)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    if url.get_backend_name() != "postgresql":
        raise SystemExit(f"clinic.py: {url.render_as_string(hide_password=True)} is not a PostgreSQL URL")
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    name = f"bench_clinic_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default=os.environ.get("BALANCE_TEST_POSTGRES_URL", ""),
                        help="a PostgreSQL URL whose account may create databases (default $BALANCE_TEST_POSTGRES_URL)")
    parser.add_argument("--trials", type=int, default=10_000, help="trials in the scores CSV (default 10000)")
    parser.add_argument("--page-trials", type=int, default=1_000, help="trials of the patient page (default 1000)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each (default 7)")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give a PostgreSQL URL or set BALANCE_TEST_POSTGRES_URL")
    repeats = max(3, args.repeats)

    from argon2 import PasswordHasher
    from fastapi.testclient import TestClient
    from pages import build, scored

    import station.storage.accounts
    from station.core.config import StationSettings
    from station.storage.db import open_database
    from tests.webui.helpers import login, seed_trials
    from webui.app import create_app

    station.storage.accounts.HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # not measured
    templates = []
    for sway, plate in ((2.0, ()), (3.0, ((14.0, 0.5, 50.0),)), (2.5, ((20.0, 0.8, 40.0),))):
        pair = {}
        for side in ("left", "right"):
            _, pair[side] = scored(side, sway_mm=sway if side == "left" else sway * 1.6,
                                   plate=plate if side == "right" else ())
        templates.append(pair)

    url, drop = _scratch(args.url)
    try:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="bench-clinic-") as tmp:
            settings = StationSettings(data_dir=Path(tmp) / "data", database_url=url)
            db = open_database(url)
            try:
                t0 = time.perf_counter()
                build(db, code="B-1000", n_trials=args.page_trials, per_visit=10, templates=templates)
                rest = args.trials - args.page_trials
                for i in range(9):
                    n = rest // 9 + (1 if i < rest % 9 else 0)
                    if n:
                        seed_trials(db, f"P-{i + 2:03d}", n, seed=i + 2)
                with db.engine.connect() as c:  # fresh planner statistics, as autovacuum would have by now
                    c.exec_driver_sql("ANALYZE")
                    c.commit()
                seeded_s = time.perf_counter() - t0
                app = create_app(settings, db=db)
                with TestClient(app, base_url="http://localhost") as client:
                    login(client)

                    def page() -> None:
                        r = client.get("/patients/B-1000")
                        assert r.status_code == 200, (r.status_code, r.text[:300])

                    def export() -> None:
                        with client.stream("GET", "/api/v1/export/scores.csv") as r:
                            assert r.status_code == 200, r.status_code
                            lines = sum(chunk.count(b"\n") for chunk in r.iter_bytes())
                        assert lines == args.trials + 1, lines

                    page_times = _timed(page, repeats)
                    csv_times = _timed(export, repeats)
                server = db.engine.url.render_as_string(hide_password=True)
                with db.engine.connect() as c:
                    version = c.exec_driver_sql("SHOW server_version").scalar()
            finally:
                db.close()
    finally:
        drop()

    pg, cs = statistics.median(page_times) * 1000, statistics.median(csv_times)
    print(f"# clinic database: python {platform.python_version()} on {platform.machine()}, PostgreSQL {version} "
          f"at {server.rsplit('/', 1)[0]}/..., median of {repeats} runs; "
          f"seeded {args.trials} trials in {seeded_s:.1f} s")
    print(f"patient page, {args.page_trials} trials in {-(-args.page_trials // 10)} visits: median {pg:.1f} ms "
          f"(min {min(page_times) * 1000:.1f}, max {max(page_times) * 1000:.1f}); target {PAGE_TARGET_MS:.0f} ms: "
          + ("met" if pg < PAGE_TARGET_MS else "MISSED"))
    print(f"scores.csv, {args.trials} trials: median {cs:.3f} s (min {min(csv_times):.3f}, max {max(csv_times):.3f}); "
          f"{cs / args.trials * 1e6:.0f} us per trial; target {CSV_TARGET_S:g} s: "
          + ("met" if cs < CSV_TARGET_S else "MISSED"))
    return 0 if pg < PAGE_TARGET_MS and cs < CSV_TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
