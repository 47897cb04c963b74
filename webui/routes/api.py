"""The JSON API under /api/v1 (DESIGN.md section 6), assembled from the route modules.

Public: ``GET /health``, ``POST /login``. Everything else is on
:data:`private`, whose routes all depend on
:func:`~webui.deps.get_current_user` (401 without a login; 403 on a
state-changing request without the ``X-CSRF-Token`` header), including the
OpenAPI schema itself.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Depends, Request

from station.storage.disk import disk_warning
from webui.deps import LiveDep, OptionalSpool, OptionalTrials, SettingsDep, get_current_user
from webui.models import Health, PlateStatus, Problem
from webui.routes import auth, export, live_tests, patients, trials

__all__ = ["router"]

public = APIRouter(tags=["station"])


@public.get("/health", response_model=Health, summary="Is the station up (no login needed)")
def health() -> Any:
    return {"status": "ok"}


station = APIRouter(tags=["station"])


@station.get("/status", response_model=PlateStatus, summary="The plate's live state",
             responses={503: {"model": Problem, "description": "the plate is not running"}})
def status(live: LiveDep, settings: SettingsDep, spool: OptionalSpool, trials: OptionalTrials) -> Any:
    """Plate source, sample rate achieved, dropped and glitch frames, Fz, COP, calibration date.

    ``warnings`` also says when the disk is nearly full (no test can be stored below 50 MB free), and
    "offline: N trials waiting to upload" while the database is unreachable (``storage``: the spool);
    ``pelvis`` is the pelvis sensor's state (null without one).
    """
    status = live.status(calibration_max_age_days=settings.calibration_max_age_days)
    disk = disk_warning(settings.data_dir)  # a full disk is said before a test fails to be stored
    if disk:
        status["warnings"] = [*status.get("warnings", []), disk]
    storage = spool.status() if spool is not None else None
    if storage is not None and storage["online"] is False:
        status["warnings"] = [*status.get("warnings", []), storage["message"]]
    return {**status, "station_id": settings.station_id, "storage": storage, "pelvis": _pelvis_status(trials)}


def _pelvis_status(trials: Any) -> dict[str, Any] | None:
    pelvis = getattr(trials, "pelvis", None)
    if pelvis is None:
        return None
    value = float(pelvis.latest())
    return {"sensor": "simulated" if getattr(pelvis, "synthetic", False) else "icm42688",
            "fault": getattr(pelvis, "fault", None), "obliquity_deg": round(value, 2) if math.isfinite(value) else None}


@station.get("/openapi.json", include_in_schema=False)
def openapi(request: Request) -> Any:
    return request.app.openapi()


_PRIVATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "not logged in (POST /api/v1/login first)"},
    403: {"model": Problem, "description": "a state-changing request without the X-CSRF-Token header"},
    422: {"model": Problem, "description": "invalid parameters or body"},
}
private = APIRouter(dependencies=[Depends(get_current_user)], responses=_PRIVATE_RESPONSES)
for _sub in (auth.api_private, station, patients.router, live_tests.router, trials.router, export.router):
    private.include_router(_sub)

router = APIRouter(prefix="/api/v1", responses={
    400: {"model": Problem, "description": "a body that cannot be read (not UTF-8 JSON)"}})
router.include_router(public)
router.include_router(auth.api_public)
router.include_router(private)
