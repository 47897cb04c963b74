"""Therapist accounts of the web page: argon2 passwords, lock-out, server-side web sessions, the audit log.

Repository functions in the style of :mod:`station.storage.trials`: they take
an ORM :class:`~sqlalchemy.orm.Session`, do one job and commit it; their
errors are :class:`~station.storage.trials.NotFound`,
:class:`~station.storage.trials.Conflict` and
:class:`~station.storage.trials.InvalidValue`.

Passwords
    Hashed with argon2id (``argon2-cffi``'s :class:`~argon2.PasswordHasher`,
    its RFC 9106 "low memory" defaults). Only the PHC hash string is stored;
    a password is never stored, logged or put in an exception message. A
    hash made with older parameters is re-hashed at the next good login.

Lock-out (:class:`LoginPolicy`)
    ``max_failures`` wrong passwords for one account lock it for
    ``lockout``; ``client_max_failures`` failed logins from one client
    address within ``lockout`` lock that address out for the rest of that
    window (whatever account it tries). A locked account refuses even the right
    password. An unknown user name locks like a real one, so the lock-out does
    not tell which names exist; since such a "name" may be a password typed in
    the wrong field, it is never stored: the audit line says "unknown user
    name", and its failures are counted in memory by the name's hash.

Web sessions
    :func:`open_web_session` makes a random token (the cookie's value) and a
    random CSRF token; the database keeps only the SHA-256 of the session
    token. A session ends at ``expires_at`` (absolute), after ``idle`` without
    a request, at logout, when its user is disabled or changes password.

Audit log (:func:`audit`)
    ``login``, ``login_failed``, ``login_refused`` (locked), ``logout``,
    ``export``, ``user_add``, ``user_passwd``, ``user_disable``,
    ``user_enable``: time, user name, client address, detail.

The ``balance-station user`` command (:func:`add_arguments`,
:func:`user_command`): ``add``, ``list``, ``passwd``, ``disable``, ``enable``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import hashlib
import logging
import re
import secrets
import sys
import threading
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from station.errors import UserError
from station.storage.models import USERNAME_MAX_LEN, AuditEntry, User, WebSession, utc_now
from station.storage.trials import Conflict, InvalidValue, NotFound

__all__ = [
    "LockedOut",
    "LoginFailed",
    "LoginPolicy",
    "MIN_PASSWORD_LEN",
    "SessionPolicy",
    "add_arguments",
    "audit",
    "authenticate",
    "close_user_sessions",
    "close_web_session",
    "create_user",
    "find_web_session",
    "get_user",
    "hash_password",
    "hash_token",
    "list_audit",
    "list_users",
    "open_web_session",
    "set_disabled",
    "set_password",
    "touch_web_session",
    "user_command",
    "validate_password",
    "validate_username",
    "verify_password",
]

log = logging.getLogger(__name__)

MIN_PASSWORD_LEN = 8
#: longer passwords are refused: hashing megabytes on every login attempt would be a denial of service
MAX_PASSWORD_LEN = 1024
_USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
#: the web session's last use is written at most this often (one write per request would be wasteful)
TOUCH_EVERY = dt.timedelta(seconds=60)

#: the password hasher; tests swap it for a cheap one (``station.users.HASHER = PasswordHasher(...)``)
HASHER = PasswordHasher()
#: at most this many hashings at once: each takes 64 MiB, and a flood of logins must not exhaust a Pi's memory
_HASH_SLOTS = threading.BoundedSemaphore(2)
_dummy_hash: tuple[PasswordHasher, str] | None = None


class LoginFailed(Exception):
    """Wrong user name or password, or a disabled account (one message for all: it tells nothing more)."""

    def __init__(self, message: str = "wrong user name or password") -> None:
        super().__init__(message)


class LockedOut(LoginFailed):
    """Too many failed logins: refused until ``until``."""

    def __init__(self, until: dt.datetime, now: dt.datetime) -> None:
        self.until = until
        self.retry_after_s = max(1, int((until - now).total_seconds() + 0.999))
        minutes = max(1, round(self.retry_after_s / 60))
        super().__init__(f"too many failed logins: try again in {minutes} minute{'s' if minutes != 1 else ''}")


@dataclass(frozen=True)
class LoginPolicy:
    """Lock-out after failed logins (per account and per client address)."""

    max_failures: int = 5
    client_max_failures: int = 10
    lockout: dt.timedelta = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class SessionPolicy:
    """How long a web session lives: at most ``max_age``, and ``idle`` without a request."""

    idle: dt.timedelta = dt.timedelta(minutes=30)
    max_age: dt.timedelta = dt.timedelta(hours=12)


# -- values ------------------------------------------------------------------------------------


def validate_username(username: object) -> str:
    """The user name, stripped: 1 to 64 letters, digits, ``.``, ``_``, ``@``, ``-``; InvalidValue otherwise."""
    if not isinstance(username, str):
        raise InvalidValue(f"user name must be text, got {type(username).__name__}")
    name = username.strip()
    if not name:
        raise InvalidValue("user name is empty")
    if len(name) > USERNAME_MAX_LEN:
        raise InvalidValue(f"user name is longer than {USERNAME_MAX_LEN} characters")
    if not name.isascii() or not _USERNAME_RE.match(name):
        raise InvalidValue(f"user name {name!r} may hold only letters, digits, '.', '_', '@' and '-' "
                           "and must start with a letter or digit")
    return name


def validate_password(password: object) -> str:
    """The password when it is acceptable (8 to 1024 characters); InvalidValue otherwise (never quoting it)."""
    if not isinstance(password, str):
        raise InvalidValue("the password must be text")
    if len(password) < MIN_PASSWORD_LEN:
        raise InvalidValue(f"the password is too short: at least {MIN_PASSWORD_LEN} characters")
    if len(password) > MAX_PASSWORD_LEN:
        raise InvalidValue(f"the password is too long: at most {MAX_PASSWORD_LEN} characters")
    if password != password.strip() and not password.strip():
        raise InvalidValue("the password is only spaces")
    return password


def hash_password(password: str) -> str:
    """The argon2id PHC string of ``password``."""
    validate_password(password)
    with _HASH_SLOTS:
        return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> tuple[bool, bool]:
    """(matches, needs a re-hash with the current parameters)."""
    try:
        with _HASH_SLOTS:
            HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, HASHER.check_needs_rehash(password_hash)


def _waste_a_verification(password: str) -> None:
    """As long as a real check: an unknown user name takes as long to refuse as a wrong password."""
    global _dummy_hash
    if _dummy_hash is None or _dummy_hash[0] is not HASHER:
        with _HASH_SLOTS:
            _dummy_hash = (HASHER, HASHER.hash(secrets.token_urlsafe(16)))
    verify_password(_dummy_hash[1], password)


def hash_token(token: str) -> str:
    """Hex SHA-256 of a session token (what the database keeps)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# -- audit ---------------------------------------------------------------------------------------


