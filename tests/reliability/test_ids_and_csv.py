"""Findings 10 and 12: page ids past 2^63 are 404, not 500; the scores CSV has unique headers."""

from __future__ import annotations

import csv
import io

import pytest

from tests.reliability.served import Client, served_app
from tests.webui.helpers import add_recorded_trial

HUGE = [str(2**63), str(2**64 + 5), "9" * 40]


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    with served_app(tmp_path_factory.mktemp("ids")) as (app, db, port):
        trial_id = add_recorded_trial(db, "P-001")
        add_recorded_trial(db, "P-001", metrics={"state": "finished", "score": 12, "hold_time_s": 3.0})
        c = Client(port)
        assert c.login().status == 200
        yield c, trial_id


@pytest.mark.parametrize("big", HUGE)
@pytest.mark.parametrize("method,path", [
    ("GET", "/trials/{id}"), ("GET", "/sessions/{id}/report"), ("GET", "/sessions/{id}/report.pdf"),
    ("POST", "/trials/{id}/grade"), ("POST", "/sessions/{id}/notes"),
    ("GET", "/api/v1/trials/{id}"), ("GET", "/api/v1/trials/{id}/recording.csv"),
])
def test_ids_past_2_to_the_63_are_404(station, method, path, big):
    c, _ = station
    body = b"csrf_token=" + c.csrf.encode() + b"&grade=good&notes=x" if method == "POST" else None
    r = c.request(method, path.format(id=big), body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status in ((404,) if not path.startswith("/api/") else (404, 422)), (r.status, r.body[:200])


@pytest.mark.parametrize("path", ["/trials/0", "/trials/-1", "/sessions/0/report"])
def test_ids_below_one_are_404(station, path):
    c, _ = station
    assert c.get(path).status == 404


def test_the_scores_csv_headers_are_unique(station):
    c, _ = station
    r = c.get("/api/v1/export/scores.csv")
    assert r.status == 200
    header = next(csv.reader(io.StringIO(r.body.decode())))
    duplicates = sorted({h for h in header if header.count(h) > 1})
    assert not duplicates, duplicates
    assert "state" in header and "metric.state" in header
