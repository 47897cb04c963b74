"""The database connection: an engine from a URL, SQLite set up for a station that may lose power, a session factory.

The station keeps its data in SQLite (``sqlite:///<data_dir>/station.db``);
the same code runs on a PostgreSQL URL (``postgresql+psycopg://...``) later,
because everything above this module talks SQLAlchemy, not SQLite.

Every SQLite connection is set up by a ``connect`` event listener:

``PRAGMA journal_mode=WAL``
    Readers (the web page, an export) never block the writer of a running
    trial, and the writer never blocks them. The mode is stored in the file;
    setting it on every connection is harmless and makes sure of it.

``PRAGMA synchronous=FULL``
    In WAL mode, ``NORMAL`` is safe against a crash of the program (a
    committed transaction is in the WAL file, which the OS writes out even
    after a ``kill -9``), but NOT against a power cut: the WAL is synced only
    at checkpoints, so up to a checkpoint's worth of commits (1000 pages,
    minutes of trials) can roll back when the Pi loses power. The station
    promises that a power cut loses at most the last second of a trial, so
    every commit must reach the SD card: ``FULL`` syncs the WAL at each
    commit. The cost is one fsync per commit, and the trial writer commits
    about twice a second: nothing for the Pi.

``PRAGMA foreign_keys=ON``
    SQLite leaves foreign keys off unless asked, per connection.

Transactions: the ``sqlite3`` module of Python 3.11 starts transactions
itself, only before INSERT/UPDATE/DELETE (not before SELECT or DDL), which
breaks transactional schema upgrades and repeatable reads. As SQLAlchemy's
SQLite documentation recommends, the driver's own handling is switched off
(``isolation_level = None``) and SQLAlchemy emits ``BEGIN`` itself, in a
``begin`` listener. A connection given the execution option
``sqlite_begin="IMMEDIATE"`` begins with ``BEGIN IMMEDIATE``: it takes the
write lock at once (waiting up to the busy timeout) instead of failing with
"database is locked" when it first reads and then writes while another
connection has committed. :func:`write_session` does that.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from station.storage import schema
from station.storage.errors import StorageError
from station.storage.stations import touch_station

__all__ = [
    "BUSY_TIMEOUT_S",
    "DATABASE_FILE",
    "POOL_MAX_CONNECTIONS",
    "POOL_TIMEOUT_S",
    "WORKER_THREADS",
    "Database",
    "StorageError",
    "create_db_engine",
    "create_session_factory",
    "default_database_url",
    "finish_opening",
    "session_station_id",
    "RESTORE_HINT",
    "check_sqlite_file",
    "integrity_check",
    "open_database",
    "write_session",
]

#: the database file in the station's data folder
DATABASE_FILE = "station.db"
#: how long a connection to a PostgreSQL server may take before the server counts as unreachable, in s
CONNECT_TIMEOUT_S = 5
#: how long a connection waits for another one's write lock before giving up, in s
BUSY_TIMEOUT_S = 10.0
#: connections a SQLite file's pool may hand out at once: at least the web server's worker threads
#: (:data:`WORKER_THREADS`) plus the station's own (trial writer, screen, runner), so a request
#: that got a worker thread never waits for a connection
POOL_MAX_CONNECTIONS = 48
#: the web server's worker threads (anyio's default thread limiter: 40); :mod:`webui.app` sets it
WORKER_THREADS = 40
#: how long a request waits for a pooled connection before the database counts as busy (503), in s
POOL_TIMEOUT_S = 10.0
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
)
_BEGIN_MODES = ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")

log = logging.getLogger(__name__)


def default_database_url(data_dir: str | Path) -> str:
    """``sqlite:///<data_dir>/station.db`` (the path made absolute)."""
    path = Path(data_dir).expanduser().resolve() / DATABASE_FILE
    return URL.create("sqlite", database=str(path)).render_as_string()


