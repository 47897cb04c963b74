"""``balance-station backup`` and ``balance-station restore``: a copy of the database, taken while the station runs.

Backup
    SQLite: the online backup API (:meth:`sqlite3.Connection.backup`) copies
    the database page by page into a new file while the station keeps
    recording (a consistent snapshot, WAL content included); the copy is
    checked (``PRAGMA quick_check``), synced to disk and only then given its
    name, so a backup file that exists is a whole one. Default name:
    ``<data_dir>/backups/station-<UTC time>.db``. PostgreSQL: ``pg_dump
    --format=custom`` of the URL.

Restore
    SQLite only (for PostgreSQL, ``pg_restore``). Stop the station first. The
    backup is checked (SQLite, quick check, a balance-station schema this
    program can read), copied beside the database, synced, and moved into its
    place in one rename; the database it replaces (damaged or not) is kept as
    ``station-replaced-<UTC time>.db`` with its WAL, never deleted.

Both say in one line what they did, and refuse in one line (:class:`StorageError`).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from station.storage.db import DATABASE_FILE, StorageError, check_sqlite_file, open_database

__all__ = ["BackupReport", "backup_database", "restore_database"]


@dataclass(frozen=True)
class BackupReport:
    """What a backup or a restore did: the file written, its size, and how many trials and patients it holds."""

    path: Path
    size_bytes: int
    trials: int | None
    patients: int | None
    replaced: Path | None = None


def _stamp(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _counts(path: Path) -> tuple[int | None, int | None]:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as c:
            return (int(c.execute("SELECT COUNT(*) FROM trials").fetchone()[0]),
                    int(c.execute("SELECT COUNT(*) FROM patients").fetchone()[0]))
    except sqlite3.Error:
        return None, None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _quick_check(path: Path) -> None:
    check_sqlite_file(path)
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as c:
            rows = [str(r[0]) for r in c.execute("PRAGMA quick_check(5)")]
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot be read ({exc})") from None
    if rows != ["ok"]:
        raise StorageError(f"{path}: damaged ({' '.join(rows[0].split())[:160] if rows else 'no answer'})")


def backup_database(url: str | None, *, data_dir: Path | None, target: Path | None = None,
                    now: dt.datetime | None = None) -> BackupReport:
    """Copy the station's database to ``target`` (default ``<data_dir>/backups/station-<time>.db``).

    Raises
    ------
    StorageError
        The database cannot be opened, the target exists or cannot be written,
        the copy fails its check, ``pg_dump`` is missing or fails.
    """
    db = open_database(url, data_dir=data_dir, upgrade=False)
    try:
        if target is None:
            if data_dir is None:
                raise StorageError("backup: give the backup file's name (no data folder to put it in)")
            suffix = ".db" if db.is_sqlite else ".dump"
            target = Path(data_dir).expanduser() / "backups" / f"station-{_stamp(now)}{suffix}"
        target = Path(target).expanduser().resolve()
        if target.exists():
            raise StorageError(f"{target}: already exists; a backup never overwrites a file")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"{target.parent}: cannot create the folder ({exc.strerror})") from None
        if not db.is_sqlite:
            return _pg_dump(db, target)
        if db.path is None:
            raise StorageError(f"{db.name}: an in-memory database has nothing to back up")
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        raw = db.engine.raw_connection()
        try:
            dst = sqlite3.connect(str(partial))
            try:
                # 256 pages a step: the station's trial writer gets the database between the steps
                raw.driver_connection.backup(dst, pages=256)  # type: ignore[union-attr]
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            finally:
                dst.close()
        except sqlite3.Error as exc:
            partial.unlink(missing_ok=True)
            raise StorageError(f"{target}: the backup failed ({exc})") from None
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise StorageError(f"{target}: cannot write the backup ({exc.strerror})") from None
        finally:
            raw.close()
        try:
            _quick_check(partial)
            _fsync(partial)
            os.replace(partial, target)
            _fsync(target.parent)
        except (StorageError, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise StorageError(f"{target}: the backup could not be completed ({exc})") from None
    finally:
        db.close()
    trials, patients = _counts(target)
    return BackupReport(path=target, size_bytes=target.stat().st_size, trials=trials, patients=patients)


def _pg_dump(db: object, target: Path) -> BackupReport:
    exe = shutil.which("pg_dump")
    if exe is None:
        raise StorageError("backup of a PostgreSQL database needs pg_dump (Debian: apt-get install postgresql-client)")
    url = db.engine.url.set(drivername="postgresql")  # type: ignore[attr-defined]
    done = subprocess.run([exe, "--format=custom", f"--file={target}", url.render_as_string(hide_password=False)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        target.unlink(missing_ok=True)
        line = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise StorageError(f"pg_dump: {line}")
    return BackupReport(path=target, size_bytes=target.stat().st_size, trials=None, patients=None)


def _station_running(path: Path) -> bool:
    """True when another program holds the database open for writing (the station)."""
    if not path.exists():
        return False
    try:
        c = sqlite3.connect(str(path), timeout=0.5, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        c.execute("BEGIN EXCLUSIVE")
        c.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc) or "busy" in str(exc)
    except sqlite3.Error:
        return False
    finally:
        c.close()
    return False


def restore_database(source: Path, *, url: str | None, data_dir: Path | None,
                     now: dt.datetime | None = None) -> BackupReport:
    """Put the backup ``source`` in place of the station's SQLite database (kept as ``station-replaced-<time>.db``).

    Raises
    ------
    StorageError
        Not SQLite, a damaged or foreign backup, the station still running, a file that cannot be written.
    """
    source = Path(source).expanduser().resolve()
    if not source.is_file():
        raise StorageError(f"{source}: no such backup file")
    if url is not None and not url.startswith("sqlite"):
        raise StorageError("restore handles the station's SQLite file; for PostgreSQL use pg_restore")
    if url is not None:
        from sqlalchemy.engine import make_url

        database = make_url(url).database
        if not database or database == ":memory:":
            raise StorageError(f"{url}: not a database file")
        path = Path(database)
    elif data_dir is not None:
        path = Path(data_dir).expanduser().resolve() / DATABASE_FILE
    else:
        raise StorageError("restore: no database to restore into (give --data-dir)")
    if source == path.resolve():
        raise StorageError(f"{source}: that is the station's database itself")
    _quick_check(source)
    from station.storage.schema import latest_version

    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as c:
            version = c.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
    except sqlite3.Error:
        version = None
    if version is None:
        raise StorageError(f"{source}: not a balance-station database (no schema version)")
    if int(version) > latest_version():
        raise StorageError(f"{source}: schema version {version} is newer than this program's: update the software")
    if _station_running(path):
        raise StorageError(f"{path}: the station is running (the database is in use): stop it first")
    path.parent.mkdir(parents=True, exist_ok=True)
    incoming = path.with_name(path.name + ".restoring")
    incoming.unlink(missing_ok=True)
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(str(incoming)) as dst:
            src.backup(dst)
        _fsync(incoming)
    except (sqlite3.Error, OSError) as exc:
        incoming.unlink(missing_ok=True)
        raise StorageError(f"{path}: cannot write the restored database ({exc})") from None
    replaced = None
    stamp = _stamp(now)
    try:
        if path.exists():
            replaced = path.with_name(f"{path.stem}-replaced-{stamp}{path.suffix or '.db'}")
            os.replace(path, replaced)
            for extra in ("-wal", "-shm"):
                side = path.with_name(path.name + extra)
                if side.exists():
                    os.replace(side, replaced.with_name(replaced.name + extra))
        os.replace(incoming, path)
        _fsync(path.parent)
    except OSError as exc:
        raise StorageError(f"{path}: cannot put the restored database in place ({exc.strerror})") from None
    db = open_database(f"sqlite:///{path}", check_integrity=True)  # brings an older backup up to this schema
    db.close()
    trials, patients = _counts(path)
    return BackupReport(path=path, size_bytes=path.stat().st_size, trials=trials, patients=patients,
                        replaced=replaced)
