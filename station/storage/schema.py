"""Schema versions: create a new database, upgrade an older one, never lose data.

The ``schema_version`` table has one row per version the database was created
at or upgraded to; the highest is the database's version. This program's
version is :func:`latest_version`: version 1 (:data:`BASE_VERSION`, the
tables of :mod:`station.storage.models` as first released) plus one per step
in :data:`UPGRADES`.

Opening a database (:func:`ensure_schema`):

- no tables at all: the current models are created and the latest version recorded;
- the latest version: nothing to do;
- older: the SQLite file is first copied (``station-v1-backup-<time>.db``
  beside it, with SQLite's online backup, WAL content included); then every
  missing step runs, in order, in ONE transaction (SQLite and PostgreSQL both
  roll DDL back), each recording its version. Before the commit, every table
  that existed before must still exist (or be declared renamed by a step) with
  at least as many rows, and (SQLite) ``PRAGMA foreign_key_check`` must find
  nothing; otherwise, or when a step fails, everything is rolled back and the
  database stays at its old version. On SQLite, foreign keys are off during
  the steps, as SQLite's procedure for rebuilding a table requires (with them
  on, dropping ``trials`` to rebuild it would cascade to its frame blocks);
- newer than this program: refused, untouched ("update the software");
- tables but no ``schema_version``: refused, untouched (not a station database).

Writing an upgrade step: append ``Upgrade(version=2, description=..., apply=fn)``
to :data:`UPGRADES` and change the models to match. ``fn(connection)`` runs
SQL on the open transaction (``connection.exec_driver_sql("ALTER TABLE ...")``);
add columns with defaults, copy into rebuilt tables, never drop what is not
copied. The models always describe the latest version: a new database is
created from them directly.

Versions:

1. patients, sessions (visits), trials, frame_blocks, schema_version;
2. ``users``, ``web_sessions``, ``audit_log`` (the web page's accounts, logins
   and audit trail) and the nullable JSON column ``patients.programme``;
3. ``trials.station_id`` (nullable: which station recorded the trial; null for
   trials recorded before, and for trials written by an older program still
   running on the same clinic database) and its index;
4. ``stations``: each station using the database (its id), its software
   version, and when it was first and last heard of;
5. ``stations.web_url`` (nullable): where the station's web page and API
   answer, so that ``balance-station serve`` can start a test on it;
6. the nullable, unique ``upload_key`` of ``patients``, ``trials`` and
   ``frame_blocks`` (a client-generated key, so that what a station recorded
   while the database was unreachable is uploaded once) and
   ``trial_id_reservations`` (trial ids handed to each station for its offline
   trials): :mod:`station.storage.spool`.

Several stations on one PostgreSQL database: the upgrade (and the creation of
a new database) runs under ``pg_advisory_xact_lock`` (:data:`SCHEMA_LOCK_KEY`),
so when two stations start at once one upgrades and the other waits, then
finds the database current and does nothing. A station whose program is older
than the database's schema refuses to start, in one line ("update the
software"), and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    inspect,
    select,
    text,
)

from station.storage.errors import StorageError
from station.storage.models import (
    NAMING_CONVENTION,
    Base,
    JSONData,
    SchemaVersion,
    UTCDateTime,
    utc_now,
)

__all__ = [
    "BASE_VERSION",
    "SCHEMA_LOCK_KEY",
    "UPGRADES",
    "SchemaError",
    "SchemaReport",
    "Upgrade",
    "backup_sqlite",
    "check_schema",
    "current_version",
    "ensure_schema",
    "latest_version",
]

log = logging.getLogger(__name__)

BASE_VERSION = 1
VERSION_TABLE = SchemaVersion.__tablename__
#: the PostgreSQL advisory lock held by the transaction that creates or upgrades the schema
#: (an arbitrary constant: the ASCII of "balance" and "S", so another program's locks are unlikely to collide)
SCHEMA_LOCK_KEY = 0x62616C616E636553


class SchemaError(StorageError):
    """The database's schema cannot be used or upgraded; the message says which database and why."""


