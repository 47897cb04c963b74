"""Protocol settings written into, and read back from, a trial's recording metadata.

A live trial and ``balance-station analyze`` on its recording must run the
runner with the same settings (a trial stopped at the first failure must not
be re-scored as one that ran to 30 s), so every runner setting is written as a
``# <prefix>.<name>: value`` line of the recording (DESIGN.md section 4 keeps
unknown keys) and read back by the analysis. Floats are written with ``repr``
so they read back bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["config_from_metadata", "config_to_metadata"]

C = TypeVar("C")


def _format(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def config_to_metadata(config: Any, *, prefix: str) -> dict[str, str]:
    """``{"<prefix>.<field>": text}`` for every scalar field of a settings dataclass (nested ones flattened)."""
    out: dict[str, str] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out.update(config_to_metadata(value, prefix=prefix))
        else:
            out[f"{prefix}.{f.name}"] = _format(value)
    return out


def _parse(text: str, default: Any, key: str) -> Any:
    text = text.strip()
    if text.lower() == "none":
        return None
    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise ValueError(f"metadata {key}: expected true or false, got {text!r}")
        return text.lower() == "true"
    if isinstance(default, str):
        return text
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"metadata {key}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"metadata {key}: expected a finite number, got {text!r}")
    return value


def config_from_metadata(cls: type[C], metadata: Mapping[str, str], *, prefix: str) -> C:
    """A settings dataclass ``cls`` with the fields found in ``metadata`` (the defaults elsewhere).

    Raises
    ------
    ValueError
        A value that does not parse or is out of range; the message names the key.
    """
    kwargs: dict[str, Any] = {}
    defaults = cls()  # type: ignore[call-arg]
    for f in dataclasses.fields(defaults):  # type: ignore[arg-type]
        default = getattr(defaults, f.name)
        if dataclasses.is_dataclass(default):
            kwargs[f.name] = config_from_metadata(type(default), metadata, prefix=prefix)
            continue
        key = f"{prefix}.{f.name}"
        if key in metadata:
            kwargs[f.name] = _parse(metadata[key], default, key)
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ValueError(f"metadata {prefix}.*: {exc}") from None
