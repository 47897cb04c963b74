"""Free disk space where the database lives: a trial is not started without room to store it whole.
"""

from __future__ import annotations

import resource
import shutil
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from station.storage.errors import StorageError

__all__ = [
    "LOW_DISK_BYTES",
    "MIN_FREE_BYTES",
    "check_free_space",
    "database_folder",
    "disk_warning",
    "free_bytes",
]


#: a trial is not started with less free space than this where the database lives, bytes (a trial takes
#: about 200 kB a minute; the rest is room for the database's journal, the other data and the system)
MIN_FREE_BYTES = 50_000_000
#: below this much free space the station warns on its status page, bytes
LOW_DISK_BYTES = 500_000_000

def free_bytes(folder: Path) -> int:
    """Bytes a file in ``folder`` may still grow by: the free disk space, or less under a file-size limit."""
    free = shutil.disk_usage(folder).free
    try:
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (OSError, ValueError):  # pragma: no cover - no such limit here
        limit = resource.RLIM_INFINITY
    if limit != resource.RLIM_INFINITY:
        largest = max((f.stat().st_size for f in folder.iterdir() if f.name.startswith(("station.db",))), default=0)
        free = min(free, max(0, int(limit) - largest))
    return int(free)


def database_folder(sessions: sessionmaker[Session]) -> Path | None:
    bind = sessions.kw.get("bind")
    url = getattr(bind, "url", None)
    if url is None or url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" \
            or url.database.startswith("file:"):
        return None
    return Path(url.database).parent


def check_free_space(sessions: sessionmaker[Session], *, needed_bytes: int = MIN_FREE_BYTES) -> None:
    """StorageError (one line, how much is free and where) when a trial could not be stored whole."""
    folder = database_folder(sessions)
    if folder is None:
        return
    try:
        free = free_bytes(folder)
    except OSError as exc:
        raise StorageError(f"{folder}: cannot tell the free disk space ({exc.strerror})") from None
    if free < needed_bytes:
        raise StorageError(f"not enough free disk space to store a trial: {free / 1e6:.0f} MB free in {folder}, "
                           f"a trial needs {needed_bytes / 1e6:.0f} MB: free some space first")


def disk_warning(folder: Path, *, low_bytes: int = LOW_DISK_BYTES) -> str:
    """A warning for the status page when the data folder runs short of space; "" when there is enough."""
    try:
        free = free_bytes(Path(folder))
    except OSError as exc:
        return f"Cannot tell the free disk space in {folder} ({exc.strerror})."
    if free < MIN_FREE_BYTES:
        return (f"The disk is full: {free / 1e6:.0f} MB free in {folder}. No test can be stored until space is "
                "freed.")
    if free < low_bytes:
        return f"The disk is nearly full: {free / 1e6:.0f} MB free in {folder}. Free some space soon."
    return ""