@dataclass(frozen=True)
class Upgrade:
    """One step from version ``version - 1`` to ``version``.

    ``apply`` gets the connection of the upgrade transaction. ``renamed_tables``
    maps old table names to new ones, for the no-data-lost check.
    """

    version: int
    description: str
    apply: Callable[[Connection], None]
    renamed_tables: Mapping[str, str] = field(default_factory=dict)


# -- version 2: web accounts, sessions, audit log; patients.programme ---------------------------
#
# The step's tables are frozen here as they were at version 2 (a later version changes
# them with its own step), on their own MetaData with the models' naming convention, so
# the DDL is right on SQLite and PostgreSQL alike.

_V2 = MetaData(naming_convention=NAMING_CONVENTION)
_V2_USERS = Table(
    "users", _V2,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("failed_logins", Integer, nullable=False),
    Column("locked_until", UTCDateTime()),
    Column("last_login_at", UTCDateTime()),
    Column("password_changed_at", UTCDateTime()),
)
Index("uq_users_username_lower", func.lower(_V2_USERS.c.username), unique=True)
Table(
    "web_sessions", _V2,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("client", String(64), nullable=False),
)
Table(
    "audit_log", _V2,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("username", String(64), nullable=False),
    Column("client", String(64), nullable=False),
    Column("action", String(40), nullable=False, index=True),
    Column("detail", Text, nullable=False),
)


def _v2_web_accounts(connection: Connection) -> None:
    """Add ``users``, ``web_sessions``, ``audit_log`` and the nullable JSON column ``patients.programme``."""
    _V2.create_all(connection, checkfirst=False)
    json_type = JSONData.compile(dialect=connection.dialect)
    connection.exec_driver_sql(f"ALTER TABLE patients ADD COLUMN programme {json_type}")


def _v3_trial_station(connection: Connection) -> None:
    """Add the nullable ``trials.station_id`` (the station that recorded the trial) and its index."""
    connection.exec_driver_sql("ALTER TABLE trials ADD COLUMN station_id VARCHAR(64)")
    connection.exec_driver_sql("CREATE INDEX ix_trials_station_id ON trials (station_id)")


