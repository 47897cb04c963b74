"""The databases the storage, web and export tests run on: SQLite, and a real PostgreSQL server.

``./quickstart test`` starts a throwaway PostgreSQL cluster and gives its URL in
``BALANCE_TEST_POSTGRES_URL`` (a superuser's URL to its ``postgres`` database).
Each test gets a database of its own on that server (:func:`scratch_database`),
dropped after it.

Without that variable the PostgreSQL variants skip, saying why; under CI
(``CI`` set, as by CI services: ``CI=true``) they fail instead: there they must run.

The variable is read when this module is imported: the autouse fixture of
``tests/conftest.py`` clears every ``BALANCE_STATION_*`` variable during a test,
which is also why its name does not start with ``BALANCE_STATION_``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

__all__ = ["BACKENDS", "POSTGRES_URL", "backend_url", "require_postgres", "rows", "scalar", "scratch_database"]

POSTGRES_URL = os.environ.get("BALANCE_TEST_POSTGRES_URL", "").strip()
#: as the browser tests read it: CI set to anything but "", 0, false, no
UNDER_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
#: the ids of the parametrized database fixtures
BACKENDS = ("sqlite", "postgresql")

_reachable: str | None = None  # "" when the server answered, else why not


def _no_postgres(reason: str) -> None:
    if UNDER_CI:
        pytest.fail(f"PostgreSQL tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server for this test: {reason} "
                "('./quickstart test' starts one; or set BALANCE_TEST_POSTGRES_URL)")


def require_postgres() -> URL:
    """The server's admin URL; skips the test (fails it under CI) when there is none or it does not answer."""
    global _reachable
    if not POSTGRES_URL:
        _no_postgres("BALANCE_TEST_POSTGRES_URL is not set")
    url = make_url(POSTGRES_URL)
    if _reachable is None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            _reachable = "psycopg is not installed (pip install -e '.[test]')"
        else:
            engine = create_engine(url)
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                _reachable = ""
            except Exception as exc:  # noqa: BLE001 - any failure means: no server
                _reachable = f"{url.render_as_string(hide_password=True)} does not answer " \
                             f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})"
            finally:
                engine.dispose()
    if _reachable:
        _no_postgres(_reachable)
    return url


@contextmanager
def scratch_database(prefix: str = "test") -> Iterator[str]:
    """A new, empty database on the test server (its URL), dropped afterwards with whatever is still connected."""
    admin_url = require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@contextmanager
def backend_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database's URL: ``sqlite`` (station.db in ``tmp_path/data``) or ``postgresql`` (a scratch database)."""
    if backend == "sqlite":
        from station.storage.db import default_database_url

        yield default_database_url(Path(tmp_path) / "data")
    elif backend == "postgresql":
        with scratch_database() as url:
            yield url
    else:
        raise ValueError(f"unknown database backend {backend!r}")


def rows(url: str, sql: str) -> list[tuple]:
    """Every row of ``sql`` on the database at ``url`` (a connection of its own, closed after)."""
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return [tuple(r) for r in c.execute(text(sql))]
    finally:
        engine.dispose()


def scalar(url: str, sql: str) -> object:
    """The first value of ``sql`` on the database at ``url``."""
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return c.execute(text(sql)).scalar()
    finally:
        engine.dispose()
