"""The web app's status API and page, with the plate swapped for a fed test double (logged in)."""

import pytest
from fastapi.testclient import TestClient

from calibration.model import simulator_calibration
from station.core.config import default_station_id
from station.core.geometry import PlateGeometry
from station.live.pipeline import LiveStation
from station.signal.forces import ForcePipeline
from tests.doubles import ListFeed
from tests.station.live.test_pipeline import frames
from tests.webui.helpers import form_login, login, make_app


@pytest.fixture
def live():
    station = LiveStation(ListFeed(), ForcePipeline(simulator_calibration(), PlateGeometry()))
    for raw in frames(100, x_mm=-40.0, y_mm=15.0):
        station.ingest(raw)
    return station


@pytest.fixture
def client(live, tmp_path):
    app, db = make_app(tmp_path, live=live)
    with TestClient(app, base_url="http://localhost") as c:
        login(c)
        yield c
    db.close()


def test_health(client):
    r = client.get("/api/v1/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_status_fields(client):
    r = client.get("/api/v1/status")
    assert r.status_code == 200
    body = r.json()
    for key in ("plate_source", "sample_rate_hz", "dropped_frames", "glitch_frames", "fz_n",
                "cop_ml_mm", "cop_ap_mm", "calibration_date"):
        assert key in body, key
    assert body["plate_source"] == "simulated"
    assert body["fz_n"] == pytest.approx(700.0)
    assert (body["cop_ml_mm"], body["cop_ap_mm"]) == pytest.approx((-40.0, 15.0))
    assert body["station_id"] == default_station_id()  # the host name


def test_status_without_a_plate_is_503(tmp_path):
    app, db = make_app(tmp_path)
    with TestClient(app, base_url="http://localhost") as c:
        login(c)
        r = c.get("/api/v1/status")
    db.close()
    assert r.status_code == 503 and "not running" in r.json()["detail"]


def test_status_needs_a_login(tmp_path, live):
    app, db = make_app(tmp_path, live=live)
    with TestClient(app, base_url="http://localhost") as c:
        assert c.get("/api/v1/status").status_code == 401
        assert c.get("/", follow_redirects=False).headers["location"] == "/login?next=/"
        assert form_login(c).status_code == 303
        assert c.get("/").status_code == 200
    db.close()


def test_station_page(client):
    r = client.get("/")
    assert r.status_code == 200
    html = r.text
    assert "Simulated plate" in html and "Dropped frames" in html and "-40.0" in html
    assert client.get("/static/status.js").status_code == 200


def test_openapi_lists_the_routes(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/status" in paths and "/api/v1/health" in paths


def test_status_shows_the_verified_accuracy(live, tmp_path):
    import dataclasses

    verified = dataclasses.replace(live.pipeline.calibration, verification={
        "passed": True, "max_cop_error_mm": 0.42, "rms_cop_error_mm": 0.2, "max_force_error_pct": 0.12, "rows": []})
    live.pipeline.set_calibration(verified)
    app, db = make_app(tmp_path, live=live)
    with TestClient(app, base_url="http://localhost") as c:
        login(c)
        body = c.get("/api/v1/status").json()
        page = c.get("/").text
    db.close()
    assert body["calibration_max_cop_error_mm"] == 0.42 and body["calibration_max_force_error_pct"] == 0.12
    assert "COP within 0.42 mm" in page


def test_other_host_names_are_refused(live, tmp_path):
    """A page on another site cannot reach the station through DNS rebinding."""
    app, db = make_app(tmp_path, live=live)
    with TestClient(app, base_url="http://evil.example") as c:
        assert c.get("/api/v1/health").status_code == 400
        assert c.get("/api/v1/status").status_code == 400
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        login(c)
        assert c.get("/api/v1/status").status_code == 200
    db.close()
