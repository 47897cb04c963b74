"""Shared test set-up: headless SDL, an artefact folder for screenshots, test doubles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.paths import BDS_DIR

# pygame must never look for a real display or sound card in tests.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture
def artifacts() -> Path:
    """Folder for screenshots and other things a person should look at after the run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch, tmp_path):
    """Tests never read the developer's own configuration or data folder."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("BALANCE_STATION_CONFIG", raising=False)
    for key in list(os.environ):
        if key.startswith("BALANCE_STATION_"):
            monkeypatch.delenv(key)

#: the published trials (Santos & Duarte 2016, CC BY 4.0), kept in the repository


def pytest_sessionstart(session):
    """The published-value checks must run, never skip: missing reference trials are a failure."""
    if not (BDS_DIR / "reference.json").is_file():
        pytest.exit(f"the reference trials are missing ({BDS_DIR}); the published-value tests cannot run",
                    returncode=1)
