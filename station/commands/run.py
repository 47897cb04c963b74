"""`balance-station` without a command: run the station.

Start-up order: settings -> plate source in the acquisition process -> live
station (pump thread) -> web server (thread) -> patient screen (main thread,
as SDL requires) or, without a display, a plain wait. SIGTERM and Ctrl-C set
one stop event; everything then stops in reverse order and the acquisition
process is joined, so no process is left behind.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import logging
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from calibration.model import Calibration, CalibrationError, simulator_calibration
from hardware.base import SourceFault
from station.clinic.controller import TrialController
from station.clinic.visit import Visit
from station.core.config import HX711Settings, StationSettings, WebSettings, load_settings
from station.core.errors import UserError
from station.core.frames import SYNTHETIC_SOURCES
from station.live.acquisition import AcquisitionProcess, SourceSpec
from station.live.pipeline import LiveStation
from station.signal.forces import ForcePipeline

log = logging.getLogger("balance-station")

#: frames averaged for the start-up zero of an uncalibrated plate (1 s at 80 Hz)
STARTUP_TARE_FRAMES = 80


def say(message: str) -> None:
    """A line for the technician on standard error (the journal, under systemd)."""
    print(f"balance-station: {message}", file=sys.stderr, flush=True)


def simulated_spec(settings: StationSettings) -> SourceSpec:
    """The simulated plate; without a configured seed, a short random one that the start-up line shows,
    so a session can be reproduced with ``[simulator] seed = N``."""
    sim, plate = settings.simulator, settings.plate
    seed = sim.seed if sim.seed is not None else random.randrange(1_000_000)
    return SourceSpec("simulated", {
        "seed": seed, "body_mass_kg": sim.body_mass_kg, "glitch_rate": sim.glitch_rate,
        "ml_mm": plate.ml_mm, "ap_mm": plate.ap_mm, "feet_ml_mm": plate.feet_ml_mm, "realtime": True,
        "speed": sim.speed,
    })


def hx711_spec(settings: StationSettings) -> SourceSpec:
    hx = settings.hx711
    assert hx is not None
    if hx.backend == "lgpio":
        return SourceSpec("hx711-lgpio", {
            "gpiochip": hx.gpiochip, "sck_gpio": hx.sck_gpio, "data_gpios": list(hx.data_gpios),
            "max_high_us": hx.max_high_us, "ready_timeout_s": hx.ready_timeout_s,
        })
    return SourceSpec("hx711-rpigpio", {
        "sck_gpios": list(hx.sck_gpios), "data_gpios": list(hx.data_gpios),
        "max_high_us": hx.max_high_us, "ready_timeout_s": hx.ready_timeout_s,
    })


def chip_model_spec(settings: StationSettings) -> SourceSpec:
    """The chip-model plate: the ``[hx711]`` backend (its defaults without the table) clocking four HX711
    chip models in the acquisition process, the simulated person's forces on their inputs."""
    from hardware.fakes.chip_plate import parse_fault

    hx = settings.hx711 if settings.hx711 is not None else HX711Settings()
    sim, plate = settings.simulator, settings.plate
    try:
        parse_fault(sim.chip_fault)
    except ValueError as exc:
        raise UserError(f"[simulator] {exc}") from None
    seed = sim.seed if sim.seed is not None else random.randrange(1_000_000)
    return SourceSpec("chip-model", {
        "backend": hx.backend, "gpiochip": hx.gpiochip, "sck_gpio": hx.sck_gpio, "sck_gpios": list(hx.sck_gpios),
        "data_gpios": list(hx.data_gpios), "max_high_us": hx.max_high_us, "ready_timeout_s": hx.ready_timeout_s,
        "seed": seed, "body_mass_kg": sim.body_mass_kg, "ml_mm": plate.ml_mm, "ap_mm": plate.ap_mm,
        "feet_ml_mm": plate.feet_ml_mm, "fault": sim.chip_fault, "fault_after_s": sim.chip_fault_after_s,
        "clock": sim.chip_clock, "realtime_priority": True,
    })


