"""Exports: ``GET /export/scores.csv`` (one row per trial) and ``GET /export/patient/{code}.zip``.

Scores CSV
    One row per trial, one column per metric (units in the names), built in
    :mod:`station.storage.exports` (:func:`~station.storage.exports.scores_csv`).

Patient ZIP
    ``<code>/scores.csv`` and ``<code>/recordings/<code>-trial-<id>-<protocol>[-<side>]-<date>.csv``
    (DESIGN.md section 4) for every trial with frames; ``<code>/README.txt``
    says what is in it and which trials had no recording.

Every export is written to the audit log (who, when, from where, what).
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
import zipfile
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response, StreamingResponse

from station import __version__
from station.storage.accounts import audit
from station.storage.db import StorageError
from station.storage.exports import iter_trial_scores, recording_name, scores_csv
from station.storage.patients import get_patient
from station.storage.trials import write_trial_recording
from webui.auth import client_address, write_session
from webui.deps import CurrentUser, DatabaseDep, SessionDep
from webui.models import PatientCode, Problem
from webui.routes.trials import DateFrom, DateTo, day_range

router = APIRouter(prefix="/export", tags=["export"])

CSV_RESPONSE = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "the CSV file"},
                404: {"model": Problem, "description": "no patient with that code"}}


def _describe(patient: str | None, date_from: dt.date | None, date_to: dt.date | None) -> str:
    parts = [f"patient {patient}" if patient else "all patients"]
    if date_from:
        parts.append(f"from {date_from}")
    if date_to:
        parts.append(f"to {date_to}")
    return " ".join(parts)


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
    return StreamingResponse(scores_csv(db.sessions, code, start, end), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})


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
        zf.writestr(f"{code}/scores.csv", "".join(scores_csv(db.sessions, code, None, None)))
        for row in iter_trial_scores(session, code):
            buffer = io.StringIO()
            try:
                write_trial_recording(session, row.trial_id, buffer)
            except StorageError as exc:
                skipped.append(f"trial {row.trial_id}: {exc}")
                continue
            zf.writestr(f"{code}/recordings/{recording_name(code, row)}", buffer.getvalue())
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
