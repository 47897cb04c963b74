"""GET /api/v1/export/scores.csv and GET /api/v1/export/patient/{code}.zip."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile

import pytest
from fastapi.testclient import TestClient

from station.core.recording import read_recording
from station.storage.exports import METRIC_COLUMNS, TRIAL_COLUMNS, flatten_metrics
from station.storage.trials import set_metrics
from tests.webui.helpers import add_recorded_trial, login, make_app, seed_trials


@pytest.fixture
def env(tmp_path):
    app, db = make_app(tmp_path)
    with TestClient(app, base_url="http://localhost") as client:
        login(client)
        yield client, db
    db.close()


def read_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_flattening():
    flat = flatten_metrics({"protocol": "single-leg", "hold_time_s": 12.5, "completed": False,
                            "cop": {"path_length_mm": 400.0, "deep": {"x_mm": 1}},
                            "touchdowns": [{"t_s": 1.0}, {"t_s": 2.0}], "warnings": []})
    assert flat == {"hold_time_s": 12.5, "completed": False, "cop.path_length_mm": 400.0, "cop.deep.x_mm": 1,
                    "touchdowns_count": 2, "warnings_count": 0}


def test_one_row_per_trial_one_column_per_metric(env):
    client, db = env
    ids = seed_trials(db, "P-001", 5)
    r = client.get("/api/v1/export/scores.csv", params={"patient": "P-001"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="scores-P-001.csv"' in r.headers["content-disposition"]
    header = r.text.splitlines()[0].split(",")
    assert header[:len(TRIAL_COLUMNS)] == list(TRIAL_COLUMNS)
    assert header[len(TRIAL_COLUMNS):len(TRIAL_COLUMNS) + len(METRIC_COLUMNS)] == list(METRIC_COLUMNS)
    for name in ("hold_time_s", "cop.path_length_mm", "support.peak_pct_bw", "body_weight_n", "touchdowns_count"):
        assert name in header
    assert "notes" not in header  # free text may hold a name: not exported
    rows = read_csv(r.text)
    assert [int(row["trial_id"]) for row in rows] == ids
    first = rows[0]
    assert first["patient"] == "P-001" and first["stance_side"] == "left" and first["grade"] == "not_assessed"
    assert dt.datetime.fromisoformat(first["started_at"]) == dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC)
    assert first["started_at"][10] == "T" and first["started_at"][-6] in "+-"  # ISO 8601 with its offset
    stored = client.get(f"/api/v1/trials/{ids[0]}").json()["metrics"]
    assert float(first["hold_time_s"]) == stored["hold_time_s"]
    assert float(first["cop.ellipse95_area_mm2"]) == stored["cop"]["ellipse95_area_mm2"]
    assert first["completed"] in ("true", "false")
    assert int(first["touchdowns_count"]) == len(stored["touchdowns"])


def test_other_metrics_get_their_own_columns_and_missing_ones_are_empty(env):
    client, db = env
    (a, b) = seed_trials(db, "P-001", 2)
    with db.sessions() as s:
        set_metrics(s, a, {"hold_time_s": 30.0, "reach": {"score_pct": 87.5}, "note": "=HYPERLINK(\"x\")"})
        set_metrics(s, b, None)
    rows = read_csv(client.get("/api/v1/export/scores.csv").text)
    assert rows[0]["reach.score_pct"] == "87.5" and rows[0]["hold_time_s"] == "30.0"
    assert rows[0]["cop.path_length_mm"] == "" and rows[1]["hold_time_s"] == "" and rows[1]["reach.score_pct"] == ""
    assert rows[0]["note"] == "'=HYPERLINK(\"x\")"  # never a live formula in a spreadsheet


def test_dates_and_patients(env):
    client, db = env
    seed_trials(db, "P-001", 6, every_s=86400, start=dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC))
    seed_trials(db, "P-002", 2, every_s=86400, start=dt.datetime(2024, 5, 2, 12, tzinfo=dt.UTC))
    rows = read_csv(client.get("/api/v1/export/scores.csv", params={"from": "2024-05-02", "to": "2024-05-03"}).text)
    assert sorted((r["patient"], r["started_at"][:10]) for r in rows) == [
        ("P-001", "2024-05-02"), ("P-001", "2024-05-03"), ("P-002", "2024-05-02"), ("P-002", "2024-05-03")]
    assert len(read_csv(client.get("/api/v1/export/scores.csv").text)) == 8
    assert client.get("/api/v1/export/scores.csv", params={"patient": "P-404"}).status_code == 404
    assert client.get("/api/v1/export/scores.csv", params={"patient": "Anna"}).status_code == 422
    assert client.get("/api/v1/export/scores.csv", params={"from": "May"}).status_code == 422


def test_no_trials_gives_the_header_only(env):
    client, _ = env
    text = client.get("/api/v1/export/scores.csv").text
    assert text.splitlines() == [",".join(TRIAL_COLUMNS + METRIC_COLUMNS)]


def test_exports_are_audited(env):
    client, db = env
    seed_trials(db, "P-001", 1)
    client.get("/api/v1/export/scores.csv", params={"patient": "p-001", "from": "2024-01-01"})
    client.get("/api/v1/export/patient/P-001.zip")
    with db.engine.connect() as raw:  # SQLite or PostgreSQL
        rows = [tuple(r) for r in raw.exec_driver_sql(
            "SELECT username, client, detail FROM audit_log WHERE action = 'export' ORDER BY id")]
    assert rows == [("therapist", "testclient", "scores.csv: patient P-001 from 2024-01-01"),
                    ("therapist", "testclient", "patient P-001.zip: 0 recording(s)")]


@pytest.mark.slow
def test_ten_thousand_trials_export_streamed_whole(env):
    """10,000 trials export whole and streamed. How fast is measured by benchmarks/web.py (a timed
    assertion here failed on a loaded machine: speed targets are benchmarks, not tests)."""
    client, db = env
    seed_trials(db, "P-001", 5000)
    seed_trials(db, "P-002", 5000, seed=1)
    with client.stream("GET", "/api/v1/export/scores.csv") as r:
        assert r.status_code == 200
        chunks = sum(1 for _ in r.iter_bytes())
    assert chunks > 1  # streamed, not one block
    assert len(client.get("/api/v1/export/scores.csv").text.splitlines()) == 10_001


def test_the_patient_zip(env, tmp_path):
    client, db = env
    a = add_recorded_trial(db, "P-001", n_frames=200, side="left")
    b = add_recorded_trial(db, "P-001", n_frames=120, side="right")
    (empty,) = seed_trials(db, "P-001", 1)
    add_recorded_trial(db, "P-002", n_frames=100)
    r = client.get("/api/v1/export/patient/p-001.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert 'filename="P-001.zip"' in r.headers["content-disposition"]
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    names = zf.namelist()
    assert "P-001/scores.csv" in names and "P-001/README.txt" in names
    recordings = sorted(n for n in names if n.startswith("P-001/recordings/"))
    assert len(recordings) == 2 and all(n.endswith(".csv") for n in recordings)
    assert any(f"trial-{a}-single-leg-left-" in n for n in recordings)
    assert any(f"trial-{b}-single-leg-right-" in n for n in recordings)
    assert not any("P-002" in n for n in names)
    rows = read_csv(zf.read("P-001/scores.csv").decode())
    assert sorted(int(row["trial_id"]) for row in rows) == sorted([a, b, empty])
    readme = zf.read("P-001/README.txt").decode()
    assert f"trial {empty}" in readme and "2 recording file(s)" in readme
    target = tmp_path / "rec.csv"
    target.write_bytes(zf.read(next(n for n in recordings if f"trial-{a}-" in n)))
    assert len(read_recording(target).t_s) == 200
    assert client.get("/api/v1/export/patient/P-404.zip").status_code == 404
    assert client.get("/api/v1/export/patient/John.zip").status_code == 422