def start_plate(settings: StationSettings) -> AcquisitionProcess:
    """Start the acquisition on the plate the settings ask for, and say which one it is.

    ``auto`` takes the HX711 plate when it is configured (an ``[hx711]`` table)
    and answers; otherwise the simulated plate. ``hx711`` insists on the real plate. ``chip-model`` runs
    the HX711 backend on chip models (no fallback: a plate that does not start is an error).
    """
    choice = settings.plate_source
    if choice == "chip-model":
        acq = AcquisitionProcess(chip_model_spec(settings))
        try:
            info = acq.start()
        except SourceFault as exc:
            raise UserError(f"the chip-model plate did not start: {exc}") from None
        say(f"plate: {info['description']} (as asked with --plate chip-model)")
        return acq
    if choice in ("auto", "hx711"):
        if settings.hx711 is None:
            if choice == "hx711":
                raise UserError("--plate hx711: no [hx711] table in the configuration (see docs/hardware.md)")
            say("plate: simulated (no HX711 plate is configured)")
        else:
            acq = AcquisitionProcess(hx711_spec(settings))
            try:
                info = acq.start()
                acq.frames(timeout_s=2.0)  # the boards must answer, not just open
                if acq.error or acq.stats.faults:
                    raise SourceFault(acq.error or acq.stats.last_fault)
            except SourceFault as exc:
                acq.stop()
                if choice == "hx711":
                    raise UserError(f"HX711 plate: {exc}") from None
                say(f"plate: simulated, because the configured HX711 plate does not answer: {exc}")
            else:
                say(f"plate: {info['description']}")
                return acq
    acq = AcquisitionProcess(simulated_spec(settings))
    try:
        info = acq.start()
    except SourceFault as exc:
        raise UserError(f"the simulated plate did not start: {exc}") from None
    if choice == "simulated":
        say(f"plate: {info['description']} (as asked with --plate simulated)")
    return acq


def settle_memory() -> None:
    """Once the station has started: collect once, then freeze what start-up made (the modules, the app, the
    settings: it lives as long as the station) out of the garbage collector's scans. A full collection then
    walks the few objects made since instead of some 170,000 (83 ms here, a dropped screen frame or more on
    a Pi)."""
    gc.collect()
    gc.freeze()


def start_pelvis(settings: StationSettings, *, synthetic: bool) -> Any:
    """The pelvis sensor of the ``[pelvis]`` section, started; None without the section (or when it cannot start:
    the plate works without it)."""
    cfg = settings.pelvis
    if cfg is None:
        return None
    sensor = ("simulated" if synthetic else "icm42688") if cfg.sensor == "auto" else cfg.sensor
    if sensor == "simulated":
        if not synthetic:
            raise UserError("[pelvis] sensor = \"simulated\" is worn by the simulated patient: it needs the "
                            "simulated plate (--plate simulated)")
        from hardware.sim.pelvis import SimulatedPelvis

        say("pelvis sensor: simulated (worn by the simulated patient)")
        return SimulatedPelvis()
    from hardware.imu.source import PelvisSpec
    from station.live.pelvis import SensorPelvis

    spec = PelvisSpec(driver={"bus": cfg.bus, "address": cfg.address, "odr_hz": float(cfg.odr_hz)},
                      right_axis=(float(cfg.right_axis[0]), float(cfg.right_axis[1]), float(cfg.right_axis[2])))
    try:
        pelvis = SensorPelvis(spec).start()
    except RuntimeError as exc:
        say(f"pelvis sensor: none ({exc}); the plate goes on without it")
        return None
    say(f"pelvis sensor: ICM-42688-P on I2C bus {cfg.bus}, address 0x{cfg.address:02x}, {cfg.odr_hz} Hz "
        "(stand still on both feet for 2 s to calibrate its mounting)")
    return pelvis


