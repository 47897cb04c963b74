"""Finding 8: a damaged database gives one line with a restore hint; an existing file is never made anew."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from station.storage.db import DATABASE_FILE, StorageError, open_database
from tests.reliability.served import free_port
from tests.webui.helpers import add_user, seed_trials


def _run(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    return subprocess.run([sys.executable, "-m", "station.commands.cli", *args], capture_output=True, text=True,
                          timeout=timeout_s, env=env)


def _station_db(tmp_path: Path, n_trials: int = 300) -> Path:
    data = tmp_path / "data"
    db = open_database(data_dir=data)
    try:
        add_user(db)
        seed_trials(db, "P-001", n_trials)
    finally:
        db.close()
    return data / DATABASE_FILE


def _damage(path: Path, how: str) -> None:
    size = path.stat().st_size
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        with path.open("r+b") as f:
            f.truncate(size // 3)
    elif how == "garbage":
        path.write_bytes(os.urandom(size))
    elif how == "middle":
        with path.open("r+b") as f:  # pages in the middle overwritten; the header and the schema intact
            f.seek(size // 2)
            f.write(os.urandom(8192))


@pytest.mark.parametrize("how", ["empty", "truncated", "garbage"])
def test_user_list_on_a_damaged_database_says_so_in_one_line(tmp_path, how):
    path = _station_db(tmp_path)
    _damage(path, how)
    size = path.stat().st_size
    done = _run("--data-dir", str(path.parent), "user", "list")
    print(f"\n{how}: {done.stderr.strip()}")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "balance-station restore" in done.stderr
    assert path.stat().st_size == size, "the damaged file must be left as it is"


def test_a_zero_byte_database_is_never_made_a_new_one(tmp_path):
    path = tmp_path / "data" / DATABASE_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    with pytest.raises(StorageError, match="empty"):
        open_database(data_dir=path.parent)
    assert path.stat().st_size == 0


def test_the_integrity_check_finds_damage_in_the_middle(tmp_path):
    path = _station_db(tmp_path, n_trials=2000)
    _damage(path, "middle")
    with pytest.raises(StorageError, match="damaged|cannot be read") as info:
        open_database(data_dir=path.parent, check_integrity=True)
    assert "\n" not in str(info.value)


def test_the_station_refuses_to_start_on_a_damaged_database(tmp_path):
    path = _station_db(tmp_path, n_trials=2000)
    _damage(path, "middle")
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    proc = subprocess.Popen([sys.executable, "-m", "station.commands.cli", "--data-dir", str(path.parent), "--plate",
                             "simulated", "--no-screen", "--port", str(free_port())], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        code = proc.wait(40)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    err = proc.stderr.read()
    print(f"\n{err.strip()}")
    assert code != 0
    assert "Traceback" not in err and "damaged" in err and "balance-station restore" in err


def test_a_healthy_database_passes_the_check(tmp_path):
    path = _station_db(tmp_path)
    t0 = time.monotonic()
    open_database(data_dir=path.parent, check_integrity=True).close()
    assert time.monotonic() - t0 < 5
