"""Reliability tests: a real uvicorn server on loopback, real SQLite, cheap password hashing.

Every loop in these tests is bounded in count and in time; every server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

import station.storage.accounts


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    monkeypatch.setattr(station.storage.accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024,
                                                                           parallelism=1))


@pytest.fixture(autouse=True)
def _forget_failed_logins():
    """Failed logins are counted in memory, across apps: each test starts afresh."""
    station.storage.accounts._UNKNOWN_NAMES.clear()
    yield
    station.storage.accounts._UNKNOWN_NAMES.clear()
