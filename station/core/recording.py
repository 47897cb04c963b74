"""The recording file (DESIGN.md section 4, contract): read, parse and write.

A recording is UTF-8 CSV: leading ``# key: value`` comment lines carry the
metadata, then one header row, then one row per sample::

    # balance-station recording v1
    # sample_rate_hz: 80
    # plate_ml_mm: 400
    # plate_ap_mm: 300
    # feet_ml_mm: 200
    t_s,fl_n,fr_n,bl_n,br_n
    0.000000,171.2000,168.9000,170.4000,172.0000

Reading is lenient where the contract allows it (any rate from 10 to 1000 Hz,
extra columns, unknown keys, CRLF line endings, a byte-order mark, blank
lines) and strict everywhere else: every problem is a :class:`RecordingError`
whose message is one line, ``FILE:LINE: problem``.

Fields are separated by commas and are not quoted: the format carries numbers
and flag words only. The writer refuses values that would need quoting.

Written precision
-----------------
:class:`RecordingWriter` writes ``t_s`` with 6 decimals (1 us) and forces with
4 decimals (0.1 mN):

* time: at the fastest rate the contract allows (1000 Hz) 4 decimals would
  round time stamps by up to 5 % of a period; 1 us keeps that below 0.05 %,
  finer than the scheduling jitter of the Pi's clock, so nothing measured is lost;
* force: one HX711 count is about 0.23 mN with the station's 100 kg cells
  (hardware/sim/cells.py) and the noise is about 40 counts rms, so
  0.1 mN is below one count. The COP error from this rounding is at most
  ``(ml/2) * 2 * 0.05 mN / Fz``, about 4e-5 mm for a 500 N person: negligible.
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from station.core.errors import UserError
from station.core.geometry import PlateGeometry

__all__ = [
    "FORMAT_LINE",
    "FORCE_COLUMNS",
    "MAX_FILE_BYTES",
    "MAX_FORCE_N",
    "MAX_RATE_HZ",
    "MAX_SAMPLES",
    "MIN_RATE_HZ",
    "Recording",
    "RecordingError",
    "RecordingWriter",
    "parse_recording",
    "read_recording",
    "write_recording",
]

FORMAT_LINE = "# balance-station recording v1"
TIME_COLUMN = "t_s"
FORCE_COLUMNS: tuple[str, str, str, str] = ("fl_n", "fr_n", "bl_n", "br_n")
REQUIRED_COLUMNS = (TIME_COLUMN, *FORCE_COLUMNS)
#: The optional pelvis sensor column (DESIGN.md section 4): degrees, positive = the patient's right side higher;
#: an empty cell is a sample without a sensor value (NaN).
PELVIS_COLUMN = "pelvis_obliquity_deg"
REQUIRED_KEYS = ("sample_rate_hz", "plate_ml_mm", "plate_ap_mm")
_TYPED_KEYS = (*REQUIRED_KEYS, "feet_ml_mm")
DEFAULT_FEET_ML_MM = 200.0
MIN_RATE_HZ = 10.0
MAX_RATE_HZ = 1000.0
#: A recording needs at least this many samples to have a time base at all.
MIN_SAMPLES = 2
#: The most samples a recording may hold (83 minutes at 80 Hz, 6.7 at 1000 Hz): bounds the reader's memory
#: (about 300 MB at the limit).
MAX_SAMPLES = 400_000
#: The largest recording file read, bytes (16 MiB; 400,000 samples at 40 bytes a line)
MAX_FILE_BYTES = 16 << 20
#: The largest force a corner may carry, N (10 t): beyond it a value is not a reading, whatever the plate
MAX_FORCE_N = 1e5

T_DECIMALS = 6
FORCE_DECIMALS = 4

_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class RecordingError(UserError):
    """A recording file is missing, unreadable or malformed.

    The message is one line: ``FILE:LINE: problem`` (``FILE: problem`` when no
    line is concerned).
    """


def _show(value: str, limit: int = 40) -> str:
    """``repr`` of a value from the file, shortened, safe on one line."""
    text = value if len(value) <= limit else value[: limit - 3] + "..."
    return repr(text)


@dataclass(frozen=True, eq=False)
class Recording:
    """One recording: samples and metadata.

    Parameters
    ----------
    t_s : ndarray, shape (n,)
        Time of each sample in s since the start, strictly increasing (not
        necessarily uniform).
    forces_n : ndarray, shape (n, 4)
        Vertical force on ``fl, fr, bl, br`` in N.
    sample_rate_hz : float
        Nominal sampling rate in Hz, 10 to 1000.
    geometry : PlateGeometry
        Cell spacing and footprint distance, from ``plate_ml_mm``,
        ``plate_ap_mm`` and ``feet_ml_mm``.
    metadata : dict of str to str
        Every ``# key: value`` line as written, required keys included;
        unknown keys are kept.
    extra : dict of str to ndarray
        Extra columns in file order: float64 when every value is a number,
        otherwise the stripped strings.
    name : str
        Where the recording came from (the path as given), for messages.
    """

    t_s: np.ndarray
    forces_n: np.ndarray
    sample_rate_hz: float
    geometry: PlateGeometry = field(default_factory=PlateGeometry)
    metadata: dict[str, str] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = "<recording>"

    def __post_init__(self) -> None:
        t = np.asarray(self.t_s, dtype=np.float64)
        f = np.asarray(self.forces_n, dtype=np.float64)
        if t.ndim != 1 or t.size < MIN_SAMPLES:
            raise ValueError(f"t_s must be one-dimensional with at least {MIN_SAMPLES} samples, got shape {t.shape}")
        if f.shape != (t.size, 4):
            raise ValueError(f"forces_n must have shape ({t.size}, 4), got {f.shape}")
        if not (np.all(np.isfinite(t)) and np.all(np.diff(t) > 0)):
            raise ValueError("t_s must be finite and strictly increasing")
        if not np.all(np.isfinite(f)):
            raise ValueError("forces_n must be finite")
        rate = float(self.sample_rate_hz)
        if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
            raise ValueError(f"sample_rate_hz must be between {MIN_RATE_HZ:g} and {MAX_RATE_HZ:g}, got {rate!r}")
        for key, col in self.extra.items():
            if len(col) != t.size:
                raise ValueError(f"extra column {key!r} has {len(col)} values, expected {t.size}")
        object.__setattr__(self, "t_s", t)
        object.__setattr__(self, "forces_n", f)
        object.__setattr__(self, "sample_rate_hz", rate)

    @property
    def n_samples(self) -> int:
        return int(self.t_s.size)

    @property
    def span_s(self) -> float:
        """Time from the first sample to the last, in s."""
        return float(self.t_s[-1] - self.t_s[0])

    @property
    def fz_n(self) -> np.ndarray:
        """Total vertical force per sample, in N."""
        return self.forces_n.sum(axis=1)


# -- reading -----------------------------------------------------------------------------


def read_recording(path: str | Path) -> Recording:
    """Read a recording file.

    Parameters
    ----------
    path : str or Path
        The file. Its name, as given, starts every error message.

    Returns
    -------
    Recording

    Raises
    ------
    RecordingError
        One line naming the file, the line and the problem: missing file, not
        UTF-8, empty, and everything :func:`parse_recording` checks.
    """
    name = str(path)
    p = Path(path)
    try:
        with p.open("rb") as f:  # at most MAX_FILE_BYTES + 1: /dev/zero or a huge file is refused, not read
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise RecordingError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise RecordingError(f"{name}: is a directory, not a recording file") from None
    except OSError as exc:
        raise RecordingError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise RecordingError(f"{name}: too large: a recording file is at most {MAX_FILE_BYTES >> 20} MB "
                             f"({MAX_SAMPLES:,} samples)")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RecordingError(
            f"{name}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column})"
        ) from None
    return parse_recording(text, name=name)


def _split_lines(text_or_lines: str | Iterable[str]) -> list[str]:
    if isinstance(text_or_lines, str):
        lines = text_or_lines.split("\n")
    else:
        lines = list(text_or_lines)
        if not all(isinstance(line, str) for line in lines):
            raise TypeError("text_or_lines must be a str or an iterable of str")
    out = [line.rstrip("\r\n") for line in lines]
    if out and out[0].startswith("\ufeff"):
        out[0] = out[0][1:]
    return out


def _parse_number(value: str) -> float | None:
    """A finite float from ``value``, or None. Python's digit separators (``6_0.1``) are not a number here."""
    if "_" in value:
        return None
    try:
        v = float(value)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _parse_number_any(value: str) -> bool:
    """True when ``value`` parses as a float at all (NaN and inf included)."""
    if "_" in value:
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _optional_numeric_column(raw: list[str], *, col: str, name: str, line_numbers: list[int]) -> np.ndarray:
    """An optional numeric extra column: numbers, with empty cells (and ``nan``) as NaN; anything else refused."""
    out = np.full(len(raw), np.nan)
    for k, s in enumerate(raw):
        if s == "" or s.lower() == "nan":
            continue
        v = _parse_number(s)
        if v is None:
            raise RecordingError(f"{name}:{line_numbers[k]}: column {col}: {_show(s)} is not a number "
                                 "(leave the cell empty where there is no value)")
        out[k] = v
    return out


