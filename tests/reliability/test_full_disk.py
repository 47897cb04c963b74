"""Finding 6: a full disk is said before a test, refused at its start, and a trial that could not be stored says so."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import station.storage.disk as trials_mod
from tests.reliability.served import Client, served_app
from tests.webui.helpers import add_patient


def test_a_trial_is_not_started_without_the_free_space_to_store_it(tmp_path, monkeypatch):
    from station.core.geometry import PlateGeometry
    from station.storage.db import StorageError, open_database
    from station.storage.trials import TrialWriter
    from station.storage.visits import open_visit

    db = open_database(data_dir=tmp_path / "data")
    try:
        add_patient(db, "P-001")
        with db.sessions() as s:
            visit = open_visit(s, "P-001")
        monkeypatch.setattr(trials_mod, "free_bytes", lambda folder: 12_000_000)
        try:
            TrialWriter.start(db.sessions, session_id=visit.id, protocol="single-leg", stance_side="left",
                              sample_rate_hz=80, geometry=PlateGeometry())
        except StorageError as exc:
            message = str(exc)
        else:
            message = ""
        from sqlalchemy import text

        with db.engine.connect() as c:
            n_trials = c.execute(text("SELECT COUNT(*) FROM trials")).scalar()
    finally:
        db.close()
    assert "not enough free disk space" in message and "12 MB free" in message and "\n" not in message
    assert n_trials == 0


def test_the_status_page_and_api_warn_of_a_nearly_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(trials_mod, "free_bytes", lambda folder: 300_000_000)

    with served_app(tmp_path) as (app, db, port):
        c = Client(port)
        assert c.login().status == 200
        page = c.get("/").body.decode()
    assert "The disk is nearly full: 300 MB free" in page


_FULL_DISK_SCRIPT = textwrap.dedent('''
    import resource, signal, sys
    from pathlib import Path
    from station.core.geometry import PlateGeometry
    from station.storage.db import StorageError, open_database
    from station.storage.patients import create_patient
    from station.storage.trials import TrialWriter, get_trial, trial_summary
    from station.storage.visits import open_visit

    data = Path(sys.argv[1])
    db = open_database(data_dir=data)
    with db.sessions() as s:
        create_patient(s, "P-001")
        visit = open_visit(s, "P-001")
    w = TrialWriter.start(db.sessions, session_id=visit.id, protocol="single-leg", stance_side="left",
                          sample_rate_hz=80, geometry=PlateGeometry(), flush_period_s=0.01)
    w.add_many((i / 80, [170.0, 171.0, 172.0, 173.0]) for i in range(400))
    w.flush()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the kernel's "file too large" comes back as EFBIG
    biggest = max(f.stat().st_size for f in data.iterdir())
    resource.setrlimit(resource.RLIMIT_FSIZE, (biggest + 4096, resource.RLIM_INFINITY))
    errors = 0
    for i in range(400, 400 + 80 * 30):  # 30 s more of frames, bounded
        try:
            w.add((i / 80, [170.0, 171.0, 172.0, 173.0]))
        except StorageError:
            errors += 1
    try:
        w.finish("complete", {"hold_time_s": 30.0})
        outcome = "finished"
    except StorageError as exc:
        outcome = "not stored: " + str(exc)
    with db.sessions() as s:
        summary = trial_summary(get_trial(s, w.trial_id))
    print(errors > 0, outcome.splitlines()[0][:80])
    print(summary["state"], "|", summary["state_detail"])
''')


def test_a_trial_that_could_not_be_stored_is_shown_as_such_with_its_cause(tmp_path):
    done = subprocess.run([sys.executable, "-c", _FULL_DISK_SCRIPT, str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=120)
    print(done.stdout, done.stderr[-2000:])
    assert done.returncode == 0, done.stderr[-2000:]
    first, second = done.stdout.strip().splitlines()[-2:]
    assert " not stored: " in first
    state, detail = second.split(" | ", 1)
    assert state == "incomplete"
    assert detail.startswith("could not be stored:") and "disk" in detail and "400 frames" in detail
