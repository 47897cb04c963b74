"""`balance-station serve`: the therapist pages on the clinic database, for the office computer.

Only the web app: no plate, no acquisition process, no patient screen, no data-folder lock (it is not
a station, and does not appear among them). The patients, trials, exports and reports are those of the
clinic database every station writes to (``database_url``); the live page lists the stations and starts
a test on one of them through that station's own API, with the therapist's login
(:mod:`webui.routes.office`). See docs/clinic.md.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from pydantic import ValidationError

from station.core.config import WebSettings, load_settings
from station.core.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", dest="serve_host", metavar="HOST", default=None,
                        help="address the web server binds (default [web] host, 127.0.0.1)")
    parser.add_argument("--port", dest="serve_port", metavar="PORT", type=int, default=None,
                        help="web server port (default [web] port, 8000)")


def serve_command(args: argparse.Namespace) -> int:
    from station.commands.run import WebServer, say
    from station.storage import StorageError, open_database
    from station.storage.accounts import list_users
    from webui.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings(args.config, data_dir=args.data_dir)
    host = args.serve_host if args.serve_host is not None else getattr(args, "host", None)
    port = args.serve_port if args.serve_port is not None else getattr(args, "port", None)
    try:
        settings.web = WebSettings.model_validate(
            {**settings.web.model_dump(), **{k: v for k, v in {"host": host, "port": port}.items() if v is not None}})
    except ValidationError as exc:
        raise UserError(f"--host/--port: {exc.errors()[0]['msg']}") from None
    try:
        # no station_id: the office is not a station (no stations row, no trials of its own)
        db = open_database(settings.database_url, data_dir=settings.data_dir)
    except StorageError as exc:
        raise UserError(str(exc)) from None
    say(f"serve: the clinic database {db.name}")
    if db.is_sqlite:
        say("serve: this is a SQLite file, not a clinic server: only stations on this computer share it "
            "(set database_url, see docs/clinic.md)")
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    web = None
    try:
        web = WebServer(create_app(settings, None, db=db, office=True), host=settings.web.host, port=settings.web.port)
        if not web.start():
            cause = f": {web.bind_failure.error.lower()}" if web.bind_failure.error else ""
            raise UserError(f"cannot serve the web page on {settings.web.host}:{settings.web.port}{cause} "
                            "(use --port)")
        say(f"web: http://{settings.web.host}:{settings.web.port}/ (the office page: no plate; tests start on "
            "the stations)")
        with db.sessions() as session:
            if not list_users(session):
                say("web: no therapist account yet: create one with 'balance-station user add NAME' "
                    "(with the same --config)")
        say("serving; stop with Ctrl-C (or SIGTERM)")
        while not stop.is_set():
            stop.wait(0.5)
            if not web.thread.is_alive():
                say("the web server stopped")
                return 1
        return 0
    finally:
        say("stopping")
        if web is not None:
            web.stop()
        db.close()
