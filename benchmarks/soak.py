"""Soak benchmark: the station on the simulated plate under steady use, memory and frame loss over time.

Run it from the repository root::

    python benchmarks/soak.py                     # 30 minutes (the figure for the issue's closing note)
    python benchmarks/soak.py --duration-s 90     # a quick look

What runs, all on 127.0.0.1:

- the station itself, as a process (``balance-station --plate simulated --no-screen``, a fresh data folder,
  a therapist account made with ``balance-station user add``);
- trials started by the API one after another (``POST /api/v1/tests``, quiet stance and single-leg, the
  simulated patient performs them), each waited for;
- ``--clients`` web clients asking for pages and API answers in a loop (station, patients, a patient, a
  trial page, trial list, status), each with a pause of ``--pause-s``;
- ``--streams`` live streams (``/live/stream``, 20 messages a second) read the whole time, reopened when
  they end.

Every ``--every-s`` seconds a row is printed: elapsed time, the station's memory (RSS of the station and
its acquisition child, MB), frames received, frames dropped, the achieved sample rate, trials stored,
web requests served and failed (5xx or no answer) with their worst latency, stream messages. At the end
one JSON object sums it up: memory at start, end and its peak, its growth per hour over the second half
(the first minutes include the start-up's warming), frames lost in %.
"""

from __future__ import annotations

import argparse
import http.client
import http.cookiejar
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

USERNAME = "soak"
PASSWORD = "soak test password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """RSS of the process and its children, MB."""
    total = 0
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"\nPPid:\t{pid}\n" in (entry / "status").read_text():
                    pids.append(int(entry.name))
            except OSError:
                continue
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class Api:
    """A logged-in client (cookie and CSRF token)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.csrf = ""
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def call(self, method: str, path: str, body: dict | None = None, *, timeout_s: float = 10.0) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "X-CSRF-Token": self.csrf})
        try:
            with self.opener.open(req, timeout=timeout_s) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def login(self) -> None:
        status, body = self.call("POST", "/api/v1/login", {"username": USERNAME, "password": PASSWORD})
        if status != 200:
            raise SystemExit(f"soak: cannot log in: {status} {body[:200]!r}")
        self.csrf = json.loads(body)["csrf_token"]


class Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.failed = 0
        self.worst_s = 0.0
        self.stream_messages = 0
        self.trials_started = 0
        self.trials_refused = 0

    def request(self, ok: bool, elapsed_s: float) -> None:
        with self.lock:
            self.requests += 1
            self.failed += 0 if ok else 1
            self.worst_s = max(self.worst_s, elapsed_s)

    def take_worst(self) -> float:
        with self.lock:
            w, self.worst_s = self.worst_s, 0.0
            return w


def web_client(api: Api, paths: list[str], stop: threading.Event, counters: Counters, pause_s: float) -> None:
    i = 0
    while not stop.is_set():
        path = paths[i % len(paths)]
        i += 1
        t0 = time.monotonic()
        try:
            status, _ = api.call("GET", path, timeout_s=15)
            ok = status < 500
        except OSError:
            ok = False
        counters.request(ok, time.monotonic() - t0)
        stop.wait(pause_s)


def stream_reader(port: int, cookie: str, stop: threading.Event, counters: Counters) -> None:
    while not stop.is_set():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/live/stream?limit=2000", headers={"Cookie": cookie})
            r = conn.getresponse()
            if r.status != 200:
                stop.wait(1.0)
                continue
            while not stop.is_set():
                line = r.readline()
                if not line:
                    break
                if line.startswith(b"data:"):
                    with counters.lock:
                        counters.stream_messages += 1
        except OSError:
            stop.wait(1.0)
        finally:
            conn.close()


