"""Acquisition in its own OS process.

HX711 clocking is timing-critical (a clock-high phase over 60 us powers the
chip down), so it must not share an interpreter, and a GIL, with pygame or the
web server. The child process builds the plate source from a picklable
:class:`SourceSpec`, reads frames as fast as the source gives them and sends
them through a pipe that never blocks it (:mod:`station.live.channel`): what the
pipe cannot take waits in the child without bound, so a main process that
stalls (a slow screen frame, a garbage collection, a 250 ms hiccup) loses
nothing: it drains the backlog when it comes back.

Messages from the child are tuples: ``("ready", info)``, ``("frame", packed)``,
``("stats", dict)``, ``("fault", message)``, ``("rejected", message)`` (a command the
source refused), ``("end",)``, ``("error", message)``.

The child dies with its parent: it asks the kernel for SIGTERM when the parent
exits (``PR_SET_PDEATHSIG``) and also watches its parent id, so a ``kill -9``
of the station leaves no orphan clocking the boards.
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib
import logging
import multiprocessing as mp
import os
import queue
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from hardware.base import PlateSource, SourceFault
from station.core.frames import FrameFlag, RawFrame
from station.live.channel import MessageReceiver, MessageSender

log = logging.getLogger(__name__)

#: prctl(2): deliver a signal to this process when its parent dies
_PR_SET_PDEATHSIG = 1

#: how often the child reports its source's counters
STATS_PERIOD_S = 0.5
#: how often the child looks for a stop, a dead parent and commands (a command waits at most this long)
CHECK_PERIOD_S = 0.025
#: a fault repeats this often at most while the child keeps retrying
FAULT_RETRY_S = 1.0


@dataclass(frozen=True)
class SourceSpec:
    """How to build a plate source in the child process.

    Parameters
    ----------
    kind : str
        ``"simulated"``, ``"hx711-lgpio"``, ``"hx711-rpigpio"``, ``"replay"`` or ``"chip-model"`` (the
        HX711 backend on four chip models fed by a simulated person, in real time: the fake GPIO
        modules are installed in the child only, :mod:`hardware.fakes.chip_plate`).
    params : dict
        Plain, picklable keyword arguments for the source's constructor.
    setup : str, optional
        ``"module:function"`` called in the child before the source is built.
        Tests use it to install the fake ``lgpio``/``RPi.GPIO`` modules, so the
        real backend code runs in the child against the HX711 chip model.
    """

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    setup: str | None = None


def build_source(spec: SourceSpec) -> PlateSource:
    """Construct the source a spec describes (in whichever process calls it)."""
    if spec.setup:
        module_name, _, func_name = spec.setup.partition(":")
        getattr(importlib.import_module(module_name), func_name)()
    params = dict(spec.params)
    if spec.kind == "simulated":
        from hardware.sim.plate import SimulatedPlate

        return SimulatedPlate.from_settings(params)
    if spec.kind == "hx711-lgpio":
        from hardware.hx711.lgpio_backend import SharedClockHX711Plate

        return SharedClockHX711Plate(**params)
    if spec.kind == "hx711-rpigpio":
        from hardware.hx711.rpigpio_backend import PerBoardHX711Plate

        return PerBoardHX711Plate(**params)
    if spec.kind == "chip-model":
        from hardware.fakes.chip_plate import ChipModelPlate

        return ChipModelPlate.from_settings(params)
    if spec.kind == "replay":
        from hardware.replay import ReplaySource
        from station.core.recording import read_recording

        path = params.pop("path")
        return ReplaySource(read_recording(path), **params)
    raise ValueError(f"unknown plate source kind {spec.kind!r}")


def _pack(frame: RawFrame) -> tuple:
    return (frame.seq, frame.t_s, frame.counts, int(frame.flags), frame.fault_cells)


def _unpack(packed: tuple) -> RawFrame:
    seq, t_s, counts, flags, fault_cells = packed
    return RawFrame(seq=seq, t_s=t_s, counts=counts, flags=FrameFlag(flags), fault_cells=fault_cells)


def _die_with_parent() -> None:
    """Ask Linux to send us SIGTERM when the parent process ends."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent-id watch below still works
        pass


