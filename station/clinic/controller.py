"""Running a test on the live plate and storing it: one trial at a time, from the screen, the button or the web.

:class:`TrialController` owns the station's running trial. ``start`` makes
the protocol runner, adds the trial to the database (state ``running``, in
the patient's visit of today) and starts a worker thread that feeds the
runner every live frame (:class:`~station.clinic.live_trial.LiveTrial`) and
stores those same frames, as the trial's recording holds them, a block at a
time (:class:`~station.storage.trials.TrialWriter`, at least once a second).
When the runner finishes, the trial is scored with the same function as
``balance-station analyze`` and stored ``complete`` with its metrics; an
abort stores it ``aborted``; a crash leaves it ``running``, and the next
start keeps it as ``incomplete`` with its frames.

The screen, the start button and the web page all see the same
:meth:`TrialController.snapshot` (a frozen :class:`~station.clinic.snapshot.TrialSnapshot`; the HTTP API
sends its ``as_dict()``), so whoever started a trial, everybody shows it.

On the simulated plate, a :class:`~station.clinic.sim_patient.SimulatedPatient`
performs the test: the controller hands it the runner's phases and sends its
commands to the plate (and to the simulated pelvis sensor, when there is one).

With a pelvis sensor (``pelvis``: :class:`station.live.pelvis.SensorPelvis` or
:class:`hardware.sim.pelvis.SimulatedPelvis`), every trial's recording and
stored frames carry ``pelvis_obliquity_deg`` (docs/pelvis-sensor.md).
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from sqlalchemy.exc import DBAPIError

from station.clinic.live_trial import LiveTrial
from station.clinic.sim_patient import SimulatedPatient
from station.clinic.snapshot import (
    DrillStatus,
    PelvisNow,
    QuietStanceStatus,
    SingleLegStatus,
    TrialSnapshot,
    TrialStatus,
)
from station.core.frames import ForceFrame
from station.core.geometry import PlateGeometry
from station.protocols.events import Instruction, ProtocolEvent
from station.protocols.pelvis import SIGN_THRESHOLD_DEG, lifted_side_drop
from station.protocols.quiet_stance import QuietStanceConfig, QuietStanceRunner
from station.protocols.single_leg import SIDES, SingleLegConfig, SingleLegRunner
from station.storage.db import Database, StorageError
from station.storage.models import TrialState
from station.storage.patients import get_patient
from station.storage.spool import Spool, SpoolTrialWriter, database_reachable
from station.storage.trials import TrialWriter, latest_metrics
from station.storage.values import Conflict
from station.storage.visits import todays_visit

__all__ = ["PROTOCOLS", "TrialBusy", "TrialController"]

log = logging.getLogger(__name__)

PROTOCOLS = ("single-leg", "quiet-stance")
#: events kept in the snapshot
EVENTS_KEPT = 50
#: how long the worker waits for frames before checking the clock, in s
POLL_S = 0.05


class TrialBusy(RuntimeError):
    """A trial is already running on the plate."""


def _age_years(birth_year: int | None) -> float | None:
    if birth_year is None:
        return None
    return float(time.localtime().tm_year - int(birth_year))


class _DrillState:
    """The drill's state with the ``.value`` the controller reads from a protocol runner."""

    def __init__(self, drill: Any) -> None:
        self._drill = drill

    @property
    def value(self) -> str:
        return str(self._drill.state)