def trial_starter(api: Api, stop: threading.Event, counters: Counters) -> None:
    tests = [{"patient": "SOAK-1", "protocol": "quiet-stance"},
             {"patient": "SOAK-1", "protocol": "single-leg", "stance_side": "left"},
             {"patient": "SOAK-2", "protocol": "single-leg", "stance_side": "right"}]
    i = 0
    while not stop.is_set():
        status, body = api.call("POST", "/api/v1/tests", tests[i % len(tests)])
        i += 1
        if status == 201:
            with counters.lock:
                counters.trials_started += 1
        else:
            with counters.lock:
                counters.trials_refused += 1
        deadline = time.monotonic() + 120  # a test ends within two minutes
        while not stop.is_set() and time.monotonic() < deadline:
            s, b = api.call("GET", "/api/v1/tests/current")
            if s == 200 and not json.loads(b).get("running"):
                break
            stop.wait(1.0)
        stop.wait(2.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration-s", type=float, default=1800.0, help="how long to run (default 30 minutes)")
    parser.add_argument("--every-s", type=float, default=30.0, help="a row every so often (default 30 s)")
    parser.add_argument("--clients", type=int, default=4, help="web clients asking for pages (default 4)")
    parser.add_argument("--streams", type=int, default=3, help="live streams read the whole time (default 3)")
    parser.add_argument("--pause-s", type=float, default=0.5, help="each client's pause between requests")
    args = parser.parse_args()
    if not 10 <= args.duration_s <= 24 * 3600:
        parser.error("--duration-s must be from 10 s to a day")

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYTHONPATH": str(repo)}
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        data = Path(tmp) / "data"
        subprocess.run([sys.executable, "-m", "station.commands.cli", "--data-dir", str(data), "user", "add", USERNAME,
                        "--password-stdin"], input=PASSWORD + "\n", text=True, check=True, env=env,
                       capture_output=True, timeout=120)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([sys.executable, "-m", "station.commands.cli", "--data-dir", str(data), "--port",
                                 str(port),
                                 "--plate", "simulated", "--no-screen"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        stop = threading.Event()
        threads: list[threading.Thread] = []
        try:
            api = Api(base)
            deadline = time.monotonic() + 60
            while True:
                try:
                    api.login()
                    s, b = api.call("GET", "/api/v1/status")
                    if s == 200 and json.loads(b)["frames"] > 80:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("soak: the station did not start")
                time.sleep(0.5)
            for code in ("SOAK-1", "SOAK-2"):
                api.call("POST", "/api/v1/patients", {"code": code, "birth_year": 1960})
            counters = Counters()
            paths = ["/", "/patients", "/patients/SOAK-1", "/live", "/api/v1/status", "/api/v1/trials?patient=SOAK-1",
                     "/api/v1/patients"]
            threads.append(threading.Thread(target=trial_starter, args=(api, stop, counters), daemon=True))
            for _ in range(args.clients):
                c = Api(base)
                c.login()
                threads.append(threading.Thread(target=web_client, args=(c, paths, stop, counters, args.pause_s),
                                                daemon=True))
            for _ in range(args.streams):
                c = Api(base)
                c.login()
                threads.append(threading.Thread(target=stream_reader, args=(port, c.cookie(), stop, counters),
                                                daemon=True))
            for t in threads:
                t.start()

            print(f"soak: station pid {proc.pid} on {base}, {args.duration_s:g} s, {args.clients} web clients, "
                  f"{args.streams} live streams, tests started by the API; {platform.machine()}, "
                  f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
            print(f"{'t_s':>7} {'rss_mb':>7} {'frames':>8} {'dropped':>7} {'rate_hz':>7} {'trials':>6} "
                  f"{'requests':>8} {'failed':>6} {'worst_s':>7} {'stream_msgs':>11}")
            t0 = time.monotonic()
            first = None
            rows = []
            while True:
                elapsed = time.monotonic() - t0
                s, b = api.call("GET", "/api/v1/status")
                status = json.loads(b) if s == 200 else {}
                mem = rss_mb(proc.pid)
                _, tb = api.call("GET", "/api/v1/trials")
                n_trials = len(json.loads(tb)) if tb else 0
                row = {"t_s": round(elapsed, 1), "rss_mb": round(mem, 1), "frames": status.get("frames"),
                       "dropped": status.get("dropped_frames"), "rate_hz": status.get("sample_rate_hz"),
                       "trials": n_trials, "requests": counters.requests, "failed": counters.failed,
                       "worst_s": round(counters.take_worst(), 2), "stream_msgs": counters.stream_messages}
                rows.append(row)
                first = first or row
                print(f"{row['t_s']:>7.0f} {row['rss_mb']:>7.1f} {row['frames'] or 0:>8} {row['dropped'] or 0:>7} "
                      f"{row['rate_hz'] or 0:>7.1f} {row['trials']:>6} {row['requests']:>8} {row['failed']:>6} "
                      f"{row['worst_s']:>7.2f} {row['stream_msgs']:>11}", flush=True)
                if elapsed >= args.duration_s or proc.poll() is not None:
                    break
                time.sleep(min(args.every_s, max(0.0, args.duration_s - elapsed)))
        finally:
            stop.set()
            for t in threads:
                t.join(15)
            alive = proc.poll() is None
            if alive:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        err = proc.stderr.read() if proc.stderr else ""
    last = rows[-1]
    half = next(r for r in rows if r["t_s"] >= last["t_s"] / 2)  # after the start-up's warming (imports, caches)
    hours = max(1e-9, (last["t_s"] - half["t_s"]) / 3600)
    frames = (last["frames"] or 0)
    summary = {
        "duration_s": last["t_s"], "station_alive_at_end": alive,
        "rss_mb_start": first["rss_mb"], "rss_mb_end": last["rss_mb"], "rss_mb_peak": max(r["rss_mb"] for r in rows),
        "rss_growth_mb_per_h_second_half": round((last["rss_mb"] - half["rss_mb"]) / hours, 1),
        "frames": frames, "frames_dropped": last["dropped"] or 0,
        "frames_lost_pct": round(100.0 * (last["dropped"] or 0) / max(1, frames), 4),
        "trials_stored": last["trials"], "trials_refused": counters.trials_refused,
        "web_requests": last["requests"], "web_failed": last["failed"],
        "worst_latency_s": max(r["worst_s"] for r in rows), "stream_messages": last["stream_msgs"],
        "tracebacks_in_station_log": err.count("Traceback"),
    }
    print(json.dumps(summary))
    return 0 if alive and last["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
