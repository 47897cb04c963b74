"""The JSON API's request and response models (DESIGN.md section 6), a family per entity.

- session: :class:`LoginRequest`, :class:`LoginResult`, :class:`UserPublic`
- plate: :class:`PlateStatus`
- patients: :class:`PatientBase` -> :class:`PatientCreate`, :class:`PatientUpdate`, :class:`PatientPublic`
- live tests: :class:`TestStart`, :class:`TestStarted`, :class:`LiveTrial`, :class:`AbortResult`
- trials: :class:`TrialPublic`, :class:`TrialUpdate`
- errors: :class:`Problem` (``{"detail": "..."}``, what every 4xx/5xx of the API carries)

Field names carry units (``_s``, ``_hz``, ``_cm``) as everywhere in the station.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from station.storage.models import PATIENT_CODE_MAX_LEN, AffectedSide, Grade, Sex, StanceSide, TrialState
from station.storage.values import HEIGHT_RANGE_CM, MIN_BIRTH_YEAR, validate_patient_code

__all__ = [
    "AbortResult",
    "Health",
    "LiveTrial",
    "LiveTrialEvent",
    "LoginRequest",
    "LoginResult",
    "LogoutResult",
    "PatientBase",
    "PatientCode",
    "PatientCreate",
    "PatientPublic",
    "PatientUpdate",
    "PlateStatus",
    "Problem",
    "DrillStart",
    "QuietStanceStart",
    "SingleLegStart",
    "TestStart",
    "TestStarted",
    "TrialPublic",
    "TrialUpdate",
    "UserPublic",
]

#: a pseudonymous patient code (``P-001``): 2 to 32 letters, digits, '-', '_', at least one digit, never a name
#: (the pattern is documented in the schema; the validator checks it, with a message that says what is wrong)
PATIENT_CODE_PATTERN = r"^(?:[0-9]|[A-Za-z][A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]*$"
PatientCode = Annotated[
    str,
    Field(min_length=2, max_length=PATIENT_CODE_MAX_LEN, examples=["P-001"],
          description="pseudonymous patient code: letters, digits, '-' and '_', with a digit; never a name",
          json_schema_extra={"pattern": PATIENT_CODE_PATTERN}),
    AfterValidator(validate_patient_code),
]
#: up to this year (as the program started; the storage checks the year of the day too)
BirthYear = Annotated[int, Field(ge=MIN_BIRTH_YEAR, le=dt.date.today().year, examples=[1956])]
HeightCm = Annotated[float, Field(ge=HEIGHT_RANGE_CM[0], le=HEIGHT_RANGE_CM[1], examples=[172.0])]
Notes = Annotated[str, Field(max_length=10_000)]


class Problem(BaseModel):
    """An error: what went wrong, in one line."""

    detail: str | list[Any]


class Health(BaseModel):
    status: str


# -- session --------------------------------------------------------------------------------------


class LoginRequest(BaseModel):
    username: str = Field(max_length=256)
    password: SecretStr = Field(max_length=1024)


class LoginResult(BaseModel):
    """Send ``csrf_token`` back in the ``X-CSRF-Token`` header of every state-changing request."""

    csrf_token: str
    username: str
    expires_at: dt.datetime


class LogoutResult(BaseModel):
    logged_out: bool


class UserPublic(BaseModel):
    username: str
    csrf_token: str
    last_login_at: dt.datetime | None = None


# -- plate ----------------------------------------------------------------------------------------


class StorageStatus(BaseModel):
    """Where the station's trials go: the database, or the spool while the database is unreachable."""

    online: bool | None = Field(description="the database answered at the last check (null: not checked yet)")
    waiting_trials: int = Field(description="trials recorded while the database was unreachable, not uploaded yet")
    message: str = Field(description='"offline: N trials waiting to upload", "uploading: N trials waiting" or ""')
    free_trial_ids: int = Field(description="trial ids reserved for this station's offline trials, unused")
    notices: list[dict[str, Any]] = Field(default=[], description="what past uploads changed (patient code "
                                          "conflicts), newest first: {at, message}")


class PelvisStatus(BaseModel):
    """The pelvis sensor beside the plate (docs/pelvis-sensor.md)."""

    sensor: str = Field(description="simulated or icm42688")
    fault: str | None = Field(description="the last fault (unplugged, silent); null while it works")
    obliquity_deg: float | None = Field(description="the newest obliquity, degrees, positive = the patient's right "
                                                    "side higher; null before the mounting calibration or in a fault")


