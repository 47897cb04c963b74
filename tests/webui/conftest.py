"""Web tests: a cheap password hasher (argon2 at its real cost would make every login take 50 ms or more);
the JSON API and export tests on SQLite and on PostgreSQL."""

from __future__ import annotations

import inspect

import pytest
from argon2 import PasswordHasher

import station.storage.accounts
from tests.postgres.server import BACKENDS, scratch_database


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    monkeypatch.setattr(station.storage.accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024,
                                                                           parallelism=1))


@pytest.fixture(autouse=True)
def _forget_unknown_user_names():
    """The failed logins of unknown names are counted in memory, across apps: each test starts afresh."""
    station.storage.accounts._UNKNOWN_NAMES.clear()
    yield
    station.storage.accounts._UNKNOWN_NAMES.clear()


# -- the database: SQLite, and PostgreSQL for the JSON API and the exports ---------------------------------

#: the web test modules that run on both databases (each test twice: [sqlite] and [postgresql])
BOTH_DATABASES = frozenset({"test_api_patients", "test_api_trials", "test_export", "test_trial_station"})


def pytest_generate_tests(metafunc):
    # tests that take fixtures (those that make an app or a database); not the pure ones
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if module in BOTH_DATABASES and inspect.signature(metafunc.function).parameters:
        metafunc.parametrize("database_backend", BACKENDS, indirect=True)


@pytest.fixture(autouse=True)
def database_backend(request, _no_user_config, monkeypatch):
    """The database the test's app opens: SQLite in its data folder (the default), or, for the modules of
    :data:`BOTH_DATABASES`, also a scratch database on the test PostgreSQL server (tests/postgres/server.py),
    given to the settings as ``BALANCE_STATION_DATABASE_URL`` (read by ``make_app``)."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield backend
        return
    with scratch_database() as url:
        monkeypatch.setenv("BALANCE_STATION_DATABASE_URL", url)
        yield backend
