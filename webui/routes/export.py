"""Exports: ``GET /export/scores.csv`` (one row per trial) and ``GET /export/patient/{code}.zip``.

Scores CSV
    UTF-8, one header row, one row per trial, oldest first. The first columns
    describe the trial (:data:`TRIAL_COLUMNS`: id, patient code, ISO 8601
    start and end in the station's time zone, protocol, side, state, grade,
    recorded length, frames, plate, the station that recorded it); then one column per metric, named as in the
    ``analyze`` output with nested fields joined by a dot
    (``cop.path_length_mm``) so the units stay in the names; the contract's
    metrics (:data:`METRIC_COLUMNS`) always, any other metric found in the
    exported trials after them. A list (``touchdowns``, ``warnings``) becomes
    its count (``touchdowns_count``, ``warnings_count``).
    Booleans are ``true``/``false``, unknown values empty. Free-text notes are
    not exported (they might hold a name). The file is streamed in chunks:
    10,000 trials take about a second.

Patient ZIP
    ``<code>/scores.csv`` and ``<code>/recordings/<code>-trial-<id>-<protocol>[-<side>]-<date>.csv``
    (DESIGN.md section 4) for every trial with frames; ``<code>/README.txt``
    says what is in it and which trials had no recording.

Every export is written to the audit log (who, when, from where, what).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response, StreamingResponse

from station import __version__
from station.storage.accounts import audit
from station.storage.db import Database, StorageError
from station.storage.exports import iter_trial_scores
from station.storage.patients import get_patient
from station.storage.trials import write_trial_recording
from webui.auth import client_address, write_session
from webui.deps import CurrentUser, DatabaseDep, SessionDep
from webui.models import PatientCode, Problem
from webui.routes.trials import DateFrom, DateTo, day_range

router = APIRouter(prefix="/export", tags=["export"])

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
)
#: metric keys that repeat a trial column
_SKIPPED_METRICS = frozenset({"protocol", "stance_side"})
#: any other metric named like a trial column is exported as ``metric.<name>``: every header is unique
_TRIAL_COLUMN_SET = frozenset(TRIAL_COLUMNS)
_CHUNK_ROWS = 500
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

CSV_RESPONSE = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "the CSV file"},
                404: {"model": Problem, "description": "no patient with that code"}}


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


def scores_csv(db: Database, patient: str | None, start: dt.datetime | None, end: dt.datetime | None
               ) -> Iterator[str]:
    """The scores file, a chunk of rows at a time.

    The trials are read (a batch at a time) and their metrics flattened first,
    since the header must name every metric; then the rows are written out.
    Each trial is decoded once: the whole takes about a second for 10,000
    trials, and about 2 kB of memory per trial while it runs.
    """
    with db.sessions() as session:
        trials = [(row[:-1], flatten_metrics(row[-1]))
                  for row in iter_trial_scores(session, patient, started_from=start, started_before=end)]
    columns = metric_columns(flat for _, flat in trials)
    out = _Lines()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TRIAL_COLUMNS + tuple(columns))
    yield out.take()
    trials.reverse()  # popped from the end: each row's memory is freed once written
    n = 0
    while trials:
        (trial_id, code, _session_id, protocol, side, state, grade, started, ended, duration, n_frames, dropped,
         rate, source, station), flat = trials.pop()
        writer.writerow([trial_id, code, _when(started), _when(ended), _cell(protocol), side or "", state, grade,
                         _cell(duration), n_frames, dropped, _cell(rate), _cell(source), _cell(station)]
                        + [_cell(flat.get(c)) for c in columns])
        n += 1
        if n % _CHUNK_ROWS == 0:
            yield out.take()
    yield out.take()


def _describe(patient: str | None, date_from: dt.date | None, date_to: dt.date | None) -> str:
    parts = [f"patient {patient}" if patient else "all patients"]
    if date_from:
        parts.append(f"from {date_from}")
    if date_to:
        parts.append(f"to {date_to}")
    return " ".join(parts)


def _filename_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


@router.get("/scores.csv", response_class=StreamingResponse, summary="Scores: one row per trial, one column per metric",
            responses=CSV_RESPONSE)
def export_scores(request: Request, session: SessionDep, db: DatabaseDep, user: CurrentUser,
                  patient: Annotated[PatientCode | None, Query(description="only this patient's trials")] = None,
                  date_from: DateFrom = None, date_to: DateTo = None) -> StreamingResponse:
    start, end = day_range(date_from, date_to)
    code = get_patient(session, patient).code if patient is not None else None
    with write_session(request) as ws:
        audit(ws, "export", username=user.username, client=client_address(request),
              detail=f"scores.csv: {_describe(code, date_from, date_to)}")
    name = f"scores-{code}.csv" if code else "scores.csv"
    return StreamingResponse(scores_csv(db, code, start, end), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})


def _recording_name(code: str, row: tuple[Any, ...]) -> str:
    trial_id, _code, _sid, protocol, side, *_rest = row
    started: dt.datetime = row[7]
    parts = [code, f"trial-{trial_id}", _filename_part(protocol)]
    if side:
        parts.append(side)
    parts.append(started.astimezone().strftime("%Y%m%d-%H%M%S"))
    return "-".join(parts) + ".csv"


def _chunks(fh: Any, size: int = 1 << 16) -> Iterator[bytes]:
    try:
        while chunk := fh.read(size):
            yield chunk
    finally:
        fh.close()


@router.get("/patient/{code}.zip", response_class=StreamingResponse,
            summary="Every trial's recording of a patient, and the scores",
            responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "the ZIP file"},
                       404: {"model": Problem, "description": "no patient with that code"}})
def export_patient(code: Annotated[PatientCode, PathParam(description="the patient's pseudonymous code")],
                   request: Request, session: SessionDep, db: DatabaseDep, user: CurrentUser) -> Response:
    patient = get_patient(session, code)
    code = patient.code
    spool = tempfile.SpooledTemporaryFile(max_size=32 << 20)
    skipped: list[str] = []
    n = 0
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr(f"{code}/scores.csv", "".join(scores_csv(db, code, None, None)))
        for row in iter_trial_scores(session, code):
            buffer = io.StringIO()
            try:
                write_trial_recording(session, row[0], buffer)
            except StorageError as exc:
                skipped.append(f"trial {row[0]}: {exc}")
                continue
            zf.writestr(f"{code}/recordings/{_recording_name(code, row)}", buffer.getvalue())
            n += 1
        readme = [f"Balance station {__version__}: export of patient {code}",
                  f"made {dt.datetime.now().astimezone().isoformat(timespec='seconds')} by {user.username}", "",
                  "scores.csv: one row per trial, one column per metric (units in the names).",
                  f"recordings/: {n} recording file(s), the format of DESIGN.md section 4."]
        if skipped:
            readme += ["", "Trials without a recording:"] + [f"- {s}" for s in skipped]
        zf.writestr(f"{code}/README.txt", "\n".join(readme) + "\n")
    size = spool.tell()
    spool.seek(0)
    with write_session(request) as ws:
        audit(ws, "export", username=user.username, client=client_address(request),
              detail=f"patient {code}.zip: {n} recording(s)")
    return StreamingResponse(_chunks(spool), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{code}.zip"', "Content-Length": str(size),
        "Cache-Control": "no-store"})
