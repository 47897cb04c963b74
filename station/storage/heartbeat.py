"""A running station's heartbeat: its ``stations`` row says it is alive, and where its web page answers.

Without it, a station's "last contact" is its last write (its start-up, a trial), so an idle station
looks gone after a quiet morning. The heartbeat writes one small upsert (:func:`touch_station`) every
:data:`~station.storage.stations.HEARTBEAT_S` (30 s) from a daemon thread: on SQLite one short write
transaction (one fsync) a half-minute, nothing beside a trial's frames; on PostgreSQL one round trip.
A database that refuses the write (busy, down, read-only) costs one warning, not the station: the next
beat tries again, and the warning is not repeated until a beat succeeded in between.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import SQLAlchemyError

from station.storage.db import Database, write_session
from station.storage.errors import StorageError
from station.storage.stations import HEARTBEAT_S, touch_station

__all__ = ["Heartbeat"]

log = logging.getLogger(__name__)


class Heartbeat:
    """Notes ``station_id``'s contact (and ``web_url``) now, then every ``every_s`` until :meth:`stop`."""

    def __init__(self, db: Database, station_id: str, *, web_url: str | None = None,
                 every_s: float = HEARTBEAT_S) -> None:
        self.db = db
        self.station_id = station_id
        self.web_url = web_url
        self.every_s = float(every_s)
        self.beats = 0
        self.failures = 0
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def beat(self) -> bool:
        """One contact note now; False (and one warning per run of failures) when the database refused it."""
        try:
            with write_session(self.db.sessions) as session:
                touch_station(session, self.station_id, web_url=self.web_url)
        except (SQLAlchemyError, StorageError) as exc:
            self.failures += 1
            if not self._failing:
                log.warning("%s: cannot note station %s's contact (%s); trying again every %g s", self.db.name,
                            self.station_id, (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200],
                            self.every_s)
            self._failing = True
            return False
        self.beats += 1
        self._failing = False
        return True

    def start(self) -> Heartbeat:
        """The first beat now (on the caller's thread: the station page is right at once), then the thread."""
        self.beat()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.beat()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