def choose_calibration(settings: StationSettings, acq: AcquisitionProcess) -> Calibration:
    """The calibration file for a real plate; the built-in one for the simulator.

    A real plate without a calibration file runs on nominal gains, zeroed on
    the first second of readings (the plate must be empty at start), and the
    status page says it is not calibrated.
    """
    synthetic = acq.info.get("kind") in SYNTHETIC_SOURCES
    path = settings.calibration_path
    if path.exists():
        try:
            calib = Calibration.load(path)
        except CalibrationError as exc:
            raise UserError(str(exc)) from None
        if synthetic and calib.backend != "simulated":
            say(f"calibration: {path} was not made on this simulator ({calib.backend}); "
                "the simulator uses its built-in calibration")
            return simulator_calibration()
        if not synthetic and calib.backend.startswith("simulated"):
            raise UserError(f"{path} is a calibration of a simulated plate ({calib.backend}), not of this one: "
                            "run 'balance-station calibrate' on the real plate, or move the file away")
        geometry = (settings.plate.ml_mm, settings.plate.ap_mm)
        if (calib.plate_ml_mm, calib.plate_ap_mm) != geometry:
            raise UserError(f"{path} was made for a plate with cells {calib.plate_ml_mm:g} x {calib.plate_ap_mm:g} mm "
                            f"apart, but the configuration says {geometry[0]:g} x {geometry[1]:g} mm: "
                            "correct [plate] or recalibrate")
        say(f"calibration: {path} ({calib.created_at.date()}, {calib.age_days():.0f} days old)")
        if calib.age_days() > settings.calibration_max_age_days:
            say(f"WARNING: the calibration is older than {settings.calibration_max_age_days:.0f} days: recalibrate")
        return calib
    builtin = simulator_calibration()
    if synthetic:
        return builtin
    frames = []
    deadline = time.monotonic() + 5.0
    while len(frames) < STARTUP_TARE_FRAMES and time.monotonic() < deadline:
        frames.extend(acq.frames(timeout_s=0.5))
    if not frames:
        raise UserError("the HX711 plate gave no frames for its start-up zero")
    offsets = np.median(np.array([f.counts for f in frames]), axis=0)
    say(f"WARNING: no calibration file ({path}): nominal gains, zeroed now (keep the plate empty at start). "
        "Run 'balance-station calibrate'.")
    return Calibration(
        offsets_counts=tuple(float(v) for v in offsets),  # type: ignore[arg-type]
        gains_n_per_count=builtin.gains_n_per_count, created_at=dt.datetime.now(dt.UTC),
        station_id=settings.station_id, backend=str(acq.info.get("kind")),
        note="Not calibrated: nominal gains and a start-up zero.", source="builtin:uncalibrated",
    )


def open_station_database(settings: StationSettings) -> Any:
    from station.storage import StorageError, open_database

    try:
        return open_database(settings.database_url, data_dir=settings.data_dir, check_integrity=True,
                             station_id=settings.station_id, allow_unreachable=True)
    except StorageError as exc:
        raise UserError(str(exc)) from None


def screen_sounds() -> Any:
    """The screen's sounds (silent, but counted, where there is no sound card)."""
    from station.screen.sounds import Sounds

    return Sounds()


def recover_trials(settings: StationSettings, *, db: Any = None) -> list[int]:
    """Mark trials a crash left 'running' as incomplete, in ``db`` (default: the station's database,
    opened, created or upgraded here). Their frames, written at least once a second while they ran, are kept.
    """
    from station.storage import StorageError, recover_interrupted

    own = db is None
    database = open_station_database(settings) if own else db
    try:
        with database.sessions() as session:
            ids = recover_interrupted(session)
    except StorageError as exc:
        raise UserError(str(exc)) from None
    finally:
        if own:
            database.close()
    if ids:
        say(f"storage: {len(ids)} trial(s) interrupted by a stop or a crash kept as incomplete: {ids}")
    return ids