def audit(session: Session, action: str, *, username: str = "", client: str = "", detail: str = "",
          now: dt.datetime | None = None, commit: bool = True) -> AuditEntry:
    """Add a line to the audit log (and commit, unless ``commit=False``)."""
    entry = AuditEntry(at=now or utc_now(), username=str(username or "")[:USERNAME_MAX_LEN],
                       client=str(client or "")[:64], action=str(action)[:40], detail=str(detail or ""))
    session.add(entry)
    if commit:
        session.commit()
    return entry


def list_audit(session: Session, *, action: str | None = None, username: str | None = None,
               limit: int | None = None) -> list[AuditEntry]:
    """Audit lines, newest first."""
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if username is not None:
        query = query.where(func.lower(AuditEntry.username) == username.strip().lower())
    if limit is not None:
        query = query.limit(int(limit))
    return list(session.scalars(query))


# -- accounts --------------------------------------------------------------------------------------


def _find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.username) == str(username).strip().lower()))


def get_user(session: Session, username: str) -> User:
    user = _find_user(session, username)
    if user is None:
        raise NotFound(f"no user {str(username).strip()!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(func.lower(User.username))))


def create_user(session: Session, username: str, password: str, *, client: str = "cli",
                now: dt.datetime | None = None) -> User:
    """Add a therapist account. InvalidValue for a bad name or password, Conflict when the name is taken."""
    name = validate_username(username)
    password_hash = hash_password(password)
    now = now or utc_now()
    if _find_user(session, name) is not None:
        raise Conflict(f"user {name!r} already exists")
    user = User(username=name, password_hash=password_hash, created_at=now, disabled=False, failed_logins=0,
                password_changed_at=now)
    session.add(user)
    audit(session, "user_add", username=name, client=client, now=now, commit=False)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"user {name!r} already exists") from None
    return user


