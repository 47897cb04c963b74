"""Backups: `balance-station backup` while trials are written, `restore` after damage, every trial read back."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from station.storage.db import DATABASE_FILE, open_database
from station.storage.trials import trial_recording
from tests.webui.helpers import add_recorded_trial, add_user, seed_trials


def _cli(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "station.commands.cli", *args], capture_output=True, text=True,
                          timeout=timeout_s)


def _every_trial(data: Path) -> dict[int, tuple]:
    from sqlalchemy import select

    from station.storage.models import Trial

    db = open_database(data_dir=data, upgrade=False)
    try:
        out = {}
        with db.sessions() as s:
            for trial in s.scalars(select(Trial).order_by(Trial.id)):
                frames = None
                if trial.n_frames:
                    rec = trial_recording(s, trial.id)
                    frames = (len(rec.t_s), float(rec.forces_n.sum()), float(rec.t_s[-1]))
                out[trial.id] = (trial.state.value if hasattr(trial.state, "value") else trial.state,
                                 repr(trial.metrics), trial.n_frames, frames)
        return out
    finally:
        db.close()


def test_backup_while_writing_then_restore_reads_back_every_trial(tmp_path):
    data = tmp_path / "data"
    db = open_database(data_dir=data)
    add_user(db)
    seed_trials(db, "P-001", 200)
    for i in range(5):
        add_recorded_trial(db, "P-002", n_frames=800 + 80 * i)
    stop = threading.Event()

    def keep_writing():  # the station recording meanwhile (bounded)
        for _ in range(20):
            if stop.is_set():
                return
            add_recorded_trial(db, "P-003", n_frames=160)

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    backup = tmp_path / "backups" / "b1.db"
    try:
        done = _cli("--data-dir", str(data), "backup", str(backup))
    finally:
        stop.set()
        writer.join(60)
        db.close()
    assert done.returncode == 0, done.stderr
    assert "backed up to" in done.stdout and backup.is_file()
    assert "Traceback" not in done.stderr
    in_backup = _every_trial_of_file(backup, tmp_path)
    original = _every_trial(data)
    assert set(in_backup) <= set(original) and len(in_backup) >= 205
    for trial_id, row in in_backup.items():
        if row[0] != "running":
            assert row == original[trial_id]

    # the database is damaged; restore the backup
    (data / DATABASE_FILE).write_bytes(os.urandom(4096))
    assert _cli("--data-dir", str(data), "user", "list").returncode != 0
    done = _cli("--data-dir", str(data), "restore", str(backup))
    assert done.returncode == 0, done.stderr
    assert "restored" in done.stdout and "replaced" in done.stdout
    restored = _every_trial(data)
    assert restored == in_backup
    assert list(data.glob("station-replaced-*.db")), "the damaged file is kept"
    done = _cli("--data-dir", str(data), "user", "list")
    assert done.returncode == 0 and "therapist" in done.stdout


def _every_trial_of_file(path: Path, tmp_path: Path) -> dict[int, tuple]:
    import shutil

    copy = tmp_path / "read-backup"
    copy.mkdir()
    shutil.copy(path, copy / DATABASE_FILE)
    return _every_trial(copy)


def test_backup_never_overwrites_and_restore_refuses_garbage(tmp_path):
    data = tmp_path / "data"
    open_database(data_dir=data).close()
    target = tmp_path / "b.db"
    target.write_text("something precious")
    done = _cli("--data-dir", str(data), "backup", str(target))
    assert done.returncode != 0 and "already exists" in done.stderr and target.read_text() == "something precious"
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(5000))
    done = _cli("--data-dir", str(data), "restore", str(garbage))
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    t0 = time.monotonic()
    done = _cli("--data-dir", str(data), "backup")
    assert done.returncode == 0, done.stderr
    assert list((data / "backups").glob("station-*.db")) and time.monotonic() - t0 < 30