def start_spool(settings: StationSettings, db: Any) -> tuple[Any, Any]:
    """On a database server: the station's spool (trials go there while the server does not answer) and its
    uploader thread; (None, None) on the station's own SQLite file, which cannot be unreachable."""
    if db.is_sqlite:
        return None, None
    from station.storage.spool import Spool, SpoolUploader

    spool = Spool.open(settings.data_dir, station_id=settings.station_id)
    kept = spool.recover_interrupted()
    if kept:
        say(f"storage: {len(kept)} trial(s) recorded offline and interrupted kept as incomplete: {kept}")
    waiting = spool.waiting()
    if waiting:
        say(f"storage: {waiting} trial(s) recorded while the database was unreachable wait to upload")
    return spool, SpoolUploader(db, spool).start()


class ButtonActions:
    """What the physical controls do while the station runs.

    A press of the start button starts the next planned test of the patient
    on the station, or aborts the test running (:meth:`station.clinic.visit.Visit.press`);
    with the patient screen open, the press goes to the screen, where it also
    selects the highlighted button. The LED flashes while idle, is steady
    while a test runs and blinks fast on a fault; the buzzer beeps the start,
    the abort, and a press that had nothing to do.
    """

    def __init__(self, controls: Any, live: LiveStation, settings: StationSettings, *, visit: Any = None,
                 screen: Any = None) -> None:
        from hardware.controls import StationLight

        self._light = StationLight
        self.controls = controls
        self.live = live
        self.settings = settings
        self.visit = visit
        self.screen = screen
        self._lock = threading.Lock()
        controls.button.when_pressed = self.on_press
        controls.show(StationLight.IDLE)

    def on_press(self) -> None:
        if self.screen is not None:
            self.screen.press()  # handled on the screen's thread, in the screen's context
            return
        if self.visit is None:
            self.controls.beep("alert")
            return
        with self._lock:
            done = self.visit.press()
        say(f"start button: {done}")
        self.controls.beep({"started": "start", "aborted": "stop"}.get(done, "alert"))

    @property
    def trial_running(self) -> bool:
        return self.visit is not None and self.visit.controller.running

    def update(self) -> None:
        """Called from the main loop: the LED shows a running test, or a fault of the plate."""
        faulty = bool(self.live.feed.error) or not self.live.feed.alive
        wanted = self._light.FAULT if faulty else (self._light.RUNNING if self.trial_running else self._light.IDLE)
        if self.controls.light is not wanted:
            self.controls.show(wanted)

    def close(self) -> None:
        self.controls.close()


def start_controls(settings: StationSettings, live: LiveStation, *, pin_factory: Any = None,
                   visit: Any = None) -> ButtonActions | None:
    """The gpiozero controls when enabled; a message and None when their pins cannot be had."""
    if not settings.controls.enabled:
        return None
    from gpiozero.exc import GPIOZeroError

    from hardware.controls import StationControls

    c = settings.controls
    try:
        controls = StationControls(button_gpio=c.button_gpio, led_gpio=c.led_gpio, buzzer_gpio=c.buzzer_gpio,
                                   pin_factory=pin_factory)
    except (GPIOZeroError, OSError, RuntimeError) as exc:
        say(f"controls: unavailable ({exc}); the station runs without its button, LED and buzzer")
        return None
    say(f"controls: button GPIO {c.button_gpio}, LED GPIO {c.led_gpio}, buzzer GPIO {c.buzzer_gpio}")
    return ButtonActions(controls, live, settings, visit=visit)


#: the file in the data folder that says a station runs on it (one data folder, one station)
LOCK_NAME = "station.lock"


