"""Storage: patients, clinic visits, trials and their raw frames, in SQLite (WAL) through SQLAlchemy 2.

- :mod:`station.storage.db`: the engine from a URL (default
  ``sqlite:///<data_dir>/station.db``), the SQLite set-up, the session factory;
- :mod:`station.storage.models`: the tables;
- :mod:`station.storage.blocks`: the binary layout of stored frames;
- :mod:`station.storage.schema`: schema versions and upgrades that never lose data;
- :mod:`station.storage.trials`: repository functions and the writer of a running trial;
- :mod:`station.storage.live_writer`: stores a live trial while it runs;
- :mod:`station.storage.spool`: trials, frames and new patients kept on the station while a clinic
  database is unreachable, uploaded once when it answers;
- :mod:`station.commands.record`: the ``balance-station record`` command.

Typical use::

    db = open_database(data_dir=settings.data_dir)   # creates or upgrades the schema
    with db.sessions() as s:
        recover_interrupted(s)                          # once, at station start-up
    live_trial = LiveTrialWriter.begin(live, db, patient_code="P-001", protocol="single-leg",
                                       stance_side="left")
    ...
    live_trial.stop("complete", metrics)
    with db.sessions() as s:
        write_trial_recording(s, live_trial.trial_id, "trial.csv")
"""

from station.storage.db import Database, StorageError, default_database_url, open_database, write_session
from station.storage.live_writer import LiveTrialWriter
from station.storage.models import (
    AffectedSide,
    ClinicSession,
    FrameBlock,
    Grade,
    Patient,
    SchemaVersion,
    Sex,
    StanceSide,
    Trial,
    TrialState,
)
from station.storage.patients import create_patient, get_patient, list_patients
from station.storage.schema import SchemaError, ensure_schema, latest_version
from station.storage.trials import (
    TrialWriter,
    get_trial,
    list_trials,
    recover_interrupted,
    set_grade,
    set_metrics,
    trial_recording,
    trial_summary,
    write_trial_recording,
)
from station.storage.values import Conflict, InvalidValue, NotFound, validate_patient_code
from station.storage.visits import open_visit, todays_visit

__all__ = [
    "AffectedSide",
    "ClinicSession",
    "Conflict",
    "Database",
    "FrameBlock",
    "Grade",
    "InvalidValue",
    "LiveTrialWriter",
    "NotFound",
    "Patient",
    "SchemaError",
    "SchemaVersion",
    "Sex",
    "StanceSide",
    "StorageError",
    "Trial",
    "TrialState",
    "TrialWriter",
    "create_patient",
    "default_database_url",
    "ensure_schema",
    "get_patient",
    "get_trial",
    "latest_version",
    "list_patients",
    "list_trials",
    "open_database",
    "open_visit",
    "recover_interrupted",
    "set_grade",
    "set_metrics",
    "todays_visit",
    "trial_recording",
    "trial_summary",
    "validate_patient_code",
    "write_session",
    "write_trial_recording",
]