def _json_serializer(value: Any) -> str:
    # NaN and infinities are not JSON (PostgreSQL refuses them): the repository
    # functions turn them into null before they get here; anything left is a bug.
    return json.dumps(value, allow_nan=False)


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_db_engine(url: str | URL, *, echo: bool = False) -> Engine:
    """An engine for ``url``; for SQLite, with WAL, FULL sync, foreign keys and SQLAlchemy-emitted BEGIN.

    A SQLite file's folder is created when missing; its pool hands out up to
    :data:`POOL_MAX_CONNECTIONS` connections (more than the web server's worker
    threads) and a request waits at most :data:`POOL_TIMEOUT_S` for one. ``sqlite://`` (in memory)
    shares one connection between threads (for quick experiments; the station
    always uses a file).
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(f"{url}: not a database URL (expected e.g. sqlite:////path/station.db)") from None
    kwargs: dict[str, Any] = {"echo": echo, "json_serializer": _json_serializer}
    if _is_sqlite(parsed):
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_S}
        path = _sqlite_file(parsed)
        if path is None:
            kwargs["poolclass"] = StaticPool
            kwargs["connect_args"]["check_same_thread"] = False
        else:
            kwargs.update(pool_size=5, max_overflow=POOL_MAX_CONNECTIONS - 5, pool_timeout=POOL_TIMEOUT_S)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"{path.parent}: cannot create the data folder ({exc.strerror})") from None
    elif parsed.get_backend_name() == "postgresql":
        # a clinic server that does not answer is said within seconds (the station then records into its spool,
        # station.storage.spool), and a connection the outage broke is found before it is used again
        kwargs["pool_pre_ping"] = True
        if "connect_timeout" not in parsed.query:
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    engine = create_engine(parsed, **kwargs)
    if _is_sqlite(parsed):
        _set_up_sqlite(engine)
    return engine


def _set_up_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN (below), not the driver
        cursor = dbapi_connection.cursor()
        try:
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = str(connection.get_execution_options().get("sqlite_begin", "DEFERRED")).upper()
        if mode not in _BEGIN_MODES:
            raise ValueError(f"sqlite_begin must be one of {_BEGIN_MODES}, got {mode!r}")
        connection.exec_driver_sql("BEGIN" if mode == "DEFERRED" else f"BEGIN {mode}")


def create_session_factory(engine: Engine, *, station_id: str | None = None) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit (``expire_on_commit=False``).

    ``station_id``: the station using them (kept in the factory's ``info``, see :func:`session_station_id`):
    the trials it starts carry it.
    """
    return sessionmaker(bind=engine, expire_on_commit=False, info={"station_id": station_id})


def session_station_id(sessions: sessionmaker[Session]) -> str | None:
    """The station id the session factory was made for (:func:`create_session_factory`), or None."""
    info = sessions.kw.get("info") or {}
    value = info.get("station_id")
    return str(value) if value else None


@contextmanager
def write_session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one write transaction: committed at the end of the block, rolled back on an exception.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE``, so it holds the
    write lock from its first statement (waiting up to :data:`BUSY_TIMEOUT_S`
    for another writer) and cannot fail half-way because another connection
    wrote since it read. Keep these transactions short.
    """
    with sessions.begin() as session:
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        yield session


@dataclass(eq=False)
class Database:
    """An open database: the engine, its session factory and where it lives."""

    engine: Engine
    sessions: sessionmaker[Session]
    #: opened while the server did not answer (``open_database(..., allow_unreachable=True)``): its schema is
    #: checked (created, upgraded) when it answers, before anything is written (:func:`finish_opening`)
    schema_pending: bool = False

    @property
    def url(self) -> URL:
        return self.engine.url

    @property
    def station_id(self) -> str | None:
        """The station this database was opened for (its trials carry it), or None."""
        return session_station_id(self.sessions)

    @property
    def is_sqlite(self) -> bool:
        return _is_sqlite(self.engine.url)

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None (in memory, or another database)."""
        return _sqlite_file(self.engine.url) if self.is_sqlite else None

    @property
    def name(self) -> str:
        """The database for messages: the file, or the URL without its password."""
        path = self.path
        return str(path) if path is not None else self.engine.url.render_as_string(hide_password=True)

    def session(self) -> Session:
        return self.sessions()

    def write(self) -> Any:
        """``with db.write() as session:`` one short write transaction (:func:`write_session`)."""
        return write_session(self.sessions)

    def close(self) -> None:
        """Close every pooled connection (SQLite then checkpoints the WAL into the file)."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_database(url: str | URL | None = None, *, data_dir: str | Path | None = None, echo: bool = False,
                  upgrade: bool = True, check_integrity: bool = False, station_id: str | None = None,
                  allow_unreachable: bool = False) -> Database:
    """Open the station's database, creating it or upgrading its schema as needed.

    Parameters
    ----------
    url : str, optional
        A SQLAlchemy database URL. Default: ``sqlite:///<data_dir>/station.db``.
    data_dir : path, optional
        The station's data folder (``StationSettings.data_dir``), for the default URL.
    upgrade : bool
        Create the tables of a new database and bring an older one up to this
        program's schema version (:func:`station.storage.schema.ensure_schema`,
        which backs the file up first). With False, the database is opened as
        it is and :func:`~station.storage.schema.check_schema` only verifies
        its version.
    check_integrity : bool
        Run SQLite's quick check first (:func:`integrity_check`; the station
        does at start).
    station_id : str, optional
        The station using the database (``StationSettings.station_id``): every trial
        started through it records it (several stations may share one clinic database),
        and (with ``upgrade``) its ``stations`` row says it started now, running this program.
    allow_unreachable : bool
        A database server (not a SQLite file) that does not answer now is opened all the same, with
        ``schema_pending`` set: the station then records into its spool (:mod:`station.storage.spool`),
        whose uploader calls :func:`finish_opening` when the server answers.

    Raises
    ------
    StorageError
        Bad URL, unusable folder, a database this program cannot use (a newer
        schema, not a station database), a failed upgrade; a damaged file, an
        empty (0-byte) one or one that is not SQLite at all, in one line with
        :data:`RESTORE_HINT`: an existing file is never made a new database.

    Notes
    -----
    This does not mark interrupted trials: the station calls
    :func:`station.storage.trials.recover_interrupted` once at start-up
    (other commands may run while the station records a trial).
    """
    from sqlalchemy.exc import DatabaseError, OperationalError

    if url is None:
        if data_dir is None:
            raise ValueError("open_database needs a url or a data_dir")
        url = default_database_url(data_dir)
    engine = create_db_engine(url, echo=echo)
    db = Database(engine=engine, sessions=create_session_factory(engine, station_id=station_id))
    try:
        if db.path is not None:
            check_sqlite_file(db.path)
        if check_integrity and db.is_sqlite:
            integrity_check(db)
        if upgrade:
            schema.ensure_schema(engine)
            if station_id:  # the station page lists every station using the database
                _note_station(db, station_id)
        else:
            schema.check_schema(engine)
    except DatabaseError as exc:
        if allow_unreachable and not db.is_sqlite and isinstance(exc, OperationalError) and not database_reachable(db):
            log.warning("%s does not answer (%s): opened without it", db.name, _first_line(exc))
            db.schema_pending = True
            return db
        engine.dispose()
        raise StorageError(f"{db.name}: the database cannot be read ({_first_line(exc)}): {RESTORE_HINT}") from None
    except Exception:
        engine.dispose()
        raise
    return db


def database_reachable(db: Database) -> bool:
    """True when the database answers a ``SELECT 1`` now."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        return False