class DataFolderLock:
    """One data folder, one station: an exclusive ``flock`` on ``<data dir>/station.lock``, which
    holds the running station's process id.

    Not a database lock: several stations may share one clinic database (``database_url``), but two
    on one data folder would mix recordings and calibration files, and the second's start-up recovery
    would mark the first one's running trial as interrupted. The kernel drops the lock when the
    process ends, however it ends, so a crash leaves no stale lock behind.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._file: Any = None

    def acquire(self) -> DataFolderLock:
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the station's life
        except OSError as exc:
            raise UserError(f"{self.path}: cannot create the data folder's lock file: {exc.strerror or exc}") from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read(200).strip().splitlines()
            f.close()
            who = holder[0] if holder else "a process that has not written its id yet"
            raise UserError(f"another station already runs on the data folder {self.path.parent} ({who}): "
                            "stop it first, or give this one another --data-dir") from None
        f.seek(0)
        f.truncate()
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        f.write(f"process {os.getpid()}, started {started}\n")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock; the file stays (removing it would race a newcomer)
            self._file = None


class _BindFailure(logging.Filter):
    """Keeps uvicorn's raw ``[Errno 98] ...`` line off the console: the station says it in its own words."""

    def __init__(self) -> None:
        super().__init__()
        self.error: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, OSError):
            # "error while attempting to bind on address ('127.0.0.1', 8000): address already in use"
            self.error = str(record.msg.strerror or record.msg).rsplit(": ", 1)[-1]
            return False
        return True


class WebServer:
    """uvicorn in a thread (it leaves signal handling to the main thread there)."""

    def __init__(self, app: Any, *, host: str, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._serve, name="web", daemon=True)
        self.failed = False
        self.bind_failure = _BindFailure()
        logging.getLogger("uvicorn.error").addFilter(self.bind_failure)

    def _serve(self) -> None:
        try:
            self.server.run()
        except SystemExit:  # uvicorn exits when it cannot bind
            self.failed = True

    def start(self, *, timeout_s: float = 10.0) -> bool:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.server.started and self.thread.is_alive():
            time.sleep(0.02)
        return self.server.started

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(3.0)
        logging.getLogger("uvicorn.error").removeFilter(self.bind_failure)