class DrillRunner:
    """A drill (:mod:`station.drills`) behind the protocol runner's face, so that it runs, is recorded
    and is stored exactly like a test (:class:`~station.protocols.trial.TrialCapture`)."""

    #: every frame belongs to the drill's recording
    frame_in_trial = True
    onset_s = None

    def __init__(self, drill: Any) -> None:
        self.drill = drill
        #: the drill reads the pelvis: the capture gives it the angle with each frame
        self.needs_pelvis = bool(getattr(drill, "needs_pelvis", False))
        self.protocol = f"drill-{drill.name}"
        self.state = _DrillState(drill)
        #: the time of the last frame fed, on the drill's clock, in s
        self.last_t_s = 0.0

    @property
    def finished(self) -> bool:
        return bool(self.drill.finished)

    @property
    def message(self) -> str:
        return str(self.drill.message)

    @property
    def end_reason(self) -> str:
        return str(self.drill.end_reason)

    def update(self, frame: Any, pelvis_deg: float | None = None) -> list[Any]:
        self.last_t_s = float(frame.t_s)
        return self.drill.update(frame, pelvis_deg)

    def abort(self, reason: str = "aborted by the operator") -> list[Any]:
        return self.drill.abort(reason)

    def metadata(self) -> dict[str, str]:
        return {"protocol": self.protocol, **self.drill.metadata()}

    def status(self) -> dict[str, Any]:
        view = self.drill.view()
        return {"protocol": self.protocol, "state": view.state, "message": view.instruction,
                "score": view.score, "streak": view.streak, "level": view.level, "round_index": view.round_index,
                "rounds": view.rounds, "elapsed_s": view.elapsed_s, "duration_s": view.duration_s}

    def result(self) -> dict[str, Any]:
        return self.drill.metrics()


def _typed_status(runner: SingleLegRunner | QuietStanceRunner | DrillRunner) -> TrialStatus:
    """The runner's status as its typed value."""
    values = runner.status()
    if isinstance(runner, SingleLegRunner):
        return SingleLegStatus(**values)
    if isinstance(runner, QuietStanceRunner):
        return QuietStanceStatus(**values)
    return DrillStatus(**values)


