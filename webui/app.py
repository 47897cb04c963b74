"""The FastAPI application: therapist pages and the JSON API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from station import __version__
from station.config import StationSettings
from station.live import LiveStation
from webui.routes import api, pages


def create_app(settings: StationSettings, live: LiveStation | None = None) -> FastAPI:
    """Build the app. ``live`` may be attached later as ``app.state.live``."""
    app = FastAPI(title="Balance station", version=__version__, docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/v1/openapi.json")
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.web.trusted_hosts())
    app.state.settings = settings
    app.state.live = live
    app.mount("/static", StaticFiles(directory=Path(__file__).resolve().parent / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    return app
