"""JSON API under /api/v1 (DESIGN.md section 6)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from webui.deps import LiveDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["api"])


class Health(BaseModel):
    status: str


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
    calibration_date: str
    calibration_age_days: float
    calibration_source: str
    calibration_note: str
    warnings: list[str]
    started_at: str
    station_id: str


@router.get("/health", response_model=Health)
def health() -> Any:
    return {"status": "ok"}


@router.get("/status", response_model=PlateStatus)
def status(live: LiveDep, settings: SettingsDep) -> Any:
    return {**live.status(calibration_max_age_days=settings.calibration_max_age_days),
            "station_id": settings.station_id}
