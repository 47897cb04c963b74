"""Errors that reach the user as one line, never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: bad input file, bad option, missing hardware.

    ``str(error)`` is the whole message, naming the file, the line and the
    problem where there is one (``rec.csv:12: column fz_n: 'abc' is not a number``).
    """
