"""``balance-station backup`` and ``restore``: a copy of the database while the station runs, and putting
one back (station stopped); the work is :mod:`station.storage.backup`'s."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["BackupReport", "add_backup_arguments", "add_restore_arguments", "backup_command", "backup_database",
           "restore_command", "restore_database"]
from station.storage.backup import BackupReport, backup_database, restore_database

# -- the commands --------------------------------------------------------------------------------------


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, nargs="?", default=None,
                        help="the backup file (default: <data dir>/backups/station-<time>.db); never overwritten")


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="a backup made by 'balance-station backup'")


def _settings(args: argparse.Namespace):  # noqa: ANN202 - StationSettings, imported late
    from station.core.config import load_settings

    return load_settings(getattr(args, "config", None), data_dir=getattr(args, "data_dir", None))


def _what(report: BackupReport) -> str:
    held = (f"{report.trials} trials, {report.patients} patients, " if report.trials is not None else "")
    return f"{held}{report.size_bytes / 1e6:.1f} MB"


def backup_command(args: argparse.Namespace) -> int:
    settings = _settings(args)
    report = backup_database(settings.database_url, data_dir=settings.data_dir, target=args.file)
    print(f"backed up to {report.path} ({_what(report)})")
    return 0


def restore_command(args: argparse.Namespace) -> int:
    settings = _settings(args)
    report = restore_database(args.file, url=settings.database_url, data_dir=settings.data_dir)
    kept = f"; the database it replaced is kept as {report.replaced}" if report.replaced else ""
    print(f"restored {report.path} from {Path(args.file)} ({_what(report)}){kept}")
    return 0
