"""`balance-station record`: write a trial as a recording file (DESIGN.md section 4).

Two ways::

    balance-station record --trial ID -o FILE [--data-dir DIR]
        a stored trial (running, complete, incomplete or aborted), rebuilt
        from the database in the data folder;

    balance-station record --live --duration-s S -o FILE [--plate ...] [--patient CODE]
                           [--protocol NAME] [--stance-side {left,right}]
        the live plate (the configured one, or the simulated one) for S
        seconds. With --patient, the trial is also stored in the database for
        that patient (as the station stores a live trial), and the file is
        rebuilt from it; without, the frames go straight to the file. With a
        ``[pelvis]`` section the pelvis sensor is started too, and the file
        (and the stored trial) carry the column ``pelvis_obliquity_deg``.

Ctrl-C during a live recording stops it early and keeps what was recorded
(a stored trial is then marked ``aborted``). The live plate cannot be shared:
on the Pi, stop the station before recording the HX711 plate.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path
from typing import Any

from station.core.config import StationSettings, load_settings
from station.core.errors import UserError
from station.core.sides import SIDES
from station.storage.db import DATABASE_FILE, StorageError, open_database

__all__ = ["MAX_LIVE_DURATION_S", "add_arguments", "record_command"]

MAX_LIVE_DURATION_S = 3600.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``record`` subcommand's own options (``--plate``, ``--config``, ``--data-dir`` are the common ones)."""
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--trial", type=int, metavar="ID", help="a trial stored in the database")
    source.add_argument("--live", action="store_true", help="record the live plate (see --duration-s)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="the recording file to write")
    p.add_argument("--duration-s", type=float, default=None, metavar="S",
                   help=f"with --live: how long to record, in s (up to {MAX_LIVE_DURATION_S:g})")
    p.add_argument("--patient", default=None, metavar="CODE",
                   help="with --live: also store the trial in the database for this patient")
    p.add_argument("--protocol", default=None, metavar="NAME",
                   help="with --live: protocol name written in the file and the database (default: free)")
    p.add_argument("--stance-side", choices=SIDES, default=None, help="with --live: the stance leg")


def _settings(args: argparse.Namespace) -> StationSettings:
    return load_settings(getattr(args, "config", None), plate_source=getattr(args, "plate", None),
                         data_dir=getattr(args, "data_dir", None))


def record_command(args: argparse.Namespace) -> int:
    """Run ``balance-station record``; returns the exit code (0 written, 130 stopped early with Ctrl-C).

    Raises :class:`UserError` (one line) for bad options, an unknown trial or
    patient, a trial with too few frames, a plate that cannot be started.
    """
    trial = getattr(args, "trial", None)
    live = bool(getattr(args, "live", False))
    if (trial is None) == (not live):
        raise UserError("record: give either --trial ID or --live")
    output = getattr(args, "output", None)
    if output is None:
        raise UserError("record: give the file to write with -o FILE")
    output = Path(output)
    if output.is_dir():
        raise UserError(f"{output}: is a directory; -o needs a file name")
    if trial is not None:
        for option in ("duration_s", "patient", "protocol", "stance_side"):
            if getattr(args, option, None) is not None:
                raise UserError(f"record: --{option.replace('_', '-')} goes with --live, not with --trial")
        return _export_trial(_settings(args), int(trial), output)
    duration = getattr(args, "duration_s", None)
    if duration is None:
        raise UserError("record --live: give the duration with --duration-s S")
    if not 0 < float(duration) <= MAX_LIVE_DURATION_S:
        raise UserError(f"record --live: --duration-s must be more than 0 and at most {MAX_LIVE_DURATION_S:g} s, "
                        f"got {duration:g}")
    return _record_live(_settings(args), args, float(duration), output)


def _describe(recording: Any) -> str:
    return f"{recording.n_samples} frames, {recording.span_s:.1f} s"


def _export_trial(settings: StationSettings, trial_id: int, output: Path) -> int:
    from station.commands.run import say
    from station.core.recording import write_recording
    from station.storage.trials import trial_recording

    path = Path(settings.data_dir) / DATABASE_FILE
    if settings.database_url is None and not path.exists():  # a server database is not in the data folder
        raise StorageError(f"{path}: no database (no trial has been stored in this data folder; see --data-dir)")
    with open_database(settings.database_url, data_dir=settings.data_dir) as db, db.sessions() as session:
        try:
            recording = trial_recording(session, trial_id)
        except StorageError as exc:
            raise StorageError(f"{db.name}: {exc}") from None
    write_recording(output, recording)
    meta = recording.metadata
    side = f", {meta['stance_side']}" if "stance_side" in meta else ""
    say(f"trial {trial_id} ({meta.get('protocol')}{side}, {meta.get('patient')}, {meta.get('trial_state')}): "
        f"{_describe(recording)} written to {output}")
    return 0


def _wait(live: Any, acq: Any, duration_s: float, stop: threading.Event) -> None:
    deadline = time.monotonic() + duration_s
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        stop.wait(min(left, 0.1))
        if acq.error:
            raise UserError(f"the plate stopped during the recording: {acq.error}")


def _settle(live: Any, *, timeout_s: float = 5.0, lag_s: float = 0.2) -> None:
    """Wait until the live station has caught up with the plate (frames queued while the plate and the
    calibration were set up are not part of the recording). Live frames are stamped with ``time.monotonic()``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sample = live.latest()
        if sample is not None and time.monotonic() - sample.frame.t_s < lag_s:
            return
        time.sleep(0.02)


def _record_live(settings: StationSettings, args: argparse.Namespace, duration_s: float, output: Path,
                 *, stop: threading.Event | None = None) -> int:
    from station.clinic.recorder import LiveRecorder
    from station.commands.run import choose_calibration, say, start_pelvis, start_plate
    from station.core.recording import read_recording
    from station.live.pipeline import LiveStation
    from station.signal.forces import ForcePipeline
    from station.storage.live_writer import LiveTrialWriter
    from station.storage.models import TrialState
    from station.storage.patients import get_patient
    from station.storage.trials import write_trial_recording

    stop = stop or threading.Event()
    patient = getattr(args, "patient", None)
    protocol = getattr(args, "protocol", None)
    side = getattr(args, "stance_side", None)
    db = None
    if patient is not None:  # before the plate starts: a wrong code is said at once
        db = open_database(settings.database_url, data_dir=settings.data_dir, station_id=settings.station_id)
        with db.sessions() as session:
            try:
                get_patient(session, patient)
            except UserError:
                db.close()
                raise
    acq = None
    live = None
    pelvis = None
    interrupted = False
    try:
        acq = start_plate(settings)
        calibration = choose_calibration(settings, acq)
        geometry = settings.plate.geometry()
        pipeline = ForcePipeline(calibration, geometry, occupancy_n=settings.plate.occupancy_n)
        live = LiveStation(acq, pipeline, auto_rezero=False)  # nothing re-zeroes during a recording
        live.start()
        pelvis = start_pelvis(settings, synthetic=live.synthetic)  # [pelvis]: the column pelvis_obliquity_deg
        _settle(live)
        if db is not None:
            trial = LiveTrialWriter.begin(live, db, patient_code=patient, protocol=protocol or "free",
                                          stance_side=side, settings={"duration_s": duration_s}, pelvis=pelvis)
            say(f"recording trial {trial.trial_id} of {patient} for {duration_s:g} s")
            try:
                _wait(live, acq, duration_s, stop)
            except KeyboardInterrupt:
                interrupted = True
            except UserError as exc:  # the plate stopped: keep what was stored, marked incomplete
                trial.stop(TrialState.INCOMPLETE, detail=str(exc))
                raise
            state = TrialState.ABORTED if interrupted else TrialState.COMPLETE
            trial.stop(state, detail="stopped with Ctrl-C" if interrupted else "")
            with db.sessions() as session:
                recording = write_trial_recording(session, trial.trial_id, output)
            say(f"trial {trial.trial_id} ({state.value}) stored; {_describe(recording)} written to {output}")
        else:
            metadata = {k: v for k, v in (("protocol", protocol), ("stance_side", side)) if v}
            recorder = LiveRecorder(live, output, geometry=geometry, metadata=metadata, pelvis=pelvis)
            say(f"recording the plate for {duration_s:g} s")
            try:
                _wait(live, acq, duration_s, stop)
            except KeyboardInterrupt:
                interrupted = True
            finally:
                recorder.stop()
            if recorder.frames_written < 2:
                raise UserError(f"{output}: the plate gave {recorder.frames_written} frames; nothing usable recorded")
            say(f"{_describe(read_recording(output))} written to {output}")
    finally:
        if pelvis is not None:
            pelvis.stop()
        if live is not None:
            live.stop()
        if acq is not None:
            acq.stop()
        if db is not None:
            db.close()
    if interrupted:
        say("stopped early with Ctrl-C; what was recorded is kept")
        return 130
    return 0
