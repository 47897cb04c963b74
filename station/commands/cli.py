"""`balance-station`: the single command-line entry point (DESIGN.md section 5)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from station.core.errors import UserError


class _Parser(argparse.ArgumentParser):
    """Bad options get one line on stderr (DESIGN.md section 5), not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _common_options(default: object) -> argparse.ArgumentParser:
    """Options every command takes, before or after the command's name."""
    common = _Parser(add_help=False)
    common.add_argument("--plate", choices=("auto", "simulated", "hx711", "chip-model"), default=default,
                        help="plate source (default: auto, the HX711 plate when configured and present; "
                             "chip-model: the HX711 backend on chip models fed by the simulated person)")
    common.add_argument("--config", type=Path, default=default, help="TOML configuration file")
    common.add_argument("--data-dir", type=Path, default=default, help="where recordings and the database live")
    return common


def build_parser() -> argparse.ArgumentParser:
    # The subcommands' copy of the common options has no defaults of its own, so
    # `balance-station --data-dir D calibrate` keeps D (a subparser's defaults
    # would otherwise overwrite what the main parser read).
    common = _common_options(argparse.SUPPRESS)
    parser = _Parser(
        prog="balance-station", parents=[_common_options(None)],
        description="Force-plate balance station. Without a command, runs the station.",
    )
    parser.add_argument("--host", default=None, help="address the web server binds (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="web server port (default 8000)")
    parser.add_argument("--no-screen", action="store_true", help="do not open the patient screen")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from station.commands.analyze import add_arguments as _analyze_arguments

    p = sub.add_parser("analyze", parents=[common], help="score a recording file and print JSON")
    _analyze_arguments(p)

    from station.commands.calibrate import add_arguments as _calibrate_arguments

    p = sub.add_parser("calibrate", parents=[common], help="guided calibration with known masses")
    _calibrate_arguments(p)

    from station.commands.record import add_arguments as _record_arguments

    p = sub.add_parser("record", parents=[common], help="write a stored or a live trial as a recording file")
    _record_arguments(p)

    from station.commands.drill import add_arguments as _drill_arguments

    p = sub.add_parser("drill", parents=[common], help="play one drill with the simulated person and print JSON")
    _drill_arguments(p)

    from station.commands.backup import add_backup_arguments, add_restore_arguments

    p = sub.add_parser("backup", parents=[common], help="copy the database (while the station runs)")
    add_backup_arguments(p)
    p = sub.add_parser("restore", parents=[common], help="put a backup in place of the database (station stopped)")
    add_restore_arguments(p)

    from station.commands.serve import add_arguments as _serve_arguments

    p = sub.add_parser("serve", parents=[common],
                       help="only the web pages, on the clinic database: the office computer (no plate)")
    _serve_arguments(p)

    from station.commands.user import add_arguments as _user_arguments

    p = sub.add_parser("user", parents=[common], help="therapist accounts of the web page: add, list, passwd, disable")
    _user_arguments(p, common)
    return parser


def cmd_analyze(args: argparse.Namespace) -> int:
    from station.commands.analyze import analyze_command

    return analyze_command(args)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from station.commands.calibrate import calibrate

    return calibrate(args)


def cmd_record(args: argparse.Namespace) -> int:
    from station.commands.record import record_command

    return record_command(args)


def cmd_drill(args: argparse.Namespace) -> int:
    from station.commands.drill import drill_command

    return drill_command(args)


def cmd_run(args: argparse.Namespace) -> int:
    from station.commands.run import run_station

    return run_station(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from station.commands.serve import serve_command

    return serve_command(args)


def cmd_user(args: argparse.Namespace) -> int:
    from station.commands.user import user_command

    return user_command(args)


def cmd_backup(args: argparse.Namespace) -> int:
    from station.commands.backup import backup_command

    return backup_command(args)


def cmd_restore(args: argparse.Namespace) -> int:
    from station.commands.backup import restore_command

    return restore_command(args)


COMMANDS = {"analyze": cmd_analyze, "calibrate": cmd_calibrate, "record": cmd_record, "drill": cmd_drill,
            "user": cmd_user, "backup": cmd_backup, "restore": cmd_restore, "serve": cmd_serve}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = COMMANDS.get(args.command, cmd_run)
    try:
        code = handler(args)
        sys.stdout.flush()  # here, not at exit: a reader gone away is a BrokenPipeError we can catch
        return code
    except UserError as exc:
        print(f"balance-station: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `analyze FILE --json | head -c 1`: the reader took what it wanted and left; no traceback, and
        # stdout pointed at /dev/null so Python's own flush at exit does not complain either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # as a shell reports a command ended by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