def run_station(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings(args.config, plate_source=args.plate, data_dir=args.data_dir)
    web_options = {"host": args.host, "port": args.port}
    try:
        settings.web = WebSettings.model_validate(
            {**settings.web.model_dump(), **{k: v for k, v in web_options.items() if v is not None}})
    except ValidationError as exc:
        raise UserError(f"--host/--port: {exc.errors()[0]['msg']}") from None
    stop = threading.Event()
    signals: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        signals.append(signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    folder_lock = DataFolderLock(settings.data_dir).acquire()  # before the recovery touches any trial
    try:
        db = open_station_database(settings)  # one database for the whole run: recovery, trials, the web page
    except BaseException:
        folder_lock.release()
        raise
    spool, uploader = None, None
    try:
        if db.schema_pending:
            say(f"storage: {db.name} does not answer: the station records into its spool and uploads when it "
                "answers")
        else:
            recover_trials(settings, db=db)
        spool, uploader = start_spool(settings, db)
        acq = start_plate(settings)
    except BaseException:
        if uploader is not None:
            uploader.stop()
        if spool is not None:
            spool.close()
        db.close()
        folder_lock.release()
        raise
    live: LiveStation | None = None
    web: WebServer | None = None
    buttons: ButtonActions | None = None
    controller: TrialController | None = None
    heartbeat: Any = None
    pelvis: Any = None
    screen = None
    try:
        calibration = choose_calibration(settings, acq)
        pipeline = ForcePipeline(calibration, settings.plate.geometry(), occupancy_n=settings.plate.occupancy_n)
        live = LiveStation(acq, pipeline, auto_rezero=settings.auto_rezero, drift_warn_n=settings.zero_drift_warn_n)
        live.start()
        patient = settings.simulator.patient
        pelvis = start_pelvis(settings, synthetic=live.synthetic)
        controller = TrialController(live, db, geometry=settings.plate.geometry(),
                                     simulated_patient=None if patient == "none" else patient,
                                     rng=np.random.default_rng(settings.simulator.seed), spool=spool,
                                     pelvis=pelvis)
        if live.synthetic and patient != "none":
            say(f"simulated patient: {patient.replace('_', ' ')} (performs the tests started on this plate)")
        visit = Visit(controller, db)
        buttons = start_controls(settings, live, visit=visit)

        from webui.app import create_app

        web = WebServer(create_app(settings, live, db=db, trials=controller, spool=spool), host=settings.web.host,
                        port=settings.web.port)
        if not web.start():
            cause = f": {web.bind_failure.error.lower()}" if web.bind_failure.error else ""
            raise UserError(f"cannot serve the web page on {settings.web.host}:{settings.web.port}{cause} "
                            "(is another station running? use --port)")
        say(f"web: http://{settings.web.host}:{settings.web.port}/ (log in as a therapist; "
            "/api/v1/health answers without a login)")
        from station.storage.heartbeat import Heartbeat

        heartbeat = Heartbeat(db, settings.station_id, web_url=settings.web.station_url()).start()
        say(f"station id: {settings.station_id}; its contact and web address ({heartbeat.web_url}) are noted "
            "in the database every 30 s")
        if not db.is_sqlite and not settings.web.public_url and settings.web.host in ("127.0.0.1", "localhost", "::1"):
            say("web: other computers (balance-station serve) cannot reach this station at a loopback address: "
                "set [web] public_url to the address they use (docs/clinic.md)")
        from station.storage.accounts import list_users

        with db.sessions() as session:
            if not db.schema_pending and not list_users(session):
                say("web: no therapist account yet: create one with 'balance-station user add NAME' "
                    "(with the same --data-dir/--config)")

        if settings.screen.enabled and not args.no_screen:
            from station.screen.app import ScreenApp
            from station.screen.window import ScreenUnavailable

            screen = ScreenApp(live, geometry=settings.plate.geometry(), settings=settings.screen, visit=visit,
                               controls=buttons.controls if buttons is not None else None)
            try:
                screen.open()
            except ScreenUnavailable as exc:
                say(f"screen: none ({exc}); running without the patient screen")
                screen = None
            else:
                say("screen: patient screen open")
                screen.use_sounds(screen_sounds())  # only with a screen: no sound device probed without one
                if buttons is not None:
                    buttons.screen = screen
        else:
            say("screen: disabled; running without the patient screen")

        settle_memory()
        say("running; stop with Ctrl-C (or SIGTERM)")
        while not stop.is_set():
            if screen is not None:
                screen.tick()
                if screen.quit_requested:
                    stop.set()
            else:
                stop.wait(0.2)
            if buttons is not None:
                buttons.update()
            if acq.error:
                say(f"the plate stopped: {acq.error}")
                return 1
            if not acq.alive and not acq.ended:
                say("the acquisition process died without a word; stopping so that the service restarts")
                return 1
            if not live.pump_alive:
                say(f"frame processing stopped: {live.pump_error}; stopping so that the service restarts")
                return 1
        return 0
    finally:
        say("stopping")
        if controller is not None:
            controller.close()  # a test still running is stored as aborted
        if screen is not None:
            names = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
            how = names.get(signals[0], f"signal {signals[0]}") if signals else ""
            screen.close(f"the station was stopped ({how})" if how else "the station was stopped")
        if web is not None:
            web.stop()
        if heartbeat is not None:
            heartbeat.stop()
        if buttons is not None:
            buttons.close()
        if live is not None:
            live.stop()
        if uploader is not None:
            uploader.stop()
        if spool is not None:
            spool.close()
        if pelvis is not None:
            pelvis.stop()
        db.close()
        acq.stop()
        folder_lock.release()
