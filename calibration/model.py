"""The calibration: offsets and gains that turn raw counts into newtons per corner.

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
      "note": "..."
    }

``force_n[i] = (counts[i] - offsets_counts[i]) * gains_n_per_count[i]``.
Unknown keys are kept, so later versions can add the solver's placements,
residuals and verification table without breaking older readers.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from hardware.frames import CELLS

FORMAT_NAME = "balance-station calibration"
FORMAT_VERSION = 1


class CalibrationError(ValueError):
    """A calibration file is missing, unreadable or inconsistent. The message names the file."""


@dataclass(frozen=True)
class Calibration:
    """Per-cell linear calibration.

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

    def __post_init__(self) -> None:
        for name in ("offsets_counts", "gains_n_per_count"):
            values = getattr(self, name)
            if len(values) != 4 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise CalibrationError(f"{name} must be 4 finite numbers (fl, fr, bl, br), got {values!r}")
        if any(g == 0 for g in self.gains_n_per_count):
            raise CalibrationError("gains_n_per_count must not contain 0")
        if self.created_at.tzinfo is None:
            raise CalibrationError("created_at must carry a time zone")

    # -- conversion -----------------------------------------------------------------
    def to_forces(self, counts: np.ndarray) -> np.ndarray:
        """Forces in N from counts, shape (4,) or (n, 4)."""
        c = np.asarray(counts, dtype=np.float64)
        return (c - np.asarray(self.offsets_counts)) * np.asarray(self.gains_n_per_count)

    def to_counts(self, forces_n: np.ndarray) -> np.ndarray:
        """Counts from forces in N: the inverse of :meth:`to_forces`, used by replay."""
        f = np.asarray(forces_n, dtype=np.float64)
        return f / np.asarray(self.gains_n_per_count) + np.asarray(self.offsets_counts)

    def age_days(self, now: dt.datetime | None = None) -> float:
        now = now or dt.datetime.now(dt.timezone.utc)
        return (now - self.created_at).total_seconds() / 86400.0

    @property
    def is_builtin(self) -> bool:
        return self.source.startswith("builtin:")

    # -- file -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = dict(self.extra)
        doc.update(
            {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
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
        return doc

    def save(self, path: Path) -> None:
        """Write the file atomically (a power cut leaves the old file or the new one)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
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
                     "offsets_counts", "gains_n_per_count", "note"}
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
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CalibrationError(f"{path}: no such calibration file") from None
        except OSError as exc:
            raise CalibrationError(f"{path}: cannot read ({exc.strerror})") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CalibrationError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
        return cls.from_dict(doc, source=str(path))


def simulator_calibration() -> Calibration:
    """The built-in calibration that matches the simulated plate exactly.

    It serves the simulator until a real calibration is made, and is never
    valid for a real plate.
    """
    ref = resources.files("calibration") / "data" / "simulator.json"
    doc = json.loads(ref.read_text(encoding="utf-8"))
    return Calibration.from_dict(doc, source="builtin:simulator")