def parse_recording(text_or_lines: str | Iterable[str], *, name: str = "<recording>") -> Recording:
    """Parse the text of a recording file.

    Parameters
    ----------
    text_or_lines : str or iterable of str
        The whole text, or its lines (with or without line endings).
    name : str
        Name of the source for messages (usually the path).

    Returns
    -------
    Recording

    Raises
    ------
    RecordingError
        ``name:LINE: problem`` for: empty file, no header row, missing required
        key, bad metadata value, sample rate outside 10..1000 Hz, bad plate
        geometry, missing or duplicate column, wrong number of fields,
        non-numeric or non-finite value (naming the column), non-increasing
        ``t_s``, fewer than 2 samples.

    Notes
    -----
    Before the header, a comment line is metadata when it reads ``# key:
    value`` with ``key`` a word (letters, digits, ``_``, ``.``, ``-``); the
    value is everything after the first colon, stripped. Other comment lines
    (the ``# balance-station recording v1`` line, free notes) and blank lines
    are skipped. A key this reader interprets (``sample_rate_hz``,
    ``plate_ml_mm``, ``plate_ap_mm``, ``feet_ml_mm``) given twice is an error;
    for other keys the first one stands. Line numbers count every physical
    line, blank ones included, from 1.
    """
    lines = _split_lines(text_or_lines)
    if not any(line.strip() for line in lines):
        raise RecordingError(f"{name}: empty file")

    # -- metadata and header -------------------------------------------------------------
    metadata: dict[str, str] = {}
    key_lines: dict[str, int] = {}
    header_index = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            body = stripped[1:].strip()
            key, sep, value = body.partition(":")
            key = key.strip()
            if sep and _KEY_RE.match(key):
                if key in metadata:
                    if key in _TYPED_KEYS:
                        raise RecordingError(
                            f"{name}:{index + 1}: metadata key {key!r} given twice (first on line {key_lines[key]})"
                        )
                    continue  # an unknown key given twice: the first one stands
                metadata[key] = value.strip()
                key_lines[key] = index + 1
            continue  # other comments (the format line) carry no metadata
        header_index = index
        break
    if header_index is None:
        last = max(i for i, line in enumerate(lines) if line.strip()) + 1
        raise RecordingError(f"{name}:{last}: no header row (the file has only comment lines)")
    header_line = header_index + 1

    def number_key(key: str, default: float | None = None) -> float:
        if key not in metadata:
            if default is not None:
                return default
            raise RecordingError(
                f"{name}:{header_line}: missing required metadata key {key!r} "
                f"(a line '# {key}: ...' before the header)"
            )
        v = _parse_number(metadata[key])
        if v is None:
            raise RecordingError(
                f"{name}:{key_lines[key]}: bad metadata value for {key}: {_show(metadata[key])} is not a number"
            )
        return v

    rate = number_key("sample_rate_hz")
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise RecordingError(
            f"{name}:{key_lines['sample_rate_hz']}: sample_rate_hz {metadata['sample_rate_hz']} is outside "
            f"{MIN_RATE_HZ:g}..{MAX_RATE_HZ:g} Hz"
        )
    ml = number_key("plate_ml_mm")
    ap = number_key("plate_ap_mm")
    feet = number_key("feet_ml_mm", DEFAULT_FEET_ML_MM)
    for key, value in (("plate_ml_mm", ml), ("plate_ap_mm", ap), ("feet_ml_mm", feet)):
        if not 0 < value < 5000:
            raise RecordingError(
                f"{name}:{key_lines.get(key, header_line)}: bad metadata value for {key}: "
                f"{value:g} is not a distance between 0 and 5000 mm"
            )
    if feet > ml:
        given = "" if "feet_ml_mm" in metadata else " (the default)"
        raise RecordingError(
            f"{name}:{key_lines.get('feet_ml_mm', header_line)}: bad metadata value for feet_ml_mm: "
            f"{feet:g}{given} is more than the cell spacing plate_ml_mm {ml:g}"
        )
    geometry = PlateGeometry(ml_mm=ml, ap_mm=ap, feet_ml_mm=feet)

    columns = [c.strip() for c in lines[header_index].strip().split(",")]
    seen: set[str] = set()
    for c in columns:
        if c in seen:
            raise RecordingError(f"{name}:{header_line}: column {c!r} appears twice in the header")
        seen.add(c)
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if missing:
        found = ", ".join(_show(c, 20) for c in columns)
        raise RecordingError(
            f"{name}:{header_line}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (the header has {found})"
        )
    n_fields = len(columns)

    # -- samples -----------------------------------------------------------------------------
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    for index in range(header_index + 1, len(lines)):
        stripped = lines[index].strip()
        if not stripped:
            continue
        fields = stripped.split(",")
        if len(fields) != n_fields:
            raise RecordingError(
                f"{name}:{index + 1}: expected {n_fields} fields as in the header (line {header_line}), "
                f"found {len(fields)}"
            )
        rows.append(fields)
        line_numbers.append(index + 1)
        if len(rows) > MAX_SAMPLES:
            raise RecordingError(f"{name}:{index + 1}: too many samples: at most {MAX_SAMPLES:,}")
    if len(rows) < MIN_SAMPLES:
        last = line_numbers[-1] if line_numbers else header_line
        found = "no samples" if not rows else f"only {len(rows)} sample"
        raise RecordingError(f"{name}:{last}: too few samples: {found} after the header, need at least {MIN_SAMPLES}")

    def numeric_column(col: str) -> tuple[np.ndarray | None, tuple[int, str] | None]:
        """The column's values, or the index of its first bad row and the problem."""
        j = columns.index(col)
        raw = [r[j] for r in rows]
        limit = math.inf if col == TIME_COLUMN else MAX_FORCE_N  # time: the analysis judges its scale
        try:
            values = np.array(raw, dtype=np.float64)  # fast path; same syntax as float()
            if np.all(np.abs(values) <= limit) and not any("_" in s for s in raw):
                return values, None
        except ValueError:
            pass
        for k, s in enumerate(raw):  # slow path: find the first bad value
            v = _parse_number(s)
            if v is None:
                what = "is not a finite number" if _parse_number_any(s) else "is not a number"
                return None, (k, f"column {col}: {_show(s.strip())} {what}")
            if abs(v) > limit:
                return None, (k, f"column {col}: {_show(s.strip())} is beyond any reading (at most {limit:g} N)")
        return np.array([float(s) for s in raw]), None  # pragma: no cover - numpy and float() agree

    parsed = {col: numeric_column(col) for col in REQUIRED_COLUMNS}
    problems = [bad for _, bad in parsed.values() if bad is not None]
    if problems:
        k, problem = min(problems)  # the first bad line in the file, whatever its column
        raise RecordingError(f"{name}:{line_numbers[k]}: {problem}")
    t = parsed[TIME_COLUMN][0]
    forces = np.column_stack([parsed[c][0] for c in FORCE_COLUMNS])
    dt = np.diff(t)
    if not np.all(dt > 0):
        k = int(np.argmax(~(dt > 0))) + 1
        raise RecordingError(
            f"{name}:{line_numbers[k]}: t_s {rows[k][columns.index(TIME_COLUMN)].strip()} is not after the "
            f"previous sample's {rows[k - 1][columns.index(TIME_COLUMN)].strip()} (line {line_numbers[k - 1]}); "
            "time must increase"
        )

    extra: dict[str, np.ndarray] = {}
    for j, col in enumerate(columns):
        if col in REQUIRED_COLUMNS:
            continue
        raw = [r[j].strip() for r in rows]
        if col == PELVIS_COLUMN:  # optional numeric column: an empty cell is "no sensor value"
            extra[col] = _optional_numeric_column(raw, col=col, name=name, line_numbers=line_numbers)
            continue
        try:
            extra[col] = np.array(raw, dtype=np.float64)
        except ValueError:
            extra[col] = np.array(raw, dtype=str)

    return Recording(
        t_s=t,
        forces_n=forces,
        sample_rate_hz=rate,
        geometry=geometry,
        metadata=metadata,
        extra=extra,
        name=name,
    )


