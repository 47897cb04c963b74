"""`balance-station drill NAME --plate simulated --autoplay --duration-s S --json [--screenshot PNG]`."""

import json
import os
import subprocess
import sys

import pygame
import pytest

from station.commands import drill as drill_command
from station.commands.cli import main
from station.drills.catalogue import ALL_DRILLS
from tests.conftest import REPO


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plays_a_drill_and_prints_its_metrics(capsys, tmp_path, artifacts):
    png = tmp_path / "last.png"
    code, out, err = run(capsys, "drill", "reach", "--plate", "simulated", "--autoplay", "--duration-s", "30",
                         "--json", "--seed", "3", "--screenshot", str(png))
    assert code == 0, err
    assert out.count("\n") == 1  # one JSON object on one line
    result = json.loads(out)
    assert result["drill"] == "reach" and result["state"] == "done"
    assert result["hits"] == result["targets_shown"] >= 8  # the good player reaches them all
    assert result["score"] > 0 and result["rounds_completed"] >= 1
    assert sum(r["targets_shown"] for r in result["rounds"]) == result["targets_shown"]
    auto = result["autoplay"]
    assert auto["seed"] == 3 and auto["skill"] == "good" and not auto["realtime"]
    assert auto["cues"]["hit"] == result["hits"]
    # rounds until 30 s of play have passed; in simulated time, which takes a fraction of it
    assert auto["plate_time_s"] > 30 and auto["wall_time_s"] < auto["plate_time_s"] / 3
    image = pygame.image.load(str(png))
    assert image.get_size() == (1280, 720)
    pygame.image.save(image, str(artifacts / "drill-command-reach.png"))


def test_same_seed_same_result(capsys):
    argv = ("drill", "limits", "--plate", "simulated", "--autoplay", "--duration-s", "20", "--json", "--seed", "5",
            "--skill", "average")
    first = json.loads(run(capsys, *argv)[1])
    second = json.loads(run(capsys, *argv)[1])
    for r in (first, second):
        del r["autoplay"]["wall_time_s"]
    assert first == second
    assert first["drill"] == "limits" and set(first["limits"]) == {"forward_mm", "backward_mm", "left_mm", "right_mm"}


@pytest.mark.parametrize("name", ["hold", "single-leg-hold"])
def test_hold_and_its_alias(capsys, name):
    code, out, err = run(capsys, "drill", name, "--plate", "simulated", "--autoplay", "--duration-s", "5",
                         "--json", "--seed", "1", "--side", "right", "--skill", "poor", "--rounds", "1")
    assert code == 0, err
    result = json.loads(out)
    assert result["drill"] == "single-leg-hold" and result["stance_side"] == "right"
    assert result["rounds_completed"] == 1


def test_options_reach_the_drill(capsys, tmp_path):
    png = tmp_path / "small.png"
    code, out, err = run(capsys, "drill", "symmetry", "--plate", "simulated", "--autoplay", "--duration-s", "10",
                         "--json", "--seed", "2", "--feedback", "summary", "--level", "3",
                         "--screenshot", str(png), "--screen-size", "800x480")
    assert code == 0, err
    result = json.loads(out)
    assert result["feedback"] == "summary" and result["start_level"] == 3
    assert pygame.image.load(str(png)).get_size() == (800, 480)


@pytest.mark.parametrize("argv, message", [
    (["drill", "fly", "--plate", "simulated", "--autoplay", "--duration-s", "5"], "unknown drill 'fly'"),
    (["drill", "reach", "--plate", "simulated", "--duration-s", "5"], "--autoplay is required"),
    (["drill", "reach", "--autoplay", "--duration-s", "5"], "only the simulated plate"),
    (["drill", "reach", "--plate", "hx711", "--autoplay", "--duration-s", "5"], "only the simulated plate"),
    (["drill", "reach", "--plate", "simulated", "--autoplay", "--duration-s", "0"], "--duration-s"),
    (["drill", "reach", "--plate", "simulated", "--autoplay", "--duration-s", "5", "--level", "11"], "--level"),
])
def test_usage_errors_are_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and err.startswith("balance-station")


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["drill", "reach", "--plate", "simulated", "--autoplay"])  # no --duration-s
    _, err = capsys.readouterr()
    assert exc.value.code == 2 and err.count("\n") == 1 and "--duration-s" in err
    with pytest.raises(SystemExit) as exc:
        main(["drill", "reach", "--plate", "simulated", "--autoplay", "--duration-s", "5", "--skill", "superb"])
    assert exc.value.code == 2


def test_as_a_command(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "station.commands.cli", "drill", "rhythm", "--plate", "simulated",
                           "--autoplay", "--duration-s", "12", "--json", "--seed", "4", "--rounds", "1"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["drill"] == "rhythm" and result["autoplay"]["cues"].get("beat", 0) > 0
    assert "pygame" not in proc.stdout + proc.stderr  # no banner on the JSON's stream


def test_bad_name_as_a_command(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "station.commands.cli", "drill", "jump", "--plate", "simulated",
                           "--autoplay", "--duration-s", "5", "--json"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == f"balance-station: drill: unknown drill 'jump': choose one of {', '.join(ALL_DRILLS)}"


@pytest.mark.slow
def test_realtime_runs_through_the_acquisition_process(capsys, monkeypatch):
    monkeypatch.setattr(drill_command, "MAX_OVERRUN_S", 0.0)  # stop after --duration-s of real time
    code, out, err = run(capsys, "drill", "reach", "--plate", "simulated", "--autoplay", "--duration-s", "3",
                         "--json", "--seed", "1", "--realtime")
    result = json.loads(out)
    assert code == 1  # stopped before the drill was over: a failure, said in one line
    assert err == "balance-station: drill reach: not finished: time limit reached\n"
    assert result["state"] == "aborted" and result["end_reason"] == "time limit reached"
    auto = result["autoplay"]
    assert auto["realtime"] and 2.9 < auto["wall_time_s"] < 10
    assert 2.5 * 80 < auto["frames"] < 3.5 * 80  # the plate's real rate
