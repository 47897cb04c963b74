"""The pieces of the browser tests: Chromium and chromedriver (installed when CI needs them), the real
station as a subprocess on the simulated plate, a Selenium driver that downloads into a folder.

Chromium and chromedriver are Debian's packages (``chromium``, ``chromium-driver``): Selenium's own
driver download is never used. When they are missing, the tests install them with apt-get if they run
as root under CI (or with ``BALANCE_STATION_INSTALL_BROWSER=1``); otherwise they skip with the reason,
except under CI (``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
APT_PACKAGES = ("chromium", "chromium-driver")
#: simulated time runs this much faster than the clock: two single-leg tests (2 x about 37 s of frames)
#: then fit, with the therapist's clicks, in the minute of the acceptance criterion
SPEED = 3.0
#: the simulated person's seed: the same person, the same trials, every run
SEED = 20261121
PASSWORD = "browser test password 1"
USERNAME = "therapist"
BIN = Path(sys.executable).parent


def _ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _present() -> bool:
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


def _install() -> str:
    """apt-get install chromium chromium-driver; returns what went wrong ('' when installed)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root, or no apt-get: install them with 'apt-get install chromium chromium-driver'"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *APT_PACKAGES]
    try:
        if subprocess.run(cmd, env=env, capture_output=True, timeout=900).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600, check=True)
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                return f"apt-get install failed: {done.stderr.strip().splitlines()[-1:]}"
    except (subprocess.SubprocessError, OSError) as exc:
        return f"apt-get failed: {exc}"
    return "" if _present() else "apt-get ran but /usr/bin/chromium or /usr/bin/chromedriver is still missing"


def require_browser() -> None:
    """Skip (fail under CI) unless Chromium, chromedriver and Selenium are there; install them when allowed."""
    problem = ""
    if not _present():
        if _ci() or os.environ.get("BALANCE_STATION_INSTALL_BROWSER") == "1":
            problem = _install()
        else:
            problem = (f"{CHROMIUM} or {CHROMEDRIVER} is missing (Debian: apt-get install chromium chromium-driver; "
                       "under CI the test installs them)")
    if not problem:
        try:
            import selenium  # noqa: F401
        except ImportError:
            problem = "selenium is not installed (pip install -e '.[test]')"
    if problem:
        if _ci():
            pytest.fail(f"CI: the browser test cannot run: {problem}", pytrace=False)
        pytest.skip(problem)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Station:
    base_url: str
    data_dir: Path
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def write_config(path: Path, *, patient: str = "healthy", speed: float = SPEED, pelvis: bool = False) -> Path:
    """``pelvis``: the simulated patient wears the simulated pelvis sensor (``[pelvis] sensor = "simulated"``)."""
    path.write_text(
        "# the browser test's station: the simulated plate, a seeded simulated person who performs the tests,\n"
        "# in simulated time running SPEED times faster than the clock (each 30 s hold is 30 s of frames)\n"
        f"[simulator]\nseed = {SEED}\npatient = \"{patient}\"\nspeed = {speed}\n\n[screen]\nenabled = false\n"
        + ("\n[pelvis]\nsensor = \"simulated\"\n" if pelvis else ""),
        encoding="utf-8")
    return path


def _cli(*args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "balance-station"), *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


@contextlib.contextmanager
def run_station(tmp: Path, **config_options: object) -> Iterator[Station]:
    """The real station (``balance-station --plate simulated --no-screen``), with a therapist account
    (``config_options``: :func:`write_config`'s)."""
    data_dir = tmp / "data"
    config = write_config(tmp / "station.toml", **config_options)  # type: ignore[arg-type]
    common = ["--config", str(config), "--data-dir", str(data_dir)]
    made = _cli("user", *common, "add", USERNAME, "--password-stdin", stdin=PASSWORD + "\n")
    assert made.returncode == 0, f"balance-station user add failed: {made.stderr}"
    port = free_port()
    log_path = tmp / "station.log"
    log = log_path.open("w")
    proc = subprocess.Popen([str(BIN / "balance-station"), "--plate", "simulated", "--no-screen", "--port", str(port),
                             *common], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    station = Station(base_url=f"http://127.0.0.1:{port}", data_dir=data_dir, process=proc, log_path=log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the station stopped at start (exit {proc.returncode}):\n{station.log()}")
            try:
                with urllib.request.urlopen(station.base_url + "/api/v1/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the station did not answer within 60 s:\n{station.log()}")
            time.sleep(0.3)
        yield station
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log.close()


def make_driver(download_dir: Path, *, width: int = 1280, height: int = 900):
    """Headless Chromium through Debian's chromedriver, downloading into ``download_dir`` without asking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                "--no-first-run", "--disable-extensions", f"--window-size={width},{height}", "--lang=en-GB",
                "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {
        "download.default_directory": str(download_dir), "download.prompt_for_download": False,
        "download.directory_upgrade": True, "safebrowsing.enabled": True,
    })
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
    driver.set_page_load_timeout(30)
    return driver


def wait_for_file(folder: Path, pattern: str, *, timeout_s: float = 20) -> Path:
    """The downloaded file matching ``pattern`` once Chromium has finished writing it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = [p for p in folder.glob(pattern) if not p.name.endswith(".crdownload")]
        partial = list(folder.glob("*.crdownload"))
        if done and not partial:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no download {pattern} in {folder} within {timeout_s} s: {sorted(os.listdir(folder))}")