def _child_main(spec: SourceSpec, out_conn: Any, cmd_q: mp.Queue, stop: Any, parent_pid: int) -> None:
    """Body of the acquisition process."""
    _die_with_parent()
    out = MessageSender(out_conn)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the station, which stops us in order
    # SIGTERM (the station's stop, or the kernel when the station died) only raises a plain flag: the
    # handler runs on the main thread, which may be inside stop.is_set() holding the shared Event's
    # lock, so setting that Event from the handler could deadlock the process for good.
    terminated = [False]

    def on_term(*_: Any) -> None:
        terminated[0] = True

    signal.signal(signal.SIGTERM, on_term)
    try:
        source = build_source(spec)
        source.open()
    except Exception as exc:  # noqa: BLE001 - every failure must reach the station as a message
        out.send(("error", f"{spec.kind}: {exc}"))
        return
    out.send(("ready", {"kind": source.kind, "description": source.describe(),
                         "nominal_rate_hz": source.nominal_rate_hz, "pid": os.getpid()}))
    next_stats = time.monotonic() + STATS_PERIOD_S
    try:
        next_check = 0.0
        while not terminated[0]:
            now = time.monotonic()
            checking = now >= next_check  # the stop, the parent and the commands: every CHECK_PERIOD_S
            if checking:
                next_check = now + CHECK_PERIOD_S
                if stop.is_set() or os.getppid() != parent_pid:
                    break  # asked to stop, or orphaned
            while checking and not cmd_q.empty():
                try:
                    name, params = cmd_q.get_nowait()
                except queue.Empty:
                    break
                try:
                    source.command(name, **params)
                except (TypeError, ValueError) as exc:  # a bad command must not stop the acquisition
                    out.send(("rejected", f"command {name!r}: {exc}"))
            faults_before = source.stats.faults
            try:
                frame = source.read(timeout_s=1.0)
            except SourceFault as exc:
                if source.stats.faults == faults_before:  # count it once, whoever counts
                    source.stats.faults += 1
                    source.stats.last_fault = str(exc)
                out.send(("fault", str(exc)))
                stop.wait(FAULT_RETRY_S)
                continue
            if frame is None:
                out.send(("end",))
                break
            out.send(("frame", _pack(frame)))
            now = time.monotonic()
            if now >= next_stats:
                out.send(("stats", dataclasses.asdict(source.stats)))
                next_stats = now + STATS_PERIOD_S
    except Exception as exc:  # noqa: BLE001
        out.send(("error", f"{spec.kind}: {type(exc).__name__}: {exc}"))
    finally:
        if os.getppid() != parent_pid:
            out.close(timeout_s=0.0)  # orphaned (the station was killed): nobody reads the pipe any more
        else:
            out.send(("stats", dataclasses.asdict(source.stats)))
            out.close(timeout_s=1.0)
        source.close()


@dataclass
class AcquisitionStats:
    """What the station knows about the acquisition, for the status page.

    ``dropped_frames`` counts frames missing from the timeline (gaps longer
    than 1.5 sample periods), whatever lost them: a read the source discarded,
    a board that timed out, a sequence gap. ``source`` holds the child's own
    counters (``dropped`` there is reads the source discarded, ``glitches``
    frames it flagged).
    """

    frames: int = 0
    dropped_frames: int = 0
    sequence_gaps: int = 0
    faults: int = 0
    last_fault: str = ""
    source: dict[str, Any] = field(default_factory=dict)