# -- writing -----------------------------------------------------------------------------


def _format_number(value: float) -> str:
    """Shortest text that reads back as ``value``; integers without '.0'."""
    v = float(value)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def _format_extra(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _format_number(value) if math.isfinite(value) else repr(float(value))
    text = str(value)
    if any(ch in text for ch in ",\r\n"):
        raise ValueError(f"extra value {text!r} contains a comma or a line break")
    return text


def _no_value(value: Any) -> bool:
    """None or a non-finite number: an empty cell in an optional numeric column."""
    return value is None or (isinstance(value, (float, np.floating)) and not math.isfinite(value))


_DEFAULT_GEOMETRY = PlateGeometry()


class RecordingWriter:
    """Write a recording as it is made: the header first, then one row per frame.

    Parameters
    ----------
    target : str, Path or text file
        Where to write. A path is created (parents too) and closed by
        :meth:`close`; an open text stream is written to and left open.
    sample_rate_hz : float
        Nominal sampling rate in Hz, 10 to 1000.
    geometry : PlateGeometry
        Plate the forces come from.
    metadata : mapping of str to object, optional
        More ``# key: value`` lines (``protocol``, ``stance_side``, ``patient``,
        ``started_at``, ``calibration``, ...). Keys are words (letters, digits,
        ``_.-``); values must fit on one line.
    extra_columns : sequence of str
        Names of extra columns after the required ones (raw counts, flags).

    Notes
    -----
    ``t_s`` is written with 6 decimals and forces with 4 (see the module
    notes for why). Rows are buffered; :meth:`flush` pushes them to the file
    (the recorder calls it every second or so), and :meth:`close` flushes.

    Examples
    --------
    >>> buf = io.StringIO()
    >>> with RecordingWriter(buf, sample_rate_hz=80, geometry=PlateGeometry()) as w:
    ...     w.write_frame(0.0, [171.2, 168.9, 170.4, 172.0])
    >>> buf.getvalue().splitlines()[-1]
    '0.000000,171.2000,168.9000,170.4000,172.0000'
    """

    def __init__(
        self,
        target: str | Path | IO[str],
        *,
        sample_rate_hz: float,
        geometry: PlateGeometry = _DEFAULT_GEOMETRY,
        metadata: Mapping[str, object] | None = None,
        extra_columns: Iterable[str] = (),
    ) -> None:
        rate = float(sample_rate_hz)
        if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
            raise ValueError(
                f"sample_rate_hz must be between {MIN_RATE_HZ:g} and {MAX_RATE_HZ:g}, got {sample_rate_hz!r}")
        if not isinstance(geometry, PlateGeometry):
            raise ValueError(f"geometry must be a PlateGeometry, got {type(geometry).__name__}")
        self.extra_columns = tuple(extra_columns)
        for col in self.extra_columns:
            if not _KEY_RE.match(col) or col in REQUIRED_COLUMNS:
                raise ValueError(f"extra_columns: {col!r} is not a usable column name")
        if len(set(self.extra_columns)) != len(self.extra_columns):
            raise ValueError(f"extra_columns has a repeated name: {self.extra_columns!r}")
        header_keys = {
            "sample_rate_hz": _format_number(rate),
            "plate_ml_mm": _format_number(geometry.ml_mm),
            "plate_ap_mm": _format_number(geometry.ap_mm),
            "feet_ml_mm": _format_number(geometry.feet_ml_mm),
        }
        more: dict[str, str] = {}
        for key, value in (metadata or {}).items():
            if key in header_keys:
                continue  # the typed arguments win
            text = str(value)
            if not _KEY_RE.match(str(key)):
                raise ValueError(f"metadata key {key!r} must be a word (letters, digits, '_', '.', '-')")
            if "\n" in text or "\r" in text:
                raise ValueError(f"metadata value for {key!r} must fit on one line")
            more[str(key)] = text.strip()

        if isinstance(target, (str, Path)):
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] = open(path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
            self._owns = True
            self.name = str(path)
        else:
            self._file = target
            self._owns = False
            self.name = getattr(target, "name", "<stream>")
        self.sample_rate_hz = rate
        self.geometry = geometry
        self.rows_written = 0
        self._last_t: float | None = None
        self._closed = False
        head = [FORMAT_LINE]
        head += [f"# {k}: {v}" for k, v in header_keys.items()]
        head += [f"# {k}: {v}" for k, v in more.items()]
        head.append(",".join((*REQUIRED_COLUMNS, *self.extra_columns)))
        self._file.write("\n".join(head) + "\n")
        self._file.flush()  # the header is on disk from the start

    def write_frame(self, t_s: float, forces_n: Iterable[float], **extra: Any) -> None:
        """Append one sample.

        Parameters
        ----------
        t_s : float
            Time in s since the start, after the previous frame's.
        forces_n : sequence of 4 float
            ``fl, fr, bl, br`` in N, finite.
        **extra
            Values of the extra columns named at construction; a missing one
            is written empty.
        """
        if self._closed:
            raise ValueError("write_frame on a closed RecordingWriter")
        t = float(t_s)
        if not math.isfinite(t):
            raise ValueError(f"t_s must be finite, got {t_s!r}")
        if self._last_t is not None and not t > self._last_t:
            raise ValueError(f"t_s must increase: {t!r} after {self._last_t!r}")
        f = np.asarray(forces_n, dtype=np.float64)
        if f.shape != (4,) or not np.all(np.isfinite(f)):
            raise ValueError(f"forces_n must be 4 finite numbers (fl, fr, bl, br), got {forces_n!r}")
        unknown = set(extra) - set(self.extra_columns)
        if unknown:
            raise ValueError(f"unknown extra column(s) {sorted(unknown)}; declared: {list(self.extra_columns)}")
        fields = [f"{t:.{T_DECIMALS}f}"]
        fields += [f"{v:.{FORCE_DECIMALS}f}" for v in f.tolist()]
        fields += [_format_extra(extra[c]) if c in extra and not (c == PELVIS_COLUMN and _no_value(extra[c])) else ""
                   for c in self.extra_columns]
        self._file.write(",".join(fields) + "\n")
        self._last_t = t
        self.rows_written += 1

    def flush(self, *, sync: bool = False) -> None:
        """Push buffered rows to the file; with ``sync``, also to the disk (fsync), so a
        power cut cannot take them back (an SD card may otherwise hold them for many seconds)."""
        if not self._closed:
            self._file.flush()
            if sync and self._owns:
                os.fsync(self._file.fileno())

    def close(self) -> None:
        """Flush, and close the file if this writer opened it. Idempotent."""
        if self._closed:
            return
        self._file.flush()
        if self._owns:
            os.fsync(self._file.fileno())
            self._file.close()
        self._closed = True

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_recording(target: str | Path | IO[str], recording: Recording) -> None:
    """Write a whole :class:`Recording` (metadata, extra columns and all) with :class:`RecordingWriter`."""
    with RecordingWriter(
        target,
        sample_rate_hz=recording.sample_rate_hz,
        geometry=recording.geometry,
        metadata=recording.metadata,
        extra_columns=tuple(recording.extra),
    ) as writer:
        for i in range(recording.n_samples):
            writer.write_frame(
                recording.t_s[i],
                recording.forces_n[i],
                **{k: v[i] for k, v in recording.extra.items()},
            )


def recording_to_text(recording: Recording) -> str:
    """The file text of ``recording`` (what :func:`write_recording` would write)."""
    buf = io.StringIO()
    write_recording(buf, recording)
    return buf.getvalue()
