"""A TCP proxy in front of the test PostgreSQL server, to cut a station off the database and let it back.

The station under test connects to ``127.0.0.1:<port>``; the proxy forwards each connection to the
server (its Unix socket, or its TCP address). :meth:`PgProxy.cut` closes every open connection and
refuses new ones (the database is "unreachable", as when the clinic network is down);
:meth:`PgProxy.restore` accepts again, on the same port. The shared server itself is never touched.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from pathlib import Path

from sqlalchemy.engine import URL, make_url

__all__ = ["PgProxy"]


class PgProxy:
    def __init__(self, server_url: str | URL) -> None:
        url = make_url(server_url)
        host = url.query.get("host") or url.host or "localhost"
        if isinstance(host, tuple):
            host = host[0]
        port = url.port or 5432
        if str(host).startswith("/"):
            self._target: tuple[int, object] = (socket.AF_UNIX, str(Path(host) / f".s.PGSQL.{port}"))
        else:
            self._target = (socket.AF_INET, (host, port))
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.port = 0
        self._listen()

    def url(self, server_url: str | URL, database: str | None = None) -> str:
        """``server_url`` pointed at the proxy (same user, ``database`` or the same one)."""
        url = make_url(server_url)
        query = {k: v for k, v in url.query.items() if k != "host"}
        return url.set(host="127.0.0.1", port=self.port, query=query,
                       database=database or url.database).render_as_string(hide_password=False)

    @property
    def up(self) -> bool:
        return self._listener is not None

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="pg-proxy").start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.socket(self._target[0], socket.SOCK_STREAM)
                server.connect(self._target[1])
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._conns += [client, server]
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 0.5)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        """The database becomes unreachable: open connections are dropped, new ones refused."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread, so the port is free again
            listener.close()
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def restore(self) -> None:
        """The database answers again, on the same port."""
        if self._listener is None:
            self._listen()

    def close(self) -> None:
        self.cut()