_V4 = MetaData(naming_convention=NAMING_CONVENTION)
Table(
    "stations", _V4,
    Column("station_id", String(64), primary_key=True),
    Column("software_version", String(40), nullable=False),
    Column("first_seen_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
)


def _v4_stations(connection: Connection) -> None:
    """Add ``stations``: every station using the database, its software version and when it was last heard of."""
    _V4.create_all(connection, checkfirst=False)


def _v5_station_web_url(connection: Connection) -> None:
    """Add the nullable ``stations.web_url``: where the station's web page and API answer."""
    connection.exec_driver_sql("ALTER TABLE stations ADD COLUMN web_url VARCHAR(200)")


_V6 = MetaData(naming_convention=NAMING_CONVENTION)
Table(
    "trial_id_reservations", _V6,
    Column("trial_id", Integer, primary_key=True, autoincrement=False),
    Column("station_id", String(64), nullable=False, index=True),
    Column("reserved_at", UTCDateTime(), nullable=False),
)


def _v6_upload_keys(connection: Connection) -> None:
    """Add the nullable, unique ``upload_key`` of patients, trials and frame blocks (client-generated by a
    station's spool, so that an upload after an outage inserts each once) and ``trial_id_reservations``."""
    for table in ("patients", "trials", "frame_blocks"):
        connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN upload_key VARCHAR(36)")
        connection.exec_driver_sql(f"CREATE UNIQUE INDEX ix_{table}_upload_key ON {table} (upload_key)")
    _V6.create_all(connection, checkfirst=False)


#: the upgrade steps after version 1, in order
UPGRADES: tuple[Upgrade, ...] = (
    Upgrade(2, "web accounts, sessions and audit log; patients get a drill programme", _v2_web_accounts),
    Upgrade(3, "trials say which station recorded them", _v3_trial_station),
    Upgrade(4, "the stations using the database", _v4_stations),
    Upgrade(5, "stations say where their web page answers", _v5_station_web_url),
    Upgrade(6, "upload keys and reserved trial ids: a station records while the database is unreachable",
            _v6_upload_keys),
)


@dataclass
class SchemaReport:
    """What :func:`ensure_schema` did."""

    version: int
    created: bool = False
    from_version: int | None = None
    applied: list[str] = field(default_factory=list)
    backup_path: Path | None = None

    @property
    def upgraded(self) -> bool:
        return bool(self.applied)


def latest_version(upgrades: Sequence[Upgrade] = UPGRADES) -> int:
    _check_upgrades(upgrades)
    return BASE_VERSION + len(upgrades)


def _check_upgrades(upgrades: Sequence[Upgrade]) -> None:
    expected = list(range(BASE_VERSION + 1, BASE_VERSION + 1 + len(upgrades)))
    got = [u.version for u in upgrades]
    if got != expected:
        raise ValueError(f"upgrade steps must be versions {expected} in order, got {got}")


def _db_name(engine: Engine) -> str:
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return url.render_as_string(hide_password=True)


def current_version(connection: Connection) -> int | None:
    """The database's schema version; None when it has no ``schema_version`` table."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    version = connection.scalar(select(SchemaVersion.version).order_by(SchemaVersion.version.desc()).limit(1))
    return int(version) if version is not None else None


def _read_state(connection: Connection, name: str, latest: int) -> tuple[int | None, list[str]]:
    """(version, tables); raises SchemaError for a database this program must not touch."""
    tables = inspect(connection).get_table_names()
    version = current_version(connection)
    if version is None:
        if tables:
            raise SchemaError(
                f"{name}: has tables ({', '.join(sorted(tables)[:5])}) but no {VERSION_TABLE} table: "
                "not a balance-station database; it was left untouched"
            )
        return None, tables
    if version > latest:
        raise SchemaError(
            f"{name}: the database is at schema version {version}, newer than this program's {latest}: "
            "update the software (the database was left untouched)"
        )
    return version, tables


def check_schema(engine: Engine, *, upgrades: Sequence[Upgrade] = UPGRADES) -> int:
    """The database's version, when it is exactly this program's; SchemaError otherwise. Changes nothing."""
    latest = latest_version(upgrades)
    name = _db_name(engine)
    with engine.connect() as connection:
        version, _ = _read_state(connection, name, latest)
    if version is None:
        raise SchemaError(f"{name}: empty database (no balance-station tables)")
    if version < latest:
        raise SchemaError(f"{name}: schema version {version} needs upgrading to {latest}")
    return version


def backup_sqlite(engine: Engine, target: Path) -> Path:
    """Copy the SQLite database to ``target`` with SQLite's online backup (consistent, WAL included)."""
    target = Path(target)
    if target.exists():
        raise SchemaError(f"{target}: a backup file of that name already exists")
    raw = engine.raw_connection()
    try:
        dst = sqlite3.connect(str(target))
        try:
            raw.driver_connection.backup(dst)  # type: ignore[union-attr]
        finally:
            dst.close()
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise SchemaError(f"{target}: cannot back up the database before upgrading it ({exc})") from None
    finally:
        raw.close()
    return target


def _backup_path(engine: Engine, version: int, now: dt.datetime) -> Path | None:
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    db = Path(url.database)
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return db.with_name(f"{db.stem}-v{version}-backup-{stamp}{db.suffix or '.db'}")


def _row_counts(connection: Connection, tables: Sequence[str]) -> dict[str, int]:
    prep = connection.dialect.identifier_preparer
    return {t: int(connection.scalar(text(f"SELECT COUNT(*) FROM {prep.quote(t)}")) or 0) for t in tables}


def ensure_schema(engine: Engine, *, upgrades: Sequence[Upgrade] = UPGRADES, backup: bool = True,
                  now: dt.datetime | None = None) -> SchemaReport:
    """Create the tables of a new database, or upgrade an older one to :func:`latest_version`.

    Parameters
    ----------
    engine : Engine
        From :func:`station.storage.db.create_db_engine`.
    upgrades : sequence of Upgrade
        The steps (default :data:`UPGRADES`; tests pass their own).
    backup : bool
        Copy a SQLite file before upgrading it (leave True outside tests).

    Raises
    ------
    SchemaError
        A newer database, a foreign one, a failed upgrade (rolled back: the
        database is at its old version, and the backup is named in the message).
    """
    latest = latest_version(upgrades)
    name = _db_name(engine)
    now = now or utc_now()

    with engine.connect() as probe:  # a read first: a current database takes no write lock
        version, _ = _read_state(probe, name, latest)
    if version == latest:
        return SchemaReport(version=latest)

    backup_path = None
    if version is not None and backup:
        backup_path = _backup_path(engine, version, now)
        if backup_path is not None:
            backup_sqlite(engine, backup_path)
            log.info("%s: backed up to %s before upgrading from schema version %d", name, backup_path, version)
        else:
            log.warning("%s: upgrading from schema version %d without a file backup "
                        "(back up a server database yourself)", name, version)

    connection = engine.connect().execution_options(sqlite_begin="IMMEDIATE")
    sqlite = engine.url.get_backend_name() == "sqlite"
    if sqlite:  # off for the upgrade (SQLite's table-rebuild procedure), checked before the commit
        _driver_pragma(connection, "PRAGMA foreign_keys=OFF")
    try:
        with connection.begin():
            _lock_schema(connection)
            version, tables = _read_state(connection, name, latest)  # again, under the write lock
            if version is None:
                Base.metadata.create_all(connection)
                connection.execute(SchemaVersion.__table__.insert().values(
                    version=latest, applied_at=now, description="created"))
                log.info("%s: new database at schema version %d", name, latest)
                return SchemaReport(version=latest, created=True)
            if version == latest:  # another process upgraded it meanwhile
                return SchemaReport(version=latest, backup_path=backup_path)
            report = SchemaReport(version=latest, from_version=version, backup_path=backup_path)
            before = _row_counts(connection, [t for t in tables if t != VERSION_TABLE])
            renamed: dict[str, str] = {}
            for step in upgrades[version - BASE_VERSION:]:
                try:
                    step.apply(connection)
                except Exception as exc:
                    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    raise SchemaError(
                        f"{name}: upgrade to schema version {step.version} ({step.description}) failed: "
                        f"{first_line}; "
                        f"the database was left at version {version}"
                        + (f" (a copy is at {backup_path})" if backup_path else "")
                    ) from exc
                for old, new in step.renamed_tables.items():
                    renamed[old] = new
                    for k, v in list(renamed.items()):
                        if v == old:
                            renamed[k] = new
                connection.execute(SchemaVersion.__table__.insert().values(
                    version=step.version, applied_at=now, description=step.description))
                report.applied.append(f"v{step.version}: {step.description}")
            _check_nothing_lost(connection, name, version, before, renamed, backup_path)
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise SchemaError(
                        f"{name}: the upgrade would leave {len(broken)} row(s) pointing at missing rows "
                        f"(first in table {broken[0][0]}); it was rolled back and the database left at "
                        f"version {version}" + (f" (a copy is at {backup_path})" if backup_path else ""))
    finally:
        if sqlite:
            _driver_pragma(connection, "PRAGMA foreign_keys=ON")
        connection.close()
    log.info("%s: upgraded from schema version %d to %d", name, report.from_version, latest)
    return report


def _lock_schema(connection: Connection) -> None:
    """One creator or upgrader at a time. SQLite: ``BEGIN IMMEDIATE`` (the connection's execution option) already
    holds the file's write lock. PostgreSQL: a transaction-level advisory lock, released by the commit or rollback;
    a second station starting meanwhile waits here, then finds the schema current."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})


def _driver_pragma(connection: Connection, pragma: str) -> None:
    """A PRAGMA outside any transaction (``foreign_keys`` cannot change inside one)."""
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(pragma)
    finally:
        cursor.close()


def _check_nothing_lost(connection: Connection, name: str, version: int, before: Mapping[str, int],
                        renamed: Mapping[str, str], backup_path: Path | None) -> None:
    tables = set(inspect(connection).get_table_names())
    problems = []
    for table, rows in before.items():
        now_table = renamed.get(table, table)
        if now_table not in tables:
            problems.append(f"table {table} would be gone")
            continue
        after = _row_counts(connection, [now_table])[now_table]
        if after < rows:
            problems.append(f"table {now_table} would go from {rows} to {after} rows")
    if problems:
        raise SchemaError(
            f"{name}: the upgrade would lose data ({'; '.join(problems)}); it was rolled back and the database "
            f"left at version {version}" + (f" (a copy is at {backup_path})" if backup_path else "")
        )
