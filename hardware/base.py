"""The plate-source interface shared by the HX711 backends, the simulator and replay."""

from __future__ import annotations

import abc
from collections.abc import Iterator

from station.core.frames import RawFrame, SourceStats


class SourceFault(RuntimeError):
    """A source cannot deliver frames (a board is unplugged, a file ended badly...).

    The message names the part at fault and is meant for the technician.
    """


class PlateSource(abc.ABC):
    """A source of raw frames from four load cells.

    Sources are used as context managers or with explicit :meth:`open` and
    :meth:`close`. :meth:`read` blocks until the next frame and never blocks for
    longer than its ``timeout_s``: a live source whose boards stop answering
    raises :class:`SourceFault` instead of hanging.

    Attributes
    ----------
    kind : str
        ``"hx711-lgpio"``, ``"hx711-rpigpio"``, ``"simulated"`` or ``"replay"``.
    nominal_rate_hz : float
        The rate the source aims at (80 for the HX711 with RATE high).
    stats : SourceStats
        Counters kept by the source.
    """

    kind: str = "abstract"
    nominal_rate_hz: float = 80.0

    def __init__(self) -> None:
        self.stats = SourceStats()

    def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire the hardware or resources. Idempotent."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release everything :meth:`open` acquired. Idempotent."""

    @abc.abstractmethod
    def read(self, timeout_s: float = 1.0) -> RawFrame | None:
        """Return the next frame.

        Returns ``None`` when the source has ended (a replay at the end of its
        file). Raises :class:`SourceFault` when no frame could be produced
        within ``timeout_s`` seconds.
        """

    def command(self, name: str, /, **params: object) -> None:  # noqa: B027 - optional for a source
        """Handle a command sent from the station (the simulator takes
        ``lean_to`` and behaviour changes). Sources that take none ignore it."""

    def describe(self) -> str:
        """One line for the technician saying what this source is."""
        return self.kind

    def __enter__(self) -> PlateSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[RawFrame]:
        while (frame := self.read()) is not None:
            yield frame
