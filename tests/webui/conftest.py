"""Web tests: a cheap password hasher (argon2 at its real cost would make every login take 50 ms or more)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

import station.users


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    monkeypatch.setattr(station.users, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(autouse=True)
def _forget_unknown_user_names():
    """The failed logins of unknown names are counted in memory, across apps: each test starts afresh."""
    station.users._UNKNOWN_NAMES.clear()
    yield
    station.users._UNKNOWN_NAMES.clear()
