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

Lock-out (:class:`LoginPolicy`, :func:`check_login`)
    One rule for every name, real or unknown, so the answer (and its
    ``Retry-After``) does not tell which names exist: ``max_failures`` failed
    logins of one name from one client address lock that (name, address)
    pair for ``lockout`` after the last of them, even for the right password;
    someone at another address cannot lock the therapist out.
    ``client_max_failures`` failures from one address lock that address for
    every name that has never logged in from it (the therapist who has still
    gets in). Refused attempts are not counted. The failures are counted in
    memory, names by their hash (a "name" may be a password typed in the
    wrong field): a restart of the station ends every lock-out. An unknown
    name's audit line says "unknown user name".

Logging in takes no write lock during the password check: the account is
read in a short read transaction, argon2 runs outside any transaction, and
only then is the outcome written (:func:`check_login`, :func:`record_login`,
:func:`record_refusal`).

Web sessions
    :func:`open_web_session` makes a random token (the cookie's value) and a
    random CSRF token; the database keeps only the SHA-256 of the session
    token. A session ends at ``expires_at`` (absolute), after ``idle`` without
    a request, at logout, when its user is disabled or changes password.

Audit log (:func:`audit`)
    ``login``, ``login_failed``, ``login_refused`` (locked), ``logout``,
    ``export``, ``user_add``, ``user_passwd``, ``user_disable``,
    ``user_enable``: time, user name, client address, detail.

The ``balance-station user`` command is :mod:`station.commands.user`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from station.storage.models import USERNAME_MAX_LEN, AuditEntry, User, WebSession, utc_now
from station.storage.values import Conflict, InvalidValue, NotFound

__all__ = [
    "LockedOut",
    "LoginCheck",
    "LoginFailed",
    "LoginPolicy",
    "MIN_PASSWORD_LEN",
    "SessionPolicy",
    "audit",
    "authenticate",
    "check_login",
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
    "record_login",
    "record_refusal",
    "set_disabled",
    "set_password",
    "touch_web_session",
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

#: the password hasher; tests swap it for a cheap one (``station.storage.accounts.HASHER = PasswordHasher(...)``)
HASHER = PasswordHasher()
#: at most this many hashings at once: each takes 64 MiB, and a flood of logins must not exhaust a Pi's memory
_HASH_SLOTS = threading.BoundedSemaphore(2)
_dummy_hash: tuple[PasswordHasher, str] | None = None


class LoginFailed(Exception):
    """Wrong user name or password, or a disabled account (one message for all: it tells nothing more)."""

    def __init__(self, message: str = "wrong user name or password") -> None:
        super().__init__(message)
        #: the audit line to record: (action, user name, detail)
        self.audit: tuple[str, str, str] = ("login_failed", "", "")


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


class _Throttle:
    """Failed logins in memory: per (user name, client address) pair and per address; never the name itself.

    One rule for every name, real or not (so the answer tells nothing about which names exist), and a
    pair's lock-out binds only that pair: someone elsewhere cannot lock the therapist out. Names are
    kept as their SHA-256 (a "name" may be a password typed in the wrong field). At most
    :attr:`MAX_KEYS` pairs and addresses are kept; the oldest go first.
    """

    MAX_KEYS = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pairs: dict[tuple[str, str], list[dt.datetime]] = {}
        self._clients: dict[str, list[dt.datetime]] = {}

    @staticmethod
    def _key(name: str, client: str) -> tuple[str, str]:
        return hashlib.sha256(name.strip().lower().encode("utf-8", "surrogatepass")).hexdigest(), client

    @staticmethod
    def _recent(table: dict[Any, list[dt.datetime]], key: Any, policy: LoginPolicy,
                now: dt.datetime) -> list[dt.datetime]:
        times = [t for t in table.get(key, ()) if t > now - policy.lockout]
        if times:
            table[key] = times
        else:
            table.pop(key, None)
        return times

    def _bound(self, table: dict[Any, list[dt.datetime]], policy: LoginPolicy, now: dt.datetime) -> None:
        if len(table) >= self.MAX_KEYS:
            for key in list(table):
                self._recent(table, key, policy, now)
            while len(table) >= self.MAX_KEYS:
                table.pop(next(iter(table)))

    def locked_until(self, name: str, client: str, policy: LoginPolicy, now: dt.datetime, *,
                     known_here: bool, unlocked_at: dt.datetime | None = None) -> tuple[dt.datetime, str] | None:
        """(until when, why) when this pair may not try now.

        ``known_here``: the name logged in from here before; ``unlocked_at``: failures before it do not count
        (``balance-station user enable`` or ``passwd`` unlocks, even from another process).
        """
        with self._lock:
            times = self._recent(self._pairs, self._key(name, client), policy, now)
            if unlocked_at is not None:
                times = [t for t in times if t > unlocked_at]
            if len(times) >= policy.max_failures:
                return times[-1] + policy.lockout, "too many failures for this name from this address"
            if not known_here:
                times = self._recent(self._clients, client, policy, now)
                if len(times) >= policy.client_max_failures:
                    return times[-1] + policy.lockout, "client address locked out"
        return None

    def failed(self, name: str, client: str, policy: LoginPolicy, now: dt.datetime) -> int:
        """Count a failure; returns the pair's failures within the window."""
        with self._lock:
            self._bound(self._pairs, policy, now)
            self._bound(self._clients, policy, now)
            key = self._key(name, client)
            self._pairs[key] = [*self._recent(self._pairs, key, policy, now), now]
            self._clients[client] = [*self._recent(self._clients, client, policy, now), now]
            return len(self._pairs[key])

    def succeeded(self, name: str, client: str) -> None:
        with self._lock:
            self._pairs.pop(self._key(name, client), None)

    def clear(self) -> None:
        with self._lock:
            self._pairs.clear()
            self._clients.clear()


_THROTTLE = _Throttle()
#: the former name (tests clear it between apps)
_UNKNOWN_NAMES = _THROTTLE


def _unlocked_at(session: Session, user: User | None) -> dt.datetime | None:
    """When the account was last unlocked by hand: its password set, or ``user enable``."""
    if user is None:
        return None
    enabled = session.scalar(select(func.max(AuditEntry.at)).where(
        AuditEntry.action == "user_enable", func.lower(AuditEntry.username) == user.username.lower()))
    times = [t for t in (user.password_changed_at, enabled) if t is not None]
    return max(times) if times else None


def _known_here(session: Session, user: User | None, client: str) -> bool:
    """True when the account has logged in from this address before (the audit log says so)."""
    if user is None:
        return False
    return session.scalar(select(AuditEntry.id).where(
        AuditEntry.action == "login", func.lower(AuditEntry.username) == user.username.lower(),
        AuditEntry.client == client).limit(1)) is not None


@dataclass
class LoginCheck:
    """What :func:`check_login` found: the user, and whether their hash wants renewing."""

    user: User
    rehash: bool


def check_login(session: Session, username: str, password: str, *, client: str = "",
                policy: LoginPolicy = LoginPolicy(), now: dt.datetime | None = None) -> LoginCheck:
    """Check a login without writing: the lock-out, the name, the password (argon2), the account.

    Reads the user and the audit log in a short read transaction that ends
    before the password check, so no transaction (and no lock) is held
    while argon2 runs. Raises :class:`LockedOut` or :class:`LoginFailed`;
    their ``audit`` attribute is the ``(action, user name, detail)`` line to
    record (:func:`record_refusal`). On success the caller records the login
    (:func:`record_login`).

    The lock-out (:class:`_Throttle`) is the same for every name, real or
    unknown: ``max_failures`` failures of one name from one client address
    within ``lockout`` lock that pair for ``lockout`` after the last of them;
    ``client_max_failures`` failures from one address lock that address for
    every name that has never logged in from it. Refused attempts are not
    counted, so a lock-out ends ``lockout`` after the last real try.
    """
    now = now or utc_now()
    raw_name = str(username or "")
    name = raw_name.strip()[:USERNAME_MAX_LEN]
    password = str(password or "")[:MAX_PASSWORD_LEN + 1]
    client = str(client or "")[:64]
    try:
        user = _find_user(session, name) if name else None
        known = _known_here(session, user, client)
        unlocked_at = _unlocked_at(session, user)
        if user is not None:
            session.expunge(user)  # detached, its values kept: nothing reloads it during the check
    finally:
        session.rollback()  # end the read transaction before argon2 runs
    audit_name = user.username if user is not None else ""  # an unknown "name" is never stored

    def fail(exc: LoginFailed, action: str, detail: str) -> LoginFailed:
        exc.audit = (action, audit_name, detail)
        return exc

    locked = _THROTTLE.locked_until(raw_name, client, policy, now, known_here=known, unlocked_at=unlocked_at)
    if locked is not None:
        until, why = locked
        raise fail(LockedOut(until, now), "login_refused", why)
    if user is None:
        _waste_a_verification(password)
        _THROTTLE.failed(raw_name, client, policy, now)
        raise fail(LoginFailed(), "login_failed", "unknown user name")
    ok, rehash = verify_password(user.password_hash, password)
    if not ok:
        n = _THROTTLE.failed(raw_name, client, policy, now)
        detail = f"wrong password ({n} of {policy.max_failures})"
        if n >= policy.max_failures:
            detail += f"; locked for this address until {(now + policy.lockout).isoformat(timespec='seconds')}"
        raise fail(LoginFailed(), "login_failed", detail)
    if user.disabled:
        raise fail(LoginFailed(), "login_failed", "account disabled")
    _THROTTLE.succeeded(raw_name, client)
    return LoginCheck(user=user, rehash=rehash)


def record_refusal(session: Session, exc: LoginFailed, *, client: str = "", now: dt.datetime | None = None) -> None:
    """Write the audit line of a refused login (committed)."""
    action, name, detail = getattr(exc, "audit", ("login_failed", "", ""))
    audit(session, action, username=name, client=str(client or "")[:64], detail=detail, now=now, commit=True)


def record_login(session: Session, check: LoginCheck, password: str, *, client: str = "",
                 now: dt.datetime | None = None) -> User:
    """Record a good login on the user (merged into ``session``) and in the audit log; not committed.

    A hash made with older parameters is renewed here: hash it before the
    write transaction begins when that matters (:func:`hash_password` is slow).
    """
    now = now or utc_now()
    user = session.merge(check.user, load=True)
    if check.rehash:
        with _HASH_SLOTS:
            user.password_hash = HASHER.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit(session, "login", username=user.username, client=str(client or "")[:64], now=now, commit=False)
    return user


def authenticate(session: Session, username: str, password: str, *, client: str = "",
                 policy: LoginPolicy = LoginPolicy(), now: dt.datetime | None = None) -> User:
    """The user, when the name and password are right and the pair is not locked out (:func:`check_login`).

    Records the attempt in the audit log (committed whatever the outcome).
    Raises :class:`LockedOut` (locked) or :class:`LoginFailed` (anything else
    wrong, one message for all).
    """
    now = now or utc_now()
    try:
        check = check_login(session, username, password, client=client, policy=policy, now=now)
    except LoginFailed as exc:
        record_refusal(session, exc, client=client, now=now)
        raise
    user = record_login(session, check, password, client=client, now=now)
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


def close_web_session(session: Session, token: str | None, *, commit: bool = True) -> WebSession | None:
    """End the web session of this token (logout); returns it (user loaded), or None when there was none."""
    if not token or len(token) > 256:
        return None
    web_session = session.scalar(select(WebSession).where(WebSession.token_hash == hash_token(token))
                                 .options(joinedload(WebSession.user)))
    if web_session is not None:
        session.delete(web_session)
        if commit:
            session.commit()
    return web_session
