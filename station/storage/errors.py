"""The storage's error: one line saying which database and what is wrong."""

from __future__ import annotations

from station.core.errors import UserError

__all__ = ["StorageError"]


class StorageError(UserError):
    """A problem with the station's database, said in one line (which database, what is wrong)."""