class PlateStatus(BaseModel):
    """The live state of the plate."""

    plate_source: str
    plate_description: str
    synthetic: bool
    acquiring: bool
    nominal_rate_hz: float | None
    sample_rate_hz: float | None
    frames: int
    dropped_frames: int
    glitch_frames: int
    discarded_reads: int
    faults: int
    last_fault: str
    occupied: bool
    fz_n: float | None
    body_weight_kg: float | None
    cop_ml_mm: float | None
    cop_ap_mm: float | None
    glitch: bool
    zero_drift_n: list[float] | None
    zero_drift_total_n: float | None
    rezero_count: int
    last_rezero_at: str | None
    calibration_max_cop_error_mm: float | None
    calibration_max_force_error_pct: float | None
    calibration_date: str | None = Field(description="when the calibration was made; null for a built-in one "
                                          "(the simulator's, or nominal gains on an uncalibrated plate)")
    calibration_age_days: float | None
    calibration_source: str
    calibration_note: str
    warnings: list[str]
    started_at: str
    station_id: str
    storage: StorageStatus | None = Field(default=None, description="the station's spool (null without one): "
                                          "is the database answering, trials waiting to upload")
    pelvis: PelvisStatus | None = Field(None, description="the pelvis sensor; null without one ([pelvis] settings)")


# -- patients -------------------------------------------------------------------------------------


class PatientBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    birth_year: BirthYear | None = None
    sex: Sex | None = None
    height_cm: HeightCm | None = None
    affected_side: AffectedSide | None = None
    notes: Notes = ""


class PatientCreate(PatientBase):
    """A new patient: the pseudonymous code and, optionally, what the norms and reports use."""

    code: PatientCode


class PatientUpdate(BaseModel):
    """Fields to change; a field left out is kept, a field given as null is cleared. The code never changes."""

    model_config = ConfigDict(extra="forbid")

    birth_year: BirthYear | None = None
    sex: Sex | None = None
    height_cm: HeightCm | None = None
    affected_side: AffectedSide | None = None
    notes: Notes | None = None


class PatientPublic(BaseModel):
    code: str
    birth_year: int | None
    sex: Sex | None
    height_cm: float | None
    affected_side: AffectedSide | None
    notes: str
    created_at: dt.datetime
    programme: dict[str, Any] | None = None
    n_trials: int = 0
    last_trial_at: dt.datetime | None = None
    offline: bool = Field(default=False, description="made while the database was unreachable: kept on this "
                          "station, uploaded when it answers (its code may change then, see the status's notices)")


# -- live tests -----------------------------------------------------------------------------------


class _TestStartBase(BaseModel):
    __test__ = False  # not a pytest test class
    model_config = ConfigDict(extra="forbid")

    patient: PatientCode
    params: dict[str, Any] | None = Field(None, description="the protocol's own settings (e.g. end_on_failure)")


class SingleLegStart(_TestStartBase):
    """The single-leg (Trendelenburg) test, standing on ``stance_side``."""

    protocol: Literal["single-leg"]
    stance_side: StanceSide


class QuietStanceStart(_TestStartBase):
    """Quiet stance on both feet."""

    protocol: Literal["quiet-stance"]
    stance_side: None = None


class DrillStart(_TestStartBase):
    """A weight-shift drill, ``drill:<name>`` (``drill:reach``, ``drill:symmetry``...)."""

    protocol: str = Field(pattern=r"^drill:[a-z][a-z0-9-]{0,30}$", examples=["drill:reach"])
    stance_side: StanceSide | None = None


#: ``POST /tests``: ``{"patient", "protocol", "stance_side", "params"}``
TestStart = Annotated[SingleLegStart | QuietStanceStart | DrillStart, Field(union_mode="left_to_right")]


class TestStarted(BaseModel):
    __test__ = False

    trial_id: int


class LiveTrialEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: str
    t_s: float | None = None
    message: str = ""


class LiveTrial(BaseModel):
    """The running trial as the station sees it (everybody sees the same: screen, button, web)."""

    model_config = ConfigDict(extra="allow")

    running: bool
    trial_id: int | None = None
    patient: str | None = None
    protocol: str | None = None
    stance_side: str | None = None
    state: str = ""
    instruction: str = ""
    elapsed_s: float | None = None
    events: list[LiveTrialEvent] = []
    result: dict[str, Any] | None = None
    error: str = ""


class AbortResult(BaseModel):
    aborted: bool


# -- trials ---------------------------------------------------------------------------------------


class TrialPublic(BaseModel):
    """One trial; ``metrics`` as in the ``analyze`` output (DESIGN.md section 5), null until scored."""

    trial_id: int
    patient: str
    session_id: int
    protocol: str
    stance_side: StanceSide | None
    state: TrialState
    state_detail: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration_s: float
    n_frames: int
    frames_dropped: int
    sample_rate_hz: float
    plate_source: str
    grade: Grade
    notes: str
    settings: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    calibration: str | None = None
    station_id: str | None = Field(None, description="the station that recorded the trial (its station_id setting); "
                                                     "null for trials stored before stations were recorded")


class TrialUpdate(BaseModel):
    """The clinician's grade and notes; what is left out is kept."""

    model_config = ConfigDict(extra="forbid")

    grade: Grade | None = None
    notes: Notes | None = None
