"""Server-rendered pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from webui.deps import LiveDep, SettingsDep

templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def station_page(request: Request, live: LiveDep, settings: SettingsDep) -> HTMLResponse:
    status = live.status(calibration_max_age_days=settings.calibration_max_age_days)
    return templates.TemplateResponse(
        request, "station.html", {"status": status, "settings": settings, "plate": settings.plate}
    )