class AcquisitionProcess:
    """Runs a plate source in a child process and hands its frames to this one.

    Use :meth:`start`, then call :meth:`frames` regularly (from one thread),
    and :meth:`stop` at the end; or use it as a context manager.
    """

    def __init__(self, spec: SourceSpec, *, start_method: str = "spawn") -> None:
        self.spec = spec
        self._ctx = mp.get_context(start_method)
        self._out_r, self._out_w = self._ctx.Pipe(duplex=False)
        self._out = MessageReceiver(self._out_r)
        self._cmd: mp.Queue = self._ctx.Queue()
        self._stop = self._ctx.Event()
        self._proc: mp.process.BaseProcess | None = None
        self.info: dict[str, Any] = {}
        self.stats = AcquisitionStats()
        self.ended = False
        self.error = ""
        self.rejected_commands: list[str] = []
        self._last_seq: int | None = None
        self._last_t_s: float | None = None
        self._times: deque[float] = deque(maxlen=400)

    # -- life cycle -------------------------------------------------------------------
    def start(self, *, timeout_s: float = 20.0) -> dict[str, Any]:
        """Start the child and wait until its source is open.

        Raises :class:`SourceFault` with the child's message when the source
        cannot be opened, or when the child does not answer in ``timeout_s``.
        """
        self._proc = self._ctx.Process(
            target=_child_main, name=f"acquisition-{self.spec.kind}",
            args=(self.spec, self._out_w, self._cmd, self._stop, os.getpid()), daemon=True,
        )
        self._proc.start()
        self._out_w.close()  # the child has its own copy: the pipe ends when the child does
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msgs = self._out.get(timeout_s=0.1, max_messages=1)  # the frames after "ready" stay for frames()
            if not msgs:
                if not self._proc.is_alive():
                    code = self._proc.exitcode
                    self.stop()
                    raise SourceFault(f"{self.spec.kind}: the acquisition process exited ({code})") from None
                continue
            (msg,) = msgs
            if msg[0] == "ready":
                self.info = msg[1]
                return self.info
            if msg[0] == "error":
                self.stop()
                raise SourceFault(msg[1])
        self.stop()
        raise SourceFault(f"{self.spec.kind}: the acquisition process did not start within {timeout_s:.0f} s")

    def stop(self, *, timeout_s: float = 2.0) -> None:
        """Stop the child: ask, then terminate, then kill. Never leaves it running."""
        proc = self._proc
        if proc is None:
            return
        self._stop.set()
        proc.join(timeout_s)
        if proc.is_alive():
            proc.terminate()
            proc.join(1.0)
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)
        self._proc = None
        # let the command queue's feeder thread go without waiting for a reader
        self._cmd.cancel_join_thread()
        self._cmd.close()
        self._out.close()

    def __enter__(self) -> AcquisitionProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # -- data -------------------------------------------------------------------------
    def command(self, name: str, /, **params: Any) -> None:
        """Send a command to the source (for the simulator: ``lean_to``, ``behaviour``...)."""
        self._cmd.put((name, params))

    def frames(self, *, timeout_s: float = 0.1, max_frames: int = 10_000) -> list[RawFrame]:
        """All frames that arrived, waiting up to ``timeout_s`` for the first."""
        out: list[RawFrame] = []
        for msg in self._out.get(timeout_s=timeout_s, max_messages=max_frames):
            kind = msg[0]
            if kind == "frame":
                frame = _unpack(msg[1])
                self._account(frame)
                out.append(frame)
            elif kind == "stats":
                self.stats.source = msg[1]
            elif kind == "fault":
                self.stats.faults += 1
                self.stats.last_fault = msg[1]
                log.warning("plate fault: %s", msg[1])
            elif kind == "error":
                self.error = msg[1]
                self.stats.last_fault = msg[1]
                self.ended = True
                log.error("acquisition stopped: %s", msg[1])
            elif kind == "rejected":
                self.rejected_commands.append(msg[1])
                log.warning("plate source rejected %s", msg[1])
            elif kind == "end":
                self.ended = True
        return out

    def _account(self, frame: RawFrame) -> None:
        st = self.stats
        st.frames += 1
        if self._last_seq is not None and frame.seq != self._last_seq + 1:
            st.sequence_gaps += 1
        if self._last_t_s is not None:
            period_s = 1.0 / float(self.info.get("nominal_rate_hz") or 80.0)
            gap_s = frame.t_s - self._last_t_s
            if gap_s > 1.5 * period_s:
                st.dropped_frames += max(1, round(gap_s / period_s) - 1)
        self._last_seq = frame.seq
        self._last_t_s = frame.t_s
        self._times.append(frame.t_s)

    def rate_hz(self) -> float | None:
        """Sample rate achieved over the last few seconds of frames."""
        times = self._times
        if len(times) < 10 or times[-1] <= times[0]:
            return None
        return (len(times) - 1) / (times[-1] - times[0])
