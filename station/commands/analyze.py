"""``balance-station analyze FILE --protocol P``: score a recording and print one JSON object
(DESIGN.md section 5; the scoring is :func:`station.scoring.analyze.analyze_file`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from station.core.sides import SIDES
from station.scoring.analyze import analyze_file


def _lowpass(value: str) -> float | None:
    if value.lower() == "off":
        return None
    try:
        hz = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a frequency in Hz or 'off', got {value!r}") from None
    if not hz > 0:
        raise argparse.ArgumentTypeError(f"the low-pass cut-off must be positive, got {value!r}")
    return hz


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path)
    p.add_argument("--protocol", required=True, choices=("quiet-stance", "single-leg"))
    p.add_argument("--stance-side", choices=SIDES, default=None)
    p.add_argument("--lowpass-hz", type=_lowpass, default=10.0, metavar="HZ|off",
                   help="zero-phase 4th-order Butterworth cut-off (default 10), or 'off'")
    p.add_argument("--json", action="store_true", help="print one JSON object (the only output format)")


def analyze_command(args: argparse.Namespace) -> int:
    result = analyze_file(args.file, protocol=args.protocol, stance_side=args.stance_side, lowpass_hz=args.lowpass_hz)
    json.dump(result, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")
    return 0