def close_user_sessions(session: Session, user_id: int) -> int:
    """End every web session of the user (not committed); returns how many."""
    result = session.execute(delete(WebSession).where(WebSession.user_id == user_id)
                             .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


def set_password(session: Session, username: str, password: str, *, client: str = "cli",
                 now: dt.datetime | None = None) -> User:
    """Change the password, unlock the account and end its web sessions."""
    user = get_user(session, username)
    now = now or utc_now()
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    user.failed_logins = 0
    user.locked_until = None
    closed = close_user_sessions(session, user.id)
    audit(session, "user_passwd", username=user.username, client=client, now=now,
          detail=f"password changed; {closed} web session(s) ended", commit=False)
    session.commit()
    return user


def set_disabled(session: Session, username: str, disabled: bool = True, *, client: str = "cli",
                 now: dt.datetime | None = None) -> User:
    """Disable (ending its web sessions) or enable an account."""
    user = get_user(session, username)
    user.disabled = bool(disabled)
    detail = ""
    if disabled:
        detail = f"{close_user_sessions(session, user.id)} web session(s) ended"
    else:
        user.failed_logins = 0
        user.locked_until = None
    audit(session, "user_disable" if disabled else "user_enable", username=user.username, client=client,
          now=now, detail=detail, commit=False)
    session.commit()
    return user


# -- logging in ------------------------------------------------------------------------------------


def _window_lock(session: Session, condition: Any, policy_max: int, policy: LoginPolicy,
                 now: dt.datetime) -> dt.datetime | None:
    """When ``policy_max`` failures matching ``condition`` fall within the lock-out window: until when."""
    since = now - policy.lockout
    times = list(session.scalars(select(AuditEntry.at).where(
        AuditEntry.action == "login_failed", AuditEntry.at > since, condition).order_by(AuditEntry.at)))
    if len(times) < policy_max:
        return None
    return times[len(times) - policy_max] + policy.lockout


class _UnknownNames:
    """Failed logins of user names that do not exist, in memory, by the name's hash (never the name)."""

    MAX_NAMES = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, list[dt.datetime]] = {}

    @staticmethod
    def _key(name: str) -> str:
        return hashlib.sha256(name.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()

    def _recent(self, key: str, policy: LoginPolicy, now: dt.datetime) -> list[dt.datetime]:
        times = [t for t in self._failures.get(key, ()) if t > now - policy.lockout]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def locked_until(self, name: str, policy: LoginPolicy, now: dt.datetime) -> dt.datetime | None:
        with self._lock:
            times = self._recent(self._key(name), policy, now)
            return times[-policy.max_failures] + policy.lockout if len(times) >= policy.max_failures else None

    def failed(self, name: str, policy: LoginPolicy, now: dt.datetime) -> None:
        with self._lock:
            if len(self._failures) >= self.MAX_NAMES:
                for key in list(self._failures):
                    self._recent(key, policy, now)
                while len(self._failures) >= self.MAX_NAMES:
                    self._failures.pop(next(iter(self._failures)))
            key = self._key(name)
            self._failures[key] = [*self._recent(key, policy, now), now]

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()


_UNKNOWN_NAMES = _UnknownNames()


def authenticate(session: Session, username: str, password: str, *, client: str = "",
                 policy: LoginPolicy = LoginPolicy(), now: dt.datetime | None = None) -> User:
    """The user, when the name and password are right and neither account nor client is locked out.

    Records the attempt in the audit log and the account's failure count
    (committed whatever the outcome). Raises :class:`LockedOut` (locked) or
    :class:`LoginFailed` (anything else wrong, one message for all).
    """
    now = now or utc_now()
    name = str(username or "").strip()[:USERNAME_MAX_LEN]
    password = str(password or "")[:MAX_PASSWORD_LEN + 1]
    client = str(client or "")[:64]

    def refuse(exc: LoginFailed, action: str, detail: str) -> LoginFailed:
        audit(session, action, username=name, client=client, detail=detail, now=now, commit=False)
        session.commit()
        return exc

    until = _window_lock(session, AuditEntry.client == client, policy.client_max_failures, policy, now)
    if until is not None:
        raise refuse(LockedOut(until, now), "login_refused", "client address locked out")
    user = _find_user(session, name) if name else None
    if user is None:
        # The name is not kept (it may be a password typed in the wrong field): the audit line says
        # "unknown user name", and the name's failures are counted in memory only, by its hash.
        name = ""
        until = _UNKNOWN_NAMES.locked_until(str(username or ""), policy, now)
        if until is not None:
            raise refuse(LockedOut(until, now), "login_refused", "unknown user name locked")
        _waste_a_verification(password)
        _UNKNOWN_NAMES.failed(str(username or ""), policy, now)
        raise refuse(LoginFailed(), "login_failed", "unknown user name")
    if user.locked_until is not None and user.locked_until > now:
        raise refuse(LockedOut(user.locked_until, now), "login_refused", "account locked")
    ok, rehash = verify_password(user.password_hash, password)
    if not ok:
        user.failed_logins = (user.failed_logins or 0) + 1
        detail = f"wrong password ({user.failed_logins} of {policy.max_failures})"
        if user.failed_logins >= policy.max_failures:
            user.locked_until = now + policy.lockout
            user.failed_logins = 0
            detail += f"; account locked until {user.locked_until.isoformat(timespec='seconds')}"
        raise refuse(LoginFailed(), "login_failed", detail)
    if user.disabled:
        raise refuse(LoginFailed(), "login_failed", "account disabled")
    if rehash:
        with _HASH_SLOTS:
            user.password_hash = HASHER.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit(session, "login", username=user.username, client=client, now=now, commit=False)
    session.commit()
    return user


# -- web sessions -----------------------------------------------------------------------------------


def open_web_session(session: Session, user: User, *, client: str = "", policy: SessionPolicy = SessionPolicy(),
                     now: dt.datetime | None = None) -> tuple[str, WebSession]:
    """A new web session for the user: (the cookie's token, the row). Also removes expired sessions."""
    now = now or utc_now()
    token = secrets.token_urlsafe(32)
    web_session = WebSession(token_hash=hash_token(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                             created_at=now, last_seen_at=now, expires_at=now + policy.max_age,
                             client=str(client or "")[:64])
    session.execute(delete(WebSession).where(or_(WebSession.expires_at <= now,
                                                 WebSession.last_seen_at <= now - policy.idle))
                    .execution_options(synchronize_session=False))
    session.add(web_session)
    session.commit()
    return token, web_session


def find_web_session(session: Session, token: str | None, *, policy: SessionPolicy = SessionPolicy(),
                     now: dt.datetime | None = None) -> WebSession | None:
    """The live web session of this cookie token, its user loaded; None when unknown, expired, idle or disabled.

    Reads only: the caller ends a dead session (:func:`close_web_session`) and
    records the use (:func:`touch_web_session`) in a write transaction.
    """
    if not token or len(token) > 256:
        return None
    now = now or utc_now()
    web_session = session.scalar(select(WebSession).where(WebSession.token_hash == hash_token(token))
                                 .options(joinedload(WebSession.user)))
    if web_session is None:
        return None
    if (web_session.expires_at <= now or web_session.last_seen_at <= now - policy.idle
            or web_session.user.disabled):
        return None
    return web_session


def touch_web_session(session: Session, session_id: int, *, now: dt.datetime | None = None) -> bool:
    """Record a use of the web session (at most once per :data:`TOUCH_EVERY`); True when written."""
    now = now or utc_now()
    result = session.execute(update(WebSession)
                             .where(WebSession.id == session_id, WebSession.last_seen_at < now - TOUCH_EVERY)
                             .values(last_seen_at=now).execution_options(synchronize_session=False))
    session.commit()
    return bool(result.rowcount)


def close_web_session(session: Session, token: str | None) -> WebSession | None:
    """End the web session of this token (logout); returns it (user loaded), or None when there was none."""
    if not token or len(token) > 256:
        return None
    web_session = session.scalar(select(WebSession).where(WebSession.token_hash == hash_token(token))
                                 .options(joinedload(WebSession.user)))
    if web_session is not None:
        session.delete(web_session)
        session.commit()
    return web_session


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
    from station.config import load_settings
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
