"""`balance-station` as a process: starts, serves /api/v1/status, stops on SIGTERM within 3 s."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.paths import BDS_DIR
from tests.station.station_client import StationClient, add_user


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                kids.append(int(entry.name))
    return kids


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=2) as r:
        return json.load(r)


def start_station(tmp_path, *args, env_extra=None):
    port = free_port()
    add_user(tmp_path / "data")
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", **(env_extra or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "station.commands.cli", "--data-dir", str(tmp_path / "data"), "--port", str(port),
         *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    return proc, f"http://127.0.0.1:{port}"


def wait_for_frames(proc, base, timeout_s=40.0):
    deadline = time.monotonic() + timeout_s
    client = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the station exited early: {proc.stderr.read()}")
        try:
            client = client or StationClient(base).login()
            status = client.get("/api/v1/status")
            if status["frames"] > 80 and status["sample_rate_hz"]:
                return status
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail("the station did not serve frames in time")


@pytest.mark.parametrize("screen", [False, True], ids=["no-screen", "screen"])
def test_station_runs_serves_status_and_stops_on_sigterm(tmp_path, screen):
    args = ["--plate", "simulated"] + ([] if screen else ["--no-screen"])
    proc, base = start_station(tmp_path, *args)
    try:
        status = wait_for_frames(proc, base)
        assert status["plate_source"] == "simulated" and status["synthetic"] is True
        assert 70 < status["sample_rate_hz"] < 90
        assert status["calibration_source"] == "builtin:simulator"
        assert get_json(base + "/api/v1/health") == {"status": "ok"}
        kids = children_of(proc.pid)
        assert kids, "the acquisition runs in its own process"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
        stop_s = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    print(f"\nstopped in {stop_s:.2f} s\n{err}")
    assert code == 0
    assert stop_s < 3.0
    deadline = time.monotonic() + 1.0  # multiprocessing's resource tracker exits when it sees its pipe close
    while [k for k in kids if alive(k)] and time.monotonic() < deadline:
        time.sleep(0.05)
    left = {k: Path(f"/proc/{k}/cmdline").read_bytes().replace(b"\0", b" ")[:200] for k in kids if alive(k)}
    assert not left, f"child processes left behind: {left}"
    assert "plate: simulated plate" in err
    assert ("screen: patient screen open" in err) if screen else ("running without the patient screen" in err)
    assert "Traceback" not in err
    assert "/api/v1/status" not in err  # it answers 401 without a login: the console does not point at it
    assert "/api/v1/health answers without a login" in err
    assert "ALSA" not in err


def test_configured_but_absent_hx711_falls_back_to_the_simulator_and_says_why(tmp_path):
    config = tmp_path / "station.toml"
    config.write_text("[hx711]\nbackend = \"lgpio\"\n", encoding="utf-8")
    proc, base = start_station(tmp_path, "--config", str(config), "--no-screen")
    try:
        status = wait_for_frames(proc, base)
        assert status["plate_source"] == "simulated"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    err = proc.stderr.read()
    assert "plate: simulated, because the configured HX711 plate does not answer" in err


def test_explicit_hx711_without_configuration_refuses(tmp_path):
    proc, _ = start_station(tmp_path, "--plate", "hx711", "--no-screen")
    code = proc.wait(30)
    err = proc.stderr.read()
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "balance-station: --plate hx711: no [hx711] table in the configuration (see docs/hardware.md)")


def test_port_in_use_is_a_clear_message(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, "-m", "station.commands.cli", "--plate", "simulated", "--no-screen",
             "--data-dir", str(tmp_path), "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        code = proc.wait(40)
    err = proc.stderr.read()
    assert code == 2
    assert f"cannot serve the web page on 127.0.0.1:{port}: address already in use" in err
    assert "Traceback" not in err
    assert "Errno" not in err  # uvicorn's raw line does not come before the station's own


def test_a_second_station_on_the_same_data_folder_refuses_in_one_line(tmp_path):
    first, base = start_station(tmp_path, "--plate", "simulated", "--no-screen")
    try:
        wait_for_frames(first, base)
        assert f"process {first.pid}," in (tmp_path / "data" / "station.lock").read_text(encoding="utf-8")
        second = subprocess.run(
            [sys.executable, "-m", "station.commands.cli", "--data-dir", str(tmp_path / "data"), "--plate", "simulated",
             "--no-screen", "--port", str(free_port())],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"})
        assert first.poll() is None, "the first station goes on"
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(10)
    assert second.returncode == 2
    (line,) = second.stderr.strip().splitlines()
    assert line.startswith("balance-station: another station already runs on the data folder ")
    assert f"process {first.pid}," in line
    # once the first one stopped, the folder is free again
    third, base = start_station(tmp_path, "--plate", "simulated", "--no-screen")
    try:
        wait_for_frames(third, base)
    finally:
        third.send_signal(signal.SIGTERM)
        assert third.wait(10) == 0


def test_analyze_into_a_closed_pipe_prints_no_traceback(tmp_path):
    """`balance-station analyze FILE --json | head -c 1`: the reader leaves early; no BrokenPipeError."""
    bds = BDS_DIR / "BDS00001.csv"
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte
    try:
        proc = subprocess.run([sys.executable, "-m", "station.commands.cli", "analyze", str(bds), "--protocol",
                               "quiet-stance", "--json"], stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=60)
    finally:
        os.close(write_end)
    assert proc.stderr == ""
    assert proc.returncode != 0
    shell = subprocess.run(f"'{sys.executable}' -m station.commands.cli analyze '{bds}' --protocol quiet-stance --json "
                           "| head -c 1", shell=True, capture_output=True, text=True, timeout=60)
    assert shell.stdout == "{" and shell.stderr == ""
