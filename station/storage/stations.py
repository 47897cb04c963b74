"""The stations that use the database: each one's last contact, plate, calibration and software.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from station import __version__
from station.storage.models import (
    WEB_URL_MAX_LEN,
    StationContact,
    Trial,
    TrialState,
    utc_now,
)

__all__ = [
    "HEARTBEAT_S",
    "aware_utc",
    "station_activity",
    "touch_station",
]


#: how often a running station notes its contact (:class:`station.storage.heartbeat.Heartbeat`), s
HEARTBEAT_S = 30.0


def aware_utc(value: Any) -> dt.datetime | None:
    """An aggregate over a UTC column as an aware datetime (SQLite gives it back as naive text)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def station_activity(session: Session) -> list[dict[str, Any]]:
    """Every station that used this database (started on it or stored a trial), the one in contact last first.

    Each: ``station_id`` (None for the trials stored before stations were recorded, one row for all of
    them, last), ``trials`` (how many), ``first_trial_at`` and ``last_trial_at`` (when its first and
    latest trials started), ``last_contact_at`` (its last write: its start-up, a trial's start, its
    frames written every half second while it runs, its end), ``running`` (trials still running
    there), the plate and calibration of its latest trial (``plate_source``, ``calibration``: the
    label), the software it last ran (``software_version``, None when unknown) and where its web page
    answers (``web_url``, None when unknown). ``last_contact_at`` also counts the heartbeat a running
    station writes every :data:`HEARTBEAT_S` (:class:`station.storage.heartbeat.Heartbeat`).
    """
    rows = session.execute(
        select(Trial.station_id, func.count(Trial.id), func.min(Trial.started_at), func.max(Trial.started_at),
               func.max(func.coalesce(Trial.ended_at, Trial.updated_at)), func.max(Trial.updated_at),
               func.sum(case((Trial.state == TrialState.RUNNING, 1), else_=0)))
        .group_by(Trial.station_id)).all()
    stations = []
    contacts_of = {c.station_id: c for c in session.scalars(select(StationContact))}
    for station_id, n, first, last, ended, updated, running in rows:
        latest = session.execute(
            select(Trial.plate_source, Trial.calibration).where(
                Trial.station_id.is_(None) if station_id is None else Trial.station_id == station_id)
            .order_by(Trial.started_at.desc(), Trial.id.desc()).limit(1)).one()
        contact = contacts_of.pop(station_id, None) if station_id is not None else None
        contacts = [t for t in (aware_utc(ended), aware_utc(updated),
                                contact and contact.last_seen_at) if t is not None]
        stations.append({
            "station_id": station_id, "trials": int(n), "first_trial_at": aware_utc(first),
            "last_trial_at": aware_utc(last), "last_contact_at": max(contacts) if contacts else None,
            "running": int(running or 0), "plate_source": latest[0] or "",
            "calibration": (latest[1] or {}).get("label"),
            "software_version": contact.software_version if contact is not None else None,
            "web_url": contact.web_url if contact is not None else None,
        })
    for contact in contacts_of.values():  # started on this database, no trial yet
        stations.append({
            "station_id": contact.station_id, "trials": 0, "first_trial_at": None, "last_trial_at": None,
            "last_contact_at": contact.last_seen_at, "running": 0, "plate_source": "", "calibration": None,
            "software_version": contact.software_version, "web_url": contact.web_url,
        })
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    stations.sort(key=lambda s: (s["station_id"] is None, -(s["last_contact_at"] or epoch).timestamp()))
    return stations


def touch_station(session: Session, station_id: str | None, *, now: dt.datetime | None = None,
                  web_url: str | None = None) -> None:
    """Record that ``station_id`` (running this program) used the database now, in the session's transaction.

    One row per station (``stations``), inserted or updated in one statement (no race between two
    processes of one station). ``web_url``: where its web page answers, stored when given (a trial's
    start, which does not know it, leaves the stored one). Nothing for ``None``. The caller commits.
    """
    if not station_id:
        return
    now = now or utc_now()
    dialect = session.get_bind().dialect.name
    values = {"station_id": station_id, "software_version": __version__, "first_seen_at": now, "last_seen_at": now}
    if web_url:
        values["web_url"] = web_url[:WEB_URL_MAX_LEN]
    if dialect in ("postgresql", "sqlite"):
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        stmt = dialect_insert(StationContact).values(**values)
        changed = {"software_version": stmt.excluded.software_version, "last_seen_at": stmt.excluded.last_seen_at}
        if web_url:
            changed["web_url"] = stmt.excluded.web_url
        session.execute(stmt.on_conflict_do_update(index_elements=[StationContact.station_id], set_=changed))
        return
    contact = session.get(StationContact, station_id)  # pragma: no cover - another database
    if contact is None:
        session.add(StationContact(**values))
    else:
        contact.software_version, contact.last_seen_at = __version__, now
        if web_url:
            contact.web_url = values["web_url"]
