"""Finding 13: security headers on every answer, no-store on the API, no Swagger UI from a CDN."""

from __future__ import annotations

import pytest

from tests.reliability.served import Client, served_app
from tests.webui.helpers import add_recorded_trial


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("headers")
    with served_app(tmp) as (app, db, port):
        trial_id = add_recorded_trial(db, "P-001")
        c = Client(port)
        assert c.login().status == 200
        yield c, trial_id


PATHS = ["/", "/patients", "/patients/P-001", "/trials/{id}", "/live", "/login", "/static/station.css",
         "/api/v1/health", "/api/v1/patients", "/api/v1/trials/{id}", "/api/v1/trials/{id}/recording.csv",
         "/api/v1/export/scores.csv", "/api/docs", "/no/such/page", "/api/v1/no/such"]


@pytest.mark.parametrize("path", PATHS)
def test_every_answer_carries_the_security_headers(station, path):
    c, trial_id = station
    r = c.get(path.format(id=trial_id))
    assert r.headers.get("x-frame-options") == "DENY", r.headers
    assert r.headers.get("x-content-type-options") == "nosniff"
    assert "frame-ancestors 'none'" in r.headers.get("content-security-policy", "")
    if path.startswith("/api/"):
        assert "no-store" in r.headers.get("cache-control", ""), (path, r.status, r.headers)


def test_the_api_page_loads_nothing_from_another_site(station):
    c, _ = station
    r = c.get("/api/docs")
    assert r.status == 200
    text = r.body.decode()
    assert "/api/v1/patients" in text
    assert "http://" not in text and "https://" not in text and "cdn" not in text.lower()


