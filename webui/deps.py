"""Dependencies shared by the routes. Tests swap them with ``app.dependency_overrides``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from station.config import StationSettings
from station.live import LiveStation


def get_live(request: Request) -> LiveStation:
    live = getattr(request.app.state, "live", None)
    if live is None:
        raise HTTPException(status_code=503, detail="the plate is not running")
    return live


def get_settings(request: Request) -> StationSettings:
    return request.app.state.settings


LiveDep = Annotated[LiveStation, Depends(get_live)]
SettingsDep = Annotated[StationSettings, Depends(get_settings)]