class TrialController:
    """The station's live trial: start, abort, watch; stored as it runs.

    Parameters
    ----------
    live : LiveStation
        The running plate.
    db : Database
        Where trials are stored.
    geometry : PlateGeometry
        The plate.
    single_leg : SingleLegConfig, optional
        Settings of every single-leg test (default: the standard test).
    simulated_patient : {"healthy", "weak_abductors"} or None
        On a simulated plate, who performs the tests (None: nobody; the
        simulated person then only does what the screen's keys tell it).
    rng : numpy.random.Generator, optional
        The simulated patient's randomness.
    lift_timeout_s : float
        A single-leg test still waiting for the lift this long after the
        instruction is aborted ("no lift-off").
    clock : callable
        Monotonic seconds (for the timeout and the elapsed time).
    spool : Spool, optional
        Where trials go while the database is unreachable (:mod:`station.storage.spool`); without
        one, a test cannot start then.
    pelvis : object, optional
        The pelvis sensor (:class:`station.protocols.trial.PelvisLookup`; a
        simulated one also takes the simulated patient's commands); None: none.
    """

    def __init__(self, live: Any, db: Database, *, geometry: PlateGeometry,
                 single_leg: SingleLegConfig | None = None, simulated_patient: str | None = None,
                 rng: np.random.Generator | None = None, lift_timeout_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, spool: Spool | None = None,
                 pelvis: Any = None) -> None:
        if not lift_timeout_s > 0:
            raise ValueError(f"lift_timeout_s must be positive, got {lift_timeout_s!r}")
        self.live = live
        self.db = db
        self.spool = spool
        self.geometry = geometry
        self.single_leg = single_leg if single_leg is not None else SingleLegConfig()
        self.lift_timeout_s = float(lift_timeout_s)
        self._clock = clock
        self.pelvis = pelvis
        self.patient_sim = (SimulatedPatient(profile=simulated_patient, rng=rng)
                            if simulated_patient is not None and live.synthetic else None)
        self._seed = int((rng if rng is not None else np.random.default_rng()).integers(1 << 30))
        self._drills_made = 0
        self.player: Any = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._abort_reason: str | None = None
        self._snap = TrialSnapshot()
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=EVENTS_KEPT)
        self._event_count = 0
        self._finished_cbs: list[Callable[[TrialSnapshot], None]] = []
        self._claimed_by = ""
        self._runner: Any = None
        #: the running trial's writer: the database's, or the spool's (from the start, or handed over)
        self._writer: TrialWriter | None = None
        self._trial_args: dict[str, Any] = {}
        self._pelvis_level: list[float] = []

    # -- public -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def event_count(self) -> int:
        """Events published so far (cheap: a reader checks it before taking a :meth:`snapshot`)."""
        return self._event_count

    def current_drill(self) -> DrillRunner | None:
        """The drill running now (for the patient screen to draw), or None."""
        runner = self._runner
        return runner if self.running and isinstance(runner, DrillRunner) else None

    def claim(self, label: str) -> None:
        """Something else uses the plate (a game on the patient screen): refuse trials until :meth:`release`.

        Raises TrialBusy when a trial runs or the plate is already claimed."""
        with self._lock:
            if self.running:
                raise TrialBusy(f"trial {self._snap.trial_id} is running on the plate")
            if self._claimed_by:
                raise TrialBusy(f"the plate is in use: {self._claimed_by}")
            self._claimed_by = str(label)

    def release(self) -> None:
        with self._lock:
            self._claimed_by = ""

    def on_finished(self, callback: Callable[[TrialSnapshot], None]) -> None:
        """Call ``callback(snapshot)`` (in the worker thread) when a trial ends, however it ends."""
        self._finished_cbs.append(callback)

    def start(self, *, patient_code: str, protocol: str, stance_side: str | None = None,
              params: Mapping[str, Any] | None = None) -> int:
        """Start a test of the patient on the plate; returns the stored trial's id.

        Parameters
        ----------
        patient_code : str
            An existing patient.
        protocol : {"single-leg", "quiet-stance"}
            The test.
        stance_side : {"left", "right"}
            The leg stood on (single-leg only).
        params : mapping, optional
            Quiet stance: ``eyes`` (open/closed), ``surface`` (firm/foam), ``duration_s``.
            Single-leg: ``end_on_failure``.

        Raises
        ------
        TrialBusy
            A trial is running.
        station.storage.trials.NotFound
            No such patient.
        ValueError
            A bad protocol, side or parameter (the message names it).
        """
        self._lookup(patient_code, visit=False)  # an unknown patient is said so first, even while a trial runs
        params = dict(params or {})
        if protocol.startswith(("drill:", "drill-")) and "limits" not in params:
            limits = self.patient_limits(patient_code)
            if limits is not None:
                params["limits"] = limits
        runner = self._make_runner(protocol, stance_side, params)
        with self._lock:
            if self.running:
                raise TrialBusy(f"trial {self._snap.trial_id} is running: abort it or wait for its end")
            if self._claimed_by:
                raise TrialBusy(f"the plate is in use: {self._claimed_by}")
            code, age, visit_id = self._lookup(patient_code, visit=True)
            metadata: dict[str, str] = {"patient": code}
            if age is not None:
                metadata["age_years"] = f"{age:g}"
            rate = float(self.live.feed.info.get("nominal_rate_hz") or 80.0)
            protocol = getattr(runner, "protocol", protocol)  # drill:reach is stored as drill-reach
            trial_args: dict[str, Any] = dict(
                protocol=protocol, stance_side=stance_side, settings={**runner.metadata(), **metadata},
                sample_rate_hz=rate, geometry=self.geometry, calibration=self.live.pipeline.calibration,
                plate_source=str(self.live.feed.info.get("kind", "")), time_origin_s=0.0)
            writer: TrialWriter | None = None
            if visit_id is not None:
                try:
                    writer = TrialWriter.start(self.db.sessions, session_id=visit_id, **trial_args)
                except DBAPIError:
                    if not self._offline():
                        raise
            if writer is None:  # the database is unreachable: the trial goes to the spool
                assert self.spool is not None
                writer = self.spool.start_trial(patient_code=code, station_id=self.db.station_id, **trial_args)
            self._writer = writer
            self._trial_args = {**trial_args, "patient_code": code}
            self._abort_reason = None
            self._pelvis_level = []
            self._events.clear()
            self._snap = TrialSnapshot(
                running=True, trial_id=writer.trial_id, patient=code, protocol=protocol, stance_side=stance_side,
                state="starting", instruction=runner.message, started_at=time.time(),
                offline=bool(getattr(writer, "offline", False)),
            )
            self._runner = runner
            trial = LiveTrial(self.live, runner, geometry=self.geometry, metadata=metadata,
                              on_keep=lambda frame, pelvis_deg=None: self._store(frame, pelvis_deg),
                              pelvis=self.pelvis)
            if self.patient_sim is not None:
                sample = self.live.latest()
                self._command(self.patient_sim.on_start(plate_occupied=bool(sample and sample.occupied)))
                self._pelvis_command(self.patient_sim.pelvis_commands(now_t_s=self._plate_now()))
                self.player = None
                if isinstance(runner, DrillRunner):
                    from station.drills.autoplay import AutoPlayer

                    skill = "good" if self.patient_sim.profile == "healthy" else "poor"
                    self.player = AutoPlayer(skill=skill, rng=np.random.default_rng(self._drill_seed()))
            self._thread = threading.Thread(target=self._work, args=(trial, writer),
                                            name=f"trial-{writer.trial_id}", daemon=True)
            self._thread.start()
            log.info("trial %d started: %s %s %s", writer.trial_id, code, protocol, stance_side or "")
            return writer.trial_id

    def database_down(self) -> bool:
        """True when there is a spool and the database is known to be down, or does not answer now."""
        if self.spool is None:
            return False
        return self.spool.offline or self._offline()

    def _offline(self) -> bool:
        """True when there is a spool and the database does not answer now (its trials go to the spool)."""
        if self.spool is None:
            return False
        offline = not database_reachable(self.db)
        self.spool.online = not offline
        return offline

    def _lookup(self, patient_code: str, *, visit: bool) -> tuple[str, float | None, int | None]:
        """(code, age, id of today's visit) from the database; while it is unreachable, from the spool
        (no visit: the upload finds or opens it)."""
        if self.spool is not None and self.spool.offline:  # known to be down: no waiting for a connection
            code, birth_year = self.spool.find_patient(patient_code)
            return code, _age_years(birth_year), None
        try:
            with self.db.sessions() as session:
                patient = get_patient(session, patient_code)
                code, age = patient.code, _age_years(patient.birth_year)
                visit_id = todays_visit(session, code).id if visit else None
            return code, age, visit_id
        except DBAPIError:
            if not self._offline():
                raise
        assert self.spool is not None
        code, birth_year = self.spool.find_patient(patient_code)
        return code, _age_years(birth_year), None

    def patient_limits(self, patient_code: str) -> dict[str, float] | None:
        """The patient's limits of stability from their latest complete ``limits`` drill, or None.

        Reach and rhythm targets are placed at a percentage of these (typical
        adult limits when the patient has none measured).
        """
        try:
            with self.db.sessions() as session:
                metrics = latest_metrics(session, patient_code, "drill-limits")
        except DBAPIError:
            if not self._offline():
                raise
            return None
        limits = (metrics or {}).get("limits")
        if not isinstance(limits, dict) or not all(isinstance(limits.get(k), (int, float)) and limits[k] > 0
                                                   for k in ("forward_mm", "backward_mm", "left_mm", "right_mm")):
            return None
        return {k: float(limits[k]) for k in ("forward_mm", "backward_mm", "left_mm", "right_mm")}

    def abort(self, reason: str = "aborted by the operator") -> bool:
        """Abort the running trial (it is stored as aborted); False when none runs."""
        with self._lock:
            if not self.running:
                return False
            self._abort_reason = str(reason) or "aborted by the operator"
        return True

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the running trial to end; True when none runs any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        return not self.running

    def close(self) -> None:
        """Abort a running trial and wait for it to be stored (at station stop)."""
        if self.abort("the station was stopped"):
            self.wait(10.0)

    def snapshot(self) -> TrialSnapshot:
        """The trial now: ``running``, ``trial_id``, ``patient``, ``protocol``, ``stance_side``, ``state``,
        ``instruction``, ``elapsed_s``, ``events`` (the last :data:`EVENTS_KEPT`, each ``{kind, t_s, message,
        ...}``), ``event_count``, ``status`` (the runner's own status), ``result`` (the scores once complete),
        ``error``...; ``as_dict()`` is its JSON."""
        with self._lock:
            return replace(self._snap, events=tuple(self._events), event_count=self._event_count)

    # -- inside ---------------------------------------------------------------------------------

    def _make_runner(self, protocol: str, stance_side: str | None,
                     params: dict[str, Any]) -> SingleLegRunner | QuietStanceRunner | DrillRunner:
        if protocol == "single-leg":
            if stance_side not in SIDES:
                raise ValueError(f"stance_side must be 'left' or 'right' for the single-leg test, got {stance_side!r}")
            unknown = sorted(set(params) - {"end_on_failure"})
            if unknown:
                raise ValueError(f"params: the single-leg test takes end_on_failure only, got {unknown[0]!r}")
            config = self.single_leg
            if "end_on_failure" in params:
                config = replace(config, end_on_failure=params["end_on_failure"])
            return SingleLegRunner(stance_side=stance_side, geometry=self.geometry, config=config)
        if protocol == "quiet-stance":
            if stance_side is not None:
                raise ValueError(f"stance_side: the quiet-stance test stands on both feet, got {stance_side!r}")
            unknown = sorted(set(params) - {"eyes", "surface", "duration_s"})
            if unknown:
                raise ValueError(f"params: the quiet-stance test takes eyes, surface, duration_s; got {unknown[0]!r}")
            return QuietStanceRunner(geometry=self.geometry, config=QuietStanceConfig(**params))
        if protocol.startswith(("drill:", "drill-")):
            return self._make_drill(protocol[len("drill:"):], stance_side, params)
        raise ValueError(f"protocol must be one of {list(PROTOCOLS)} or drill:NAME, got {protocol!r}")

    def _make_drill(self, name: str, stance_side: str | None, params: dict[str, Any]) -> DrillRunner:
        from station.drills import Limits, make_drill
        from station.drills.catalogue import ALL_DRILLS, canonical_name

        name = canonical_name(name)
        if name not in ALL_DRILLS:
            raise ValueError(f"protocol: no drill {name!r}; drills: {', '.join(ALL_DRILLS)}")
        params = dict(params)
        feedback = params.pop("feedback", "continuous")
        level = params.pop("level", None)
        limits = params.pop("limits", None)
        if limits is not None:
            try:
                limits = Limits.from_dict(limits)
            except (TypeError, ValueError, KeyError) as exc:
                raise ValueError(f"params: limits: {exc}") from None
        drill = make_drill(name, geometry=self.geometry, rng=np.random.default_rng(self._drill_seed()),
                           params=params, feedback=feedback, stance_side=stance_side, limits=limits, level=level,
                           pelvis_sensor=self.pelvis is not None)
        return DrillRunner(drill)

    def _drill_seed(self) -> int:
        self._drills_made += 1
        return self._seed * 1000 + self._drills_made

    def _command(self, commands: list[tuple[str, dict[str, Any]]]) -> None:
        for name, params in commands:
            try:
                self.live.command(name, **params)
            except (ValueError, RuntimeError) as exc:
                log.warning("simulated patient: %s %s refused: %s", name, params, exc)

    def _plate_now(self) -> float:
        """The plate's time now (the newest frame's), s."""
        sample = self.live.latest()
        return float(sample.frame.t_s) if sample is not None else 0.0

    def _pelvis_command(self, commands: list[tuple[str, dict[str, Any]]]) -> None:
        """The simulated patient's commands to a simulated pelvis sensor (none to a real one)."""
        if self.pelvis is None or not getattr(self.pelvis, "synthetic", False):
            return
        for name, params in commands:
            try:
                self.pelvis.command(name, **params)
            except (ValueError, KeyError) as exc:
                log.warning("simulated pelvis: %s refused: %s", name, exc)

    def _store(self, frame: ForceFrame, pelvis_deg: float | None = None) -> None:
        writer = self._writer
        assert writer is not None
        try:
            writer.add(frame, pelvis_deg=pelvis_deg)
        except StorageError as exc:  # the frames stay buffered; the next block retries (or the spool takes them)
            if not self._hand_over(exc):
                self._note_error(str(exc))
        except ValueError as exc:
            log.warning("trial %d: frame not stored: %s", writer.trial_id, exc)

    def _play(self, runner: DrillRunner) -> None:
        """The simulated patient plays the drill: its moves, from what the drill shows."""
        sample = self.live.latest()
        if sample is None:
            return
        frame = sample.frame
        commands = self.player.commands(runner.drill.view(), t_s=runner.last_t_s,
                                        cop_ml_mm=frame.cop_ml_mm, cop_ap_mm=frame.cop_ap_mm)
        # the pelvis drills' moves go to the simulated pelvis sensor, the rest to the plate
        self._pelvis_command([(p["command"], {k: v for k, v in p.items() if k != "command"})
                              for name, p in commands if name == "pelvis"])
        self._command([(name, p) for name, p in commands if name != "pelvis"])

    def _note_error(self, message: str) -> None:
        with self._lock:
            if self._snap.error != message:
                log.error("%s", message)
            self._snap = replace(self._snap, error=message)

    def _pelvis_now(self, runner: Any) -> PelvisNow | None:
        """The pelvis for the patient screen's gauge: ``{obliquity_deg, drop_deg, threshold_deg}``; None without a
        sensor. ``drop_deg`` (single-leg, once the level is known): the lifted side's drop below its level in the
        two-foot stance before the lift (the mean over the baseline and the countdown), positive = lower. A
        display only: the scores come from the recording (station.protocols.pelvis)."""
        if self.pelvis is None:
            return None
        value = float(self.pelvis.latest())
        if not math.isfinite(value):
            return PelvisNow(obliquity_deg=None, drop_deg=None, threshold_deg=SIGN_THRESHOLD_DEG)
        state = runner.state.value
        if state in ("baseline", "countdown"):
            self._pelvis_level.append(value)
        drop = None
        if isinstance(runner, SingleLegRunner) and self._pelvis_level and state in ("await_lift", "hold", "done"):
            level = float(np.mean(self._pelvis_level))
            drop = float(lifted_side_drop(obliquity_deg=np.array([value]), baseline_deg=level,
                                          stance_side=runner.stance_side)[0])
        return PelvisNow(obliquity_deg=value, drop_deg=drop, threshold_deg=SIGN_THRESHOLD_DEG)

    def _publish(self, trial: LiveTrial, events: list[ProtocolEvent], t0: float) -> None:
        runner = trial.runner
        status = _typed_status(runner)
        pelvis = self._pelvis_now(runner)
        with self._lock:
            for event in events:
                self._events.append(event.to_dict())
                self._event_count += 1
            self._snap = replace(self._snap, state=runner.state.value, instruction=runner.message,
                                 elapsed_s=self._clock() - t0, status=status, pelvis=pelvis)

    def _work(self, trial: LiveTrial, writer: TrialWriter) -> None:
        t0 = self._clock()
        lift_told: float | None = None
        try:
            while not trial.finished:
                reason = self._abort_reason
                if reason is not None:
                    events = trial.abort(reason)
                    self._publish(trial, events, t0)
                    break
                events = trial.poll(timeout_s=POLL_S)
                for event in events:
                    if isinstance(event, Instruction) and event.code == "lift" and lift_told is None:
                        lift_told = self._clock()
                        if self.patient_sim is not None and isinstance(trial.runner, SingleLegRunner):
                            self._command(self.patient_sim.on_lift_instruction(
                                stance_side=trial.runner.stance_side, hold_s=trial.runner.config.hold_s))
                            self._pelvis_command(self.patient_sim.pelvis_commands(
                                now_t_s=self._plate_now(), stance_side=trial.runner.stance_side))
                self._publish(trial, events, t0)
                if self.player is not None and isinstance(trial.runner, DrillRunner):
                    self._play(trial.runner)
                try:
                    self._writer.tick()  # type: ignore[union-attr]
                except StorageError as exc:
                    if not self._hand_over(exc):
                        self._note_error(str(exc))
                if (lift_told is not None and trial.runner.onset_s is None
                        and self._clock() - lift_told > self.lift_timeout_s):
                    self._publish(trial, trial.abort(f"no lift-off within {self.lift_timeout_s:g} s"), t0)
            self._finish(trial, writer)
        except Exception as exc:  # never die silently: say it, and leave the trial for recovery
            log.exception("trial %d: the worker failed", writer.trial_id)
            trial.close()
            with self._lock:
                self._snap = replace(self._snap, running=False, state="failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            if self.patient_sim is not None:
                self._command(self.patient_sim.on_end())
                self._pelvis_command([("quiet", {"at_s": self._plate_now()})])
            snap = self.snapshot()
            for callback in self._finished_cbs:
                try:
                    callback(snap)
                except Exception:
                    log.exception("a trial-finished callback failed")

    def _hand_over(self, exc: StorageError) -> bool:
        """The database stopped answering during the trial: the spool takes the rest of it (same trial id);
        True when it did."""
        writer = self._writer
        if (self.spool is None or writer is None or isinstance(writer, SpoolTrialWriter)
                or isinstance(exc, Conflict) or not self._offline()):
            return False
        self._writer = self.spool.adopt(writer, station_id=self.db.station_id, **self._trial_args)
        with self._lock:
            self._snap = replace(self._snap, offline=True, error="")
        return True

    def _finish(self, trial: LiveTrial, writer: TrialWriter) -> None:
        writer = self._writer or writer
        trial.close()
        runner = trial.runner
        result: dict[str, Any] | None = None
        if isinstance(runner, DrillRunner):  # a drill's result is its metrics (an aborted one's rounds so far)
            trial.capture.close()
            result = runner.result()
            aborted = runner.state.value == "aborted"
            state = TrialState.ABORTED if aborted else TrialState.COMPLETE
            detail = runner.end_reason
        elif runner.state.value == "aborted":
            state, detail = TrialState.ABORTED, runner.end_reason
        else:
            try:
                result = trial.result()
                state, detail = TrialState.COMPLETE, runner.end_reason
            except ValueError as exc:  # too short to score
                state, detail = TrialState.INCOMPLETE, f"not scored: {exc}"
        try:
            try:
                writer.finish(state, result, detail=detail, frames_dropped=trial.overflowed)
            except StorageError as exc:
                if not self._hand_over(exc):
                    raise
                writer = self._writer  # the spool's: it stores the rest and the end
                writer.finish(state, result, detail=detail, frames_dropped=trial.overflowed)  # type: ignore[union-attr]
            stored = True
        except StorageError as exc:
            self._note_error(f"trial {writer.trial_id} could not be stored: {exc}")
            stored = False
        with self._lock:
            self._snap = replace(self._snap, running=False, state=runner.state.value, result=result, stored=stored,
                                 outcome=state.value, detail=detail, instruction=runner.message)
        log.info("trial %d ended %s (%s)", writer.trial_id, state.value, detail)
