"""Exports: the trials' scores as named rows, and the scores CSV built from them.

Scores CSV
    UTF-8, one header row, one row per trial, oldest first. The first columns
    describe the trial (:data:`TRIAL_COLUMNS`: id, patient code, ISO 8601
    start and end in the station's time zone, protocol, side, state, grade,
    recorded length, frames, plate, the station that recorded it); then one
    column per metric, named as in the ``analyze`` output with nested fields
    joined by a dot (``cop.path_length_mm``) so the units stay in the names;
    the contract's metrics (:data:`METRIC_COLUMNS`) always, any other metric
    found in the exported trials after them. A list (``touchdowns``,
    ``warnings``) becomes its count (``touchdowns_count``, ``warnings_count``).
    Booleans are ``true``/``false``, unknown values empty; text that a
    spreadsheet would run as a formula gets a leading ``'``. Free-text notes
    are not exported (they might hold a name). The file is made in chunks:
    10,000 trials take about a second.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from station.storage.models import ClinicSession, Patient, Trial, TrialState
from station.storage.trials import trial_filters

__all__ = [
    "METRIC_COLUMNS",
    "SCORE_ROW_FIELDS",
    "TRIAL_COLUMNS",
    "ScoreRow",
    "flatten_metrics",
    "iter_trial_scores",
    "metric_columns",
    "recording_name",
    "scores_csv",
]


class ScoreRow(NamedTuple):
    """One trial as the exports read it: no ORM object, enumerations as their values, times aware UTC."""

    trial_id: int
    patient: str
    session_id: int
    protocol: str
    stance_side: str | None
    state: str
    grade: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration_s: float | None
    n_frames: int
    frames_dropped: int
    sample_rate_hz: float | None
    plate_source: str | None
    station_id: str | None
    metrics: dict[str, Any] | None


#: the fields of a :class:`ScoreRow`
SCORE_ROW_FIELDS = ScoreRow._fields

#: the trial's own columns, first in every scores file
TRIAL_COLUMNS = ("trial_id", "patient", "started_at", "ended_at", "protocol", "stance_side", "state", "grade",
                 "recorded_s", "n_frames", "frames_dropped", "plate_sample_rate_hz", "plate_source", "station_id")
#: metrics of the analyze contract (DESIGN.md section 5), always present, in this order
METRIC_COLUMNS = (
    "sample_rate_hz", "duration_s", "n_samples", "body_weight_n",
    "onset_s", "hold_time_s", "completed", "touchdowns_count",
    "support.mean_pct_bw", "support.peak_pct_bw", "support.time_s", "ml_offset_mm",
    "cop.path_length_mm", "cop.mean_velocity_mm_s", "cop.ml_range_mm", "cop.ap_range_mm",
    "cop.ml_rms_mm", "cop.ap_rms_mm", "cop.ellipse95_area_mm2",
    # the pelvis sensor (issue 14): empty for a trial recorded without it
    "pelvis.drop_mean_deg", "pelvis.drop_max_deg", "pelvis.sign",
)
#: metric keys that repeat a trial column
_SKIPPED_METRICS = frozenset({"protocol", "stance_side"})
#: any other metric named like a trial column is exported as ``metric.<name>``: every header is unique
_TRIAL_COLUMN_SET = frozenset(TRIAL_COLUMNS)
_CHUNK_ROWS = 500
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

def iter_trial_scores(session: Session, patient_code: str | None = None, *,
                      state: TrialState | str | None = None, started_from: dt.datetime | None = None,
                      started_before: dt.datetime | None = None, batch: int = 1000) -> Iterator[ScoreRow]:
    """Trials as :class:`ScoreRow` tuples, oldest first, fetched ``batch`` at a time.

    For exports: no ORM objects, so 10,000 trials stream in a fraction of a second.
    Enumerations come as their values, times as aware UTC datetimes, ``metrics`` as plain data.
    """
    query = (select(Trial.id, Patient.code, Trial.session_id, Trial.protocol, Trial.stance_side, Trial.state,
                    Trial.grade, Trial.started_at, Trial.ended_at, Trial.duration_s, Trial.n_frames,
                    Trial.frames_dropped, Trial.sample_rate_hz, Trial.plate_source, Trial.station_id, Trial.metrics)
             .join(ClinicSession, Trial.session_id == ClinicSession.id)
             .join(Patient, ClinicSession.patient_id == Patient.id)
             .order_by(Trial.started_at, Trial.id))
    query = trial_filters(session, query, patient_code, state, started_from, started_before)
    result = session.execute(query.execution_options(yield_per=batch))
    for row in result:
        (trial_id, code, session_id, protocol, side, state_, grade, started, ended, duration, n, dropped, rate,
         source, station, metrics) = row
        yield ScoreRow(trial_id, code, session_id, protocol, side.value if side is not None else None, state_.value,
                       grade.value, started, ended, duration, n, dropped, rate, source, station, metrics)


def flatten_metrics(metrics: Mapping[str, Any] | None, prefix: str = "", out: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    """``{"cop": {"path_length_mm": 1}, "touchdowns": [..]}``
    -> ``{"cop.path_length_mm": 1, "touchdowns_count": 2}``."""
    out = {} if out is None else out
    if not metrics:
        return out
    for key, value in metrics.items():
        if not prefix and key in _SKIPPED_METRICS:
            continue
        name = prefix + key
        if not prefix and name in _TRIAL_COLUMN_SET:  # a drill's own "state": not a second "state" column
            name = "metric." + name
        kind = type(value)
        if kind is float or kind is int or kind is str or kind is bool or value is None:
            out[name] = value
        elif kind is dict or isinstance(value, Mapping):
            flatten_metrics(value, name + ".", out)
        elif kind is list or kind is tuple:
            out[name + "_count"] = len(value)
        else:
            out[name] = value
    return out


def _cell(value: Any) -> str:
    kind = type(value)
    if kind is float:
        return repr(value)
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    text = str(value)
    if text.startswith(_FORMULA_START):  # a spreadsheet must not run it as a formula
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def _when(value: dt.datetime | None) -> str:
    return value.astimezone().isoformat(timespec="seconds") if value is not None else ""


def metric_columns(flat_metrics: Iterable[Mapping[str, Any]]) -> list[str]:
    """The contract's metric columns, then every other (flattened) metric found, in the order first seen."""
    columns = dict.fromkeys(METRIC_COLUMNS)
    for flat in flat_metrics:
        columns.update(dict.fromkeys(flat))
    return list(columns)