def finish_opening(db: Database) -> None:
    """For a database opened while its server did not answer: create or upgrade its schema now (it answers)."""
    if not db.schema_pending:
        return
    schema.ensure_schema(db.engine)
    if db.station_id:
        _note_station(db, db.station_id)
    db.schema_pending = False


def _note_station(db: Database, station_id: str) -> None:
    """The station's ``stations`` row, best effort: a database that takes no write now (a full disk, a read-only
    account) still opens, as before; its trials then say so themselves."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with write_session(db.sessions) as session:
            touch_station(session, station_id)
    except SQLAlchemyError as exc:
        log.warning("%s: cannot note station %s's start-up (%s)", db.name, station_id, _first_line(exc))


#: what to do about a damaged database, at the end of its one-line message
RESTORE_HINT = ("restore the newest backup with 'balance-station restore BACKUP_FILE', or move the file away "
                "to start with an empty database; it was left as it is")
_SQLITE_HEADER = b"SQLite format 3\x00"


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return (text.splitlines() or ["unknown error"])[0][:200]


def check_sqlite_file(path: Path) -> None:
    """StorageError (one line, with the restore hint) for an existing file that is not a SQLite database.

    A 0-byte file is refused too: making it a new empty database would hide the loss of every account,
    patient and trial; a missing file is fine (a new station).
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(f"{path}: cannot read the database ({exc.strerror})") from None
    if size == 0:
        raise StorageError(f"{path}: the database file is empty (0 bytes): {RESTORE_HINT}")
    try:
        with path.open("rb") as f:
            header = f.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise StorageError(f"{path}: cannot read the database ({exc.strerror})") from None
    if header != _SQLITE_HEADER:
        raise StorageError(f"{path}: not a SQLite database (damaged, or another file): {RESTORE_HINT}")


def integrity_check(db: Database) -> None:
    """SQLite's ``PRAGMA quick_check`` (every page and index, without cross-checking index content).

    StorageError, one line with the restore hint, when it finds damage. About a second per 100 MB on a Pi.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import DatabaseError

    try:
        with db.engine.connect() as connection:
            rows = [str(r[0]) for r in connection.execute(text("PRAGMA quick_check(5)"))]
    except DatabaseError as exc:
        raise StorageError(f"{db.name}: the database is damaged ({_first_line(exc)}): {RESTORE_HINT}") from None
    if rows != ["ok"]:
        first = " ".join(rows[0].split())[:160] if rows else "no answer"
        raise StorageError(f"{db.name}: the database is damaged ({first}): {RESTORE_HINT}")

