"""``balance-station user``: the therapist accounts of the web page (add, list, passwd, disable, enable)."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys

from sqlalchemy.orm import sessionmaker

from station.core.errors import UserError
from station.storage.accounts import (
    create_user,
    list_users,
    set_disabled,
    set_password,
    validate_password,
    validate_username,
)
from station.storage.models import utc_now
from station.storage.values import Conflict, InvalidValue, NotFound

# -- the `balance-station user` command --------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, common: argparse.ArgumentParser | None = None) -> None:
    """The ``user`` command's own subcommands (``add``, ``list``, ``passwd``, ``disable``, ``enable``)."""
    parents = [common] if common is not None else []
    sub = parser.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    p = sub.add_parser("add", parents=parents, help="create a therapist account")
    p.add_argument("username")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input instead of prompting")
    sub.add_parser("list", parents=parents, help="list the accounts")
    p = sub.add_parser("passwd", parents=parents, help="set a new password (ends the user's web sessions)")
    p.add_argument("username")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input instead of prompting")
    p = sub.add_parser("disable", parents=parents, help="disable an account (ends its web sessions)")
    p.add_argument("username")
    p = sub.add_parser("enable", parents=parents, help="enable an account again (and unlock it)")
    p.add_argument("username")


def _read_password(args: argparse.Namespace, username: str) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
        if not password:
            raise UserError("no password on standard input")
        return validate_password(password)
    if not sys.stdin.isatty():
        raise UserError("standard input is not a terminal: give --password-stdin to read the password from it")
    first = getpass.getpass(f"Password for {username}: ")
    validate_password(first)
    second = getpass.getpass("Repeat the password: ")
    if first != second:
        raise UserError("the two passwords differ; nothing was changed")
    return first


def _when(value: dt.datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def user_command(args: argparse.Namespace) -> int:
    """Run ``balance-station user ACTION``; UserError (one line) for anything wrong."""
    from station.core.config import load_settings
    from station.storage.db import open_database

    settings = load_settings(getattr(args, "config", None), data_dir=getattr(args, "data_dir", None))
    action = args.user_command
    try:
        username = validate_username(args.username) if hasattr(args, "username") else ""
        password = _read_password(args, username) if action in ("add", "passwd") else ""
    except InvalidValue as exc:
        raise UserError(str(exc)) from None
    with open_database(settings.database_url, data_dir=settings.data_dir) as db, \
            sessionmaker(bind=db.engine.execution_options(sqlite_begin="IMMEDIATE"))() as session:
        try:
            if action == "add":
                create_user(session, username, password)
                print(f"user {username} created (database {db.name})")
            elif action == "passwd":
                set_password(session, username, password)
                print(f"password of {username} changed; their web sessions were ended")
            elif action in ("disable", "enable"):
                set_disabled(session, username, action == "disable")
                print(f"user {username} {action}d")
            else:
                users = list_users(session)
                if not users:
                    print("no accounts yet: create one with 'balance-station user add NAME'")
                for user in users:
                    state = "disabled" if user.disabled else (
                        "locked" if user.locked_until is not None and user.locked_until > utc_now() else "active")
                    print(f"{user.username:<24} {state:<9} created {_when(user.created_at)}  "
                          f"last login {_when(user.last_login_at)}")
        except (InvalidValue, NotFound, Conflict) as exc:
            raise UserError(str(exc)) from None
    return 0