class _Lines:
    """A file-like target for csv.writer that hands back what was written."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts.clear()
        return text


def scores_csv(sessions: sessionmaker[Session], patient: str | None, start: dt.datetime | None,
               end: dt.datetime | None) -> Iterator[str]:
    """The scores file, a chunk of rows at a time.

    The trials are read (a batch at a time) and their metrics flattened first,
    since the header must name every metric; then the rows are written out.
    Each trial is decoded once: the whole takes about a second for 10,000
    trials, and about 2 kB of memory per trial while it runs.
    """
    with sessions() as session:
        trials = [(row, flatten_metrics(row.metrics))
                  for row in iter_trial_scores(session, patient, started_from=start, started_before=end)]
    columns = metric_columns(flat for _, flat in trials)
    out = _Lines()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TRIAL_COLUMNS + tuple(columns))
    yield out.take()
    trials.reverse()  # popped from the end: each row's memory is freed once written
    n = 0
    while trials:
        row, flat = trials.pop()
        writer.writerow([row.trial_id, row.patient, _when(row.started_at), _when(row.ended_at), _cell(row.protocol),
                         row.stance_side or "", row.state, row.grade, _cell(row.duration_s), row.n_frames,
                         row.frames_dropped, _cell(row.sample_rate_hz), _cell(row.plate_source),
                         _cell(row.station_id)]
                        + [_cell(flat.get(c)) for c in columns])
        n += 1
        if n % _CHUNK_ROWS == 0:
            yield out.take()
    yield out.take()


def _filename_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def recording_name(code: str, row: ScoreRow) -> str:
    """The file name of a trial's recording in a patient's export:
    ``<code>-trial-<id>-<protocol>[-<side>]-<date>.csv`` (local time)."""
    parts = [code, f"trial-{row.trial_id}", _filename_part(row.protocol)]
    if row.stance_side:
        parts.append(row.stance_side)
    parts.append(row.started_at.astimezone().strftime("%Y%m%d-%H%M%S"))
    return "-".join(parts) + ".csv"
