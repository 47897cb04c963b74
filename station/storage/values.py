"""Checks of the values the database stores, and the repository's errors.

:class:`NotFound` (404 in the HTTP API), :class:`Conflict` (409) and :class:`InvalidValue` (422), all
:class:`~station.storage.errors.StorageError`, with a one-line message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from calibration.model import Calibration
from station.core.jsonclean import NotPlainData, json_ready
from station.storage.errors import StorageError
from station.storage.models import (
    PATIENT_CODE_MAX_LEN,
    AffectedSide,
    Grade,
    Sex,
    StanceSide,
    TrialState,
)

__all__ = [
    "E",
    "HEIGHT_RANGE_CM",
    "MIN_BIRTH_YEAR",
    "PROTOCOL_RE",
    "as_enum",
    "calibration_summary",
    "Conflict",
    "InvalidValue",
    "NotFound",
    "plain_json",
    "validate_patient_code",
]


_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
PROTOCOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
MIN_BIRTH_YEAR = 1900
HEIGHT_RANGE_CM = (40.0, 250.0)

E = TypeVar("E", Sex, AffectedSide, StanceSide, Grade, TrialState)


class NotFound(StorageError):
    """No such patient, visit or trial."""


class Conflict(StorageError):
    """The change clashes with what is stored (a patient code taken, a trial no longer running)."""


class InvalidValue(StorageError, ValueError):
    """A value that cannot be stored (bad patient code, year out of range, unknown grade...)."""


# -- values ------------------------------------------------------------------------------


def validate_patient_code(code: object) -> str:
    """The code, stripped, when it is a usable pseudonymous code; :class:`InvalidValue` otherwise.

    A code is 2 to 32 letters, digits, ``-`` and ``_``, starting with a letter
    or a digit, with at least one digit (``P-001``, ``KNEE_2024_17``). A code
    of letters only looks like a name, and the station stores no names: such a
    code is refused.
    """
    if not isinstance(code, str):
        raise InvalidValue(f"patient code must be text, got {type(code).__name__}")
    c = code.strip()
    if not c:
        raise InvalidValue("patient code is empty: give a pseudonymous code such as P-001")
    if len(c) < 2 or len(c) > PATIENT_CODE_MAX_LEN:
        raise InvalidValue(f"patient code {c!r} must be 2 to {PATIENT_CODE_MAX_LEN} characters long")
    if not _CODE_RE.match(c) or not c.isascii():
        raise InvalidValue(
            f"patient code {c!r} may hold only letters, digits, '-' and '_' and must start with a letter or digit "
            "(a pseudonymous code such as P-001, never a name)"
        )
    if not any(ch.isdigit() for ch in c):
        raise InvalidValue(f"patient code {c!r} has no digit: use a pseudonymous code such as P-001, never a name")
    return c


def as_enum(cls: type[E], value: E | str | None, what: str, *, optional: bool = True) -> E | None:
    if value is None:
        if optional:
            return None
        raise InvalidValue(f"{what} is required")
    if isinstance(value, cls):
        return value
    try:
        return cls(str(getattr(value, "value", value)).strip().lower())
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise InvalidValue(f"{what} {value!r} is not one of: {allowed}") from None


def plain_json(value: Any, *, what: str = "value") -> Any:
    """``value`` as plain JSON data (:func:`station.core.jsonclean.json_ready`, strict).

    Raises :class:`InvalidValue` for anything that is not data (objects, bytes).
    """
    try:
        return json_ready(value, strict=True, what=what)
    except NotPlainData as exc:
        raise InvalidValue(str(exc)) from None


def calibration_summary(calibration: Calibration | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What a trial keeps of the calibration it was measured with.

    ``label`` (``"<source> <date>"``, the recording file's ``calibration``
    key), where it came from and when, the coefficients as used (offsets
    included, after any re-zeroing) and the verification figures. A mapping is
    stored as given.
    """
    if calibration is None:
        return None
    if isinstance(calibration, Mapping):
        return plain_json(calibration, what="calibration")
    verification = calibration.verification or {}
    return plain_json({
        "label": f"{calibration.source} {calibration.created_at.date()}",
        "source": calibration.source,
        "created_at": calibration.created_at.isoformat(),
        "backend": calibration.backend,
        "station_id": calibration.station_id,
        "offsets_counts": list(calibration.offsets_counts),
        "gains_n_per_count": list(calibration.gains_n_per_count),
        "matrix": [list(r) for r in calibration.matrix] if calibration.matrix is not None else None,
        "max_cop_error_mm": verification.get("max_cop_error_mm"),
        "max_force_error_pct": verification.get("max_force_error_pct"),
        "verified": verification.get("passed"),
    }, what="calibration")
