"""The calibration: offsets and gains (or a 3x4 matrix) that turn raw counts into newtons per corner.

The calibration file is JSON, versioned and readable by a person. Version 1::

    {
      "format": "balance-station calibration",
      "version": 1,
      "created_at": "2026-11-21T09:00:00+00:00",
      "station_id": "clinic-1",
      "backend": "hx711-lgpio",
      "plate": {"ml_mm": 400, "ap_mm": 300},
      "cells": ["fl", "fr", "bl", "br"],
      "offsets_counts": [...4 numbers...],
      "gains_n_per_count": [...4 numbers...],
      "note": "...",
      "placements": [{"mass_kg": 20, "x_mm": 0, "y_mm": 0, "mean_counts": [...], ...}, ...],
      "verification": {"passed": true, "max_cop_error_mm": 0.3, ..., "rows": [...]}
    }

``force_n[i] = (counts[i] - offsets_counts[i]) * gains_n_per_count[i]``.
``placements`` (the known masses the calibration was fitted on) and
``verification`` (:meth:`calibration.solver.Verification.to_report`) are
optional and informative; a version-1 reader that does not know them keeps
them as unknown keys.

Version 2 adds ``matrix``, three rows of four numbers::

      "matrix": [[...Fz, N per count...], [...Mx, N mm per count...], [...My, N mm per count...]]

with ``[Fz, Mx, My] = matrix @ (counts - offsets_counts)``, ``Mx = Fz * x_cop``
and ``My = Fz * y_cop`` (see :meth:`Calibration.to_forces`). A file is written
as version 2 only when it has a matrix, so that software which reads only
version 1 refuses it ("update the software") rather than silently ignoring the
matrix; a calibration without a matrix is still written as version 1. Both
versions are read. Unknown keys are kept.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hardware.sim.cells import SIMULATED_CELLS
from station.core.frames import CELLS

FORMAT_NAME = "balance-station calibration"
#: The newest file version this program reads (and writes, for a calibration with a matrix).
FORMAT_VERSION = 2
#: The version written for a calibration without a matrix (readable by older software).
FORMAT_VERSION_PER_CELL = 1
#: What the matrix's rows give, in order.
MATRIX_ROWS: tuple[str, str, str] = ("fz_n", "mx_nmm", "my_nmm")
#: the magnitude a cell's gain can have, N per count. An HX711 at gain 128 spans about +-20 mV over
#: 2**23 counts; load cells from 5 kg to 2 t, 0.5 to 3 mV/V, 2.6 to 5 V excitation give 8e-6 to 0.035
#: N per count: a factor of ten beyond either end is room enough, and 1e300 is refused
GAIN_RANGE_N_PER_COUNT = (1e-7, 0.5)
#: an HX711 reads -2**23 .. 2**23 - 1: an offset (tare) outside that range is not a reading
OFFSET_LIMIT_COUNTS = float(2**23)
#: a calibration file is a few kB; anything much larger is not one
MAX_FILE_BYTES = 1 << 20
#: the largest magnitude of a matrix entry: Fz row N per count, moment rows N mm per count (5 m lever arm)
_MATRIX_LIMITS = (GAIN_RANGE_N_PER_COUNT[1], GAIN_RANGE_N_PER_COUNT[1] * 5000.0, GAIN_RANGE_N_PER_COUNT[1] * 5000.0)


class CalibrationError(ValueError):
    """A calibration file is missing, unreadable or inconsistent. The message names the file."""


@dataclass(frozen=True)
class Calibration:
    """Per-cell linear calibration, optionally with a 3x4 crosstalk matrix.

    Parameters
    ----------
    offsets_counts : sequence of 4 float
        Reading of each cell with the plate empty, in counts.
    gains_n_per_count : sequence of 4 float
        Newtons per count of each cell (negative where a cell is wired reversed).
    created_at : datetime
        When the calibration was made (timezone-aware).
    station_id, backend, note : str
        Where it was made, on which HX711 backend, and a free note.
    plate_ml_mm, plate_ap_mm : float
        Cell spacing the calibration was made for.
    source : str
        Where it was loaded from (a path, or ``builtin:simulator``).
    extra : dict
        Keys of the file this version does not interpret, kept as they were.
    matrix : 3 rows of 4 float, optional
        ``[Fz (N), Mx (N mm), My (N mm)] = matrix @ (counts - offsets_counts)``
        (:func:`calibration.solver.fit_matrix`). When present,
        :meth:`to_forces` and :meth:`to_counts` use it; ``gains_n_per_count``
        stays required (the per-cell fit), for readers that apply gains
        themselves. Must have rank 3.
    placements : sequence of dict, optional
        The placements the calibration was fitted on (``Placement.to_dict()``
        or :class:`calibration.solver.Placement` objects), stored as plain dicts.
    verification : dict, optional
        The verification report (``Verification.to_report()`` or a
        :class:`calibration.solver.Verification`), stored as a plain dict.
    """

    offsets_counts: tuple[float, float, float, float]
    gains_n_per_count: tuple[float, float, float, float]
    created_at: dt.datetime
    station_id: str = ""
    backend: str = ""
    note: str = ""
    plate_ml_mm: float = 400.0
    plate_ap_mm: float = 300.0
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    matrix: tuple[tuple[float, ...], ...] | None = None
    placements: tuple[dict[str, Any], ...] = ()
    verification: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in ("offsets_counts", "gains_n_per_count"):
            values = getattr(self, name)
            if len(values) != 4 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise CalibrationError(f"{name} must be 4 finite numbers (fl, fr, bl, br), got {values!r}")
        if any(g == 0 for g in self.gains_n_per_count):
            raise CalibrationError("gains_n_per_count must not contain 0")
        for i, g in enumerate(self.gains_n_per_count):
            if not GAIN_RANGE_N_PER_COUNT[0] <= abs(g) <= GAIN_RANGE_N_PER_COUNT[1]:
                raise CalibrationError(
                    f"gains_n_per_count[{i}] ({CELLS[i]}) is {g:g} N per count: no load cell on an HX711 gives that "
                    f"(possible: {GAIN_RANGE_N_PER_COUNT[0]:g} to {GAIN_RANGE_N_PER_COUNT[1]:g} in magnitude)")
        for i, o in enumerate(self.offsets_counts):
            if not -OFFSET_LIMIT_COUNTS <= o <= OFFSET_LIMIT_COUNTS:
                raise CalibrationError(f"offsets_counts[{i}] ({CELLS[i]}) is {o:g}: outside the HX711's 24-bit range")
        if self.created_at.tzinfo is None:
            raise CalibrationError("created_at must carry a time zone")
        for name in ("plate_ml_mm", "plate_ap_mm"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise CalibrationError(f"{name} must be a positive distance in mm, got {value!r}")
        if self.matrix is not None:
            object.__setattr__(self, "matrix", _check_matrix(self.matrix))
        object.__setattr__(self, "placements", _plain_placements(self.placements))
        if self.verification is not None:
            object.__setattr__(self, "verification", _plain_verification(self.verification))

    # -- conversion -----------------------------------------------------------------
    def to_forces(self, counts: np.ndarray) -> np.ndarray:
        """Forces on ``fl, fr, bl, br`` in N from counts, shape (4,) or (n, 4).

        Without a matrix: ``(counts - offsets_counts) * gains_n_per_count``.

        With a matrix: ``[Fz, Mx, My] = matrix @ (counts - offsets_counts)``,
        shared onto the corners as :func:`station.core.cop.split_load` shares a load
        ``Fz`` at ``(Mx / Fz, My / Fz)``, so that the COP formula of DESIGN.md
        section 3 applied to the result gives exactly the matrix's COP and its
        sum exactly ``Fz``. The split is computed in closed form,
        ``f = (Fz -+ a +- b +- t) / 4`` with ``a = 2 Mx / ml``, ``b = 2 My / ap``
        and the twist ``t = fl - fr - bl + br = -4 Mx My / (Fz ml ap)``, which is
        split_load's exactly; the twist is clipped to ``|t| <= |Fz|`` (its
        bound for any COP between the cells) so an empty plate's noise
        (``Fz`` near 0) cannot blow it up. The clip changes the corners only
        when the COP lies outside the cells, and never Fz or the COP.
        """
        c = np.asarray(counts, dtype=np.float64) - np.asarray(self.offsets_counts)
        if self.matrix is None:
            return c * np.asarray(self.gains_n_per_count)
        q = c @ np.asarray(self.matrix).T
        fz, mx, my = q[..., 0], q[..., 1], q[..., 2]
        ml, ap = self.plate_ml_mm, self.plate_ap_mm
        with np.errstate(divide="ignore", invalid="ignore"):
            twist = np.where(fz != 0, -4.0 * mx * my / (np.where(fz != 0, fz, 1.0) * ml * ap), 0.0)
        twist = np.clip(twist, -np.abs(fz), np.abs(fz))
        a, b = 2.0 * mx / ml, 2.0 * my / ap
        return np.stack([fz - a + b + twist, fz + a + b - twist, fz - a - b - twist, fz + a - b + twist], axis=-1) / 4

    def to_forces_one(self, counts: tuple[int | float, ...]) -> tuple[float, float, float, float]:
        """:meth:`to_forces` of one frame's four counts, as plain floats (the live path, 80 times a second).

        Without a matrix the same operations in the same order as :meth:`to_forces`, in plain
        floats (the same values to the last bit); with one, :meth:`to_forces` itself.
        """
        if self.matrix is None:
            off, gain = self.offsets_counts, self.gains_n_per_count
            return ((float(counts[0]) - off[0]) * gain[0], (float(counts[1]) - off[1]) * gain[1],
                    (float(counts[2]) - off[2]) * gain[2], (float(counts[3]) - off[3]) * gain[3])
        f = self.to_forces(np.asarray(counts, dtype=np.float64))
        return (float(f[0]), float(f[1]), float(f[2]), float(f[3]))

    def to_counts(self, forces_n: np.ndarray) -> np.ndarray:
        """Counts from forces in N: the inverse of :meth:`to_forces`, used by replay.

        With a matrix, ``[Fz, Mx, My]`` of the forces is mapped back with the
        matrix's pseudo-inverse (the counts of least norm that give it). The
        round trip ``to_forces(to_counts(f)) == f`` is exact (to rounding)
        for the loads the bilinear split can produce (those of
        :func:`station.core.cop.split_load` with the COP between the cells); for
        any other forces it keeps Fz and the COP but not the twist.
        """
        f = np.asarray(forces_n, dtype=np.float64)
        if self.matrix is None:
            return f / np.asarray(self.gains_n_per_count) + np.asarray(self.offsets_counts)
        hx, hy = self.plate_ml_mm / 2, self.plate_ap_mm / 2
        w = np.array([[1.0, 1.0, 1.0, 1.0], [-hx, hx, -hx, hx], [hy, hy, -hy, -hy]])
        q = f @ w.T
        return q @ np.linalg.pinv(np.asarray(self.matrix)).T + np.asarray(self.offsets_counts)

    def age_days(self, now: dt.datetime | None = None) -> float:
        now = now or dt.datetime.now(dt.UTC)
        return (now - self.created_at).total_seconds() / 86400.0

    @property
    def is_builtin(self) -> bool:
        return self.source.startswith("builtin:")

    # -- file -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The file's content as plain data (version 2 with a matrix, else version 1)."""
        doc: dict[str, Any] = dict(self.extra)
        doc.update(
            {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION if self.matrix is not None else FORMAT_VERSION_PER_CELL,
                "created_at": self.created_at.isoformat(),
                "station_id": self.station_id,
                "backend": self.backend,
                "plate": {"ml_mm": self.plate_ml_mm, "ap_mm": self.plate_ap_mm},
                "cells": list(CELLS),
                "offsets_counts": list(self.offsets_counts),
                "gains_n_per_count": list(self.gains_n_per_count),
                "note": self.note,
            }
        )
        if self.matrix is not None:
            doc["matrix_rows"] = list(MATRIX_ROWS)
            doc["matrix"] = [list(row) for row in self.matrix]
        if self.placements:
            doc["placements"] = [dict(p) for p in self.placements]
        if self.verification is not None:
            doc["verification"] = dict(self.verification)
        return doc

    def save(self, path: Path) -> None:
        """Write the file atomically (a power cut leaves the old file or the new one)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(format_json(self.to_dict()) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, source: str = "") -> Calibration:
        where = source or "calibration"
        if not isinstance(doc, dict):
            raise CalibrationError(f"{where}: expected a JSON object")
        if doc.get("format") != FORMAT_NAME:
            raise CalibrationError(f"{where}: not a balance-station calibration file (format is {doc.get('format')!r})")
        version = doc.get("version")
        if not isinstance(version, int) or version < 1:
            raise CalibrationError(f"{where}: bad version {version!r}")
        if version > FORMAT_VERSION:
            raise CalibrationError(
                f"{where}: version {version} is newer than this program reads ({FORMAT_VERSION}); update the software"
            )
        cells = doc.get("cells", list(CELLS))
        if list(cells) != list(CELLS):
            raise CalibrationError(f"{where}: cells must be {list(CELLS)}, got {cells!r}")
        try:
            created = dt.datetime.fromisoformat(str(doc["created_at"]))
            plate = doc.get("plate", {})
            known = {"format", "version", "created_at", "station_id", "backend", "plate", "cells",
                     "offsets_counts", "gains_n_per_count", "note", "matrix", "matrix_rows", "placements",
                     "verification"}
            rows = doc.get("matrix_rows", list(MATRIX_ROWS))
            if list(rows) != list(MATRIX_ROWS):
                raise CalibrationError(f"matrix_rows must be {list(MATRIX_ROWS)}, got {rows!r}")
            return cls(
                offsets_counts=tuple(float(v) for v in doc["offsets_counts"]),  # type: ignore[arg-type]
                gains_n_per_count=tuple(float(v) for v in doc["gains_n_per_count"]),  # type: ignore[arg-type]
                created_at=created,
                station_id=str(doc.get("station_id", "")),
                backend=str(doc.get("backend", "")),
                note=str(doc.get("note", "")),
                plate_ml_mm=float(plate.get("ml_mm", 400.0)),
                plate_ap_mm=float(plate.get("ap_mm", 300.0)),
                source=source,
                extra={k: v for k, v in doc.items() if k not in known},
                matrix=doc.get("matrix"),
                placements=doc.get("placements") or (),
                verification=doc.get("verification"),
            )
        except CalibrationError as exc:
            raise CalibrationError(f"{where}: {exc}") from None
        except KeyError as exc:
            raise CalibrationError(f"{where}: missing key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"{where}: {exc}") from None

    @classmethod
    def load(cls, path: Path) -> Calibration:
        path = Path(path)
        try:
            with path.open("rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            raise CalibrationError(f"{path}: no such calibration file") from None
        except OSError as exc:
            raise CalibrationError(f"{path}: cannot read ({exc.strerror})") from None
        if len(data) > MAX_FILE_BYTES:
            raise CalibrationError(f"{path}: not a calibration file (larger than {MAX_FILE_BYTES // 1024} kB)")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CalibrationError(f"{path}: not a calibration file (byte {exc.start} is not UTF-8 text)") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CalibrationError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise CalibrationError(f"{path}: not a calibration file (nested too deeply)") from None
        return cls.from_dict(doc, source=str(path))


def _check_matrix(matrix: Any) -> tuple[tuple[float, ...], ...]:
    try:
        m = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"matrix must be 3 rows of 4 numbers (Fz, Mx, My), got {matrix!r}") from None
    if m.shape != (3, 4) or not np.all(np.isfinite(m)):
        raise CalibrationError(f"matrix must be 3 rows of 4 finite numbers (Fz, Mx, My), got {matrix!r}")
    if np.linalg.matrix_rank(m) < 3:
        raise CalibrationError("matrix must have rank 3 (it cannot give Fz and both COP coordinates)")
    for row, limit in zip(m, _MATRIX_LIMITS, strict=True):
        if np.any(np.abs(row) > limit):
            raise CalibrationError(
                f"matrix has an entry beyond what a load cell on an HX711 gives (|value| > {limit:g})")
    return tuple(tuple(float(v) for v in row) for row in m)


def _plain(value: Any, what: str) -> Any:
    """``value`` as plain JSON data (dict, list, str, number, bool, None), checked."""
    if isinstance(value, dict):
        return {str(k): _plain(v, what) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, what) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), what)
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise CalibrationError(f"{what} must be plain data (numbers, text, lists, dicts), got {type(value).__name__}")


def _plain_placements(placements: Any) -> tuple[dict[str, Any], ...]:
    if placements is None:
        return ()
    if isinstance(placements, (str, bytes, dict)) or not hasattr(placements, "__iter__"):
        raise CalibrationError(f"placements must be a list of placements, got {type(placements).__name__}")
    out = []
    for p in placements:
        doc = p.to_dict() if hasattr(p, "to_dict") else p
        if not isinstance(doc, dict):
            raise CalibrationError(f"each placement must be a dict or a Placement, got {type(p).__name__}")
        out.append(_plain(doc, "placements"))
    return tuple(out)


def _plain_verification(verification: Any) -> dict[str, Any]:
    doc = verification.to_report() if hasattr(verification, "to_report") else verification
    if not isinstance(doc, dict):
        raise CalibrationError(f"verification must be a dict or a Verification, got {type(verification).__name__}")
    return _plain(doc, "verification")


def format_json(doc: Any, *, indent: int = 2) -> str:
    """JSON for a person: objects one key a line, but a list of numbers, or a row of a table, on one line.

    ``json.loads(format_json(doc)) == doc`` for plain data.
    """

    def scalar(v: Any) -> bool:
        return v is None or isinstance(v, (str, int, float, bool))

    def compact(v: Any) -> bool:  # fits on one line: a list of scalars, or a dict of scalars / scalar lists
        if isinstance(v, list):
            return all(scalar(x) for x in v)
        if isinstance(v, dict):
            return all(scalar(x) or (isinstance(x, list) and all(scalar(y) for y in x)) for x in v.values())
        return True

    def fmt(v: Any, level: int, in_list: bool) -> str:
        pad, inner = " " * (indent * level), " " * (indent * (level + 1))
        if scalar(v) or (isinstance(v, list) and compact(v)) or (in_list and isinstance(v, dict) and compact(v)):
            return json.dumps(v)
        if isinstance(v, dict):
            if not v:
                return "{}"
            items = [f"{inner}{json.dumps(str(k))}: {fmt(x, level + 1, False)}" for k, x in v.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if not v:
            return "[]"
        items = [inner + fmt(x, level + 1, True) for x in v]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"

    return fmt(doc, 0, False)


def simulator_calibration() -> Calibration:
    """The built-in calibration that matches the simulated plate exactly.

    It is made from the simulated plate's cells
    (:data:`hardware.sim.cells.SIMULATED_CELLS`); it serves the simulator until a
    real calibration is made, and is never valid for a real plate.
    """
    doc = {
        "format": "balance-station calibration",
        "version": 1,
        "created_at": "2026-11-21T00:00:00+00:00",
        "station_id": "simulator",
        "backend": "simulated",
        "plate": {"ml_mm": 400.0, "ap_mm": 300.0},
        "cells": list(CELLS),
        "offsets_counts": list(SIMULATED_CELLS.offsets_counts),
        "gains_n_per_count": list(SIMULATED_CELLS.gains_n_per_count),
        "note": ("Built-in calibration of the simulated plate (100 kg cells, 2 mV/V, 5 V excitation, HX711 gain 128). "
                 "Not valid for a real plate: run 'balance-station calibrate'."),
    }
    return Calibration.from_dict(doc, source="builtin:simulator")
