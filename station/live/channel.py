"""The acquisition process's messages to the station: a pipe that never blocks the sender.

Each message is pickled and sent with a 4-byte length in front. The sending side
(:class:`MessageSender`, in the acquisition process) writes without blocking:
what the pipe cannot take now waits in the sender's own buffer, without bound,
and goes with the next message. So a station that stalls (a slow screen frame,
a garbage collection) loses nothing and never stalls the HX711 clocking, as a
:class:`multiprocessing.Queue` would guarantee too, but without the queue's
feeder thread: one wake-up per frame in the acquisition process instead of two,
which is most of what a frame costs there on a small computer.

The receiving side (:class:`MessageReceiver`, in the station) waits for the pipe
with a timeout and takes everything that arrived in one go.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import time
from collections import deque
from typing import Any

__all__ = ["MessageReceiver", "MessageSender"]

_HEADER = struct.Struct("<I")
#: the largest message the receiver accepts (a message is a frame or a small dict; a bigger one is a bug)
MAX_MESSAGE_BYTES = 1 << 20
_READ_BYTES = 1 << 16


class MessageSender:
    """The sending end: :meth:`send` never blocks; :meth:`close` flushes for at most ``timeout_s``.

    Parameters
    ----------
    conn : multiprocessing.connection.Connection
        The writing end of ``Pipe(duplex=False)``, handed to the child process.
    """

    def __init__(self, conn: Any) -> None:
        self._conn = conn  # keeps the descriptor open
        self._fd = conn.fileno()
        os.set_blocking(self._fd, False)
        self._pending = bytearray()
        self.broken = False

    @property
    def backlog_bytes(self) -> int:
        """Bytes waiting in this process because the pipe was full."""
        return len(self._pending)

    def send(self, message: Any) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._pending += _HEADER.pack(len(data))
        self._pending += data
        self.flush()

    def flush(self) -> None:
        """Write what the pipe takes now, without waiting."""
        while self._pending and not self.broken:
            try:
                n = os.write(self._fd, self._pending)
            except BlockingIOError:
                return
            except BrokenPipeError:  # nobody reads any more (the station is gone)
                self.broken = True
                self._pending.clear()
                return
            del self._pending[:n]

    def close(self, *, timeout_s: float = 1.0) -> None:
        """Flush what is left, waiting for the reader at most ``timeout_s`` in all; then close."""
        deadline = time.monotonic() + timeout_s
        while self._pending and not self.broken:
            self.flush()
            left = deadline - time.monotonic()
            if not self._pending or left <= 0:
                break
            select.select([], [self._fd], [], min(left, 0.05))
        self._conn.close()


class MessageReceiver:
    """The receiving end: :meth:`get` waits up to a timeout and returns every complete message.

    Parameters
    ----------
    conn : multiprocessing.connection.Connection
        The reading end of ``Pipe(duplex=False)``.
    """

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._fd = conn.fileno()
        os.set_blocking(self._fd, False)
        self._buffer = bytearray()
        self._messages: deque[Any] = deque()
        self.closed = False  # the sender's end is closed (the process ended) and everything was read
        self._shut = False  # this end was closed

    def _read_available(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, _READ_BYTES)
            except BlockingIOError:
                break
            if not chunk:
                self.closed = True
                break
            self._buffer += chunk
            if len(chunk) < _READ_BYTES:
                break
        view = self._buffer
        at = 0
        while len(view) - at >= _HEADER.size:
            (size,) = _HEADER.unpack_from(view, at)
            if size > MAX_MESSAGE_BYTES:
                raise ValueError(f"acquisition message of {size} bytes: the channel is out of step")
            if len(view) - at - _HEADER.size < size:
                break
            start = at + _HEADER.size
            self._messages.append(pickle.loads(view[start:start + size]))
            at = start + size
        if at:
            del self._buffer[:at]

    def get(self, *, timeout_s: float, max_messages: int | None = None) -> list[Any]:
        """The messages that arrived, waiting up to ``timeout_s`` (0: not at all) when there are none yet.

        Once the sender is gone and everything was read, it waits ``timeout_s`` and returns nothing (a
        caller polling in a loop does not spin).
        """
        if self._shut:
            return []
        if not self.closed:
            self._read_available()
            if not self._messages and not self.closed and timeout_s > 0:
                ready, _, _ = select.select([self._fd], [], [], timeout_s)
                if ready:
                    self._read_available()
        if not self._messages and self.closed and timeout_s > 0:
            time.sleep(timeout_s)
        n = len(self._messages) if max_messages is None else min(max_messages, len(self._messages))
        return [self._messages.popleft() for _ in range(n)]

    def close(self) -> None:
        self._shut = True
        self._conn.close()
