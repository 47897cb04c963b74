"""The binary layout of a block of raw frames (:class:`station.storage.models.FrameBlock`).

Encoding ``f8le-zlib/1`` (the only one so far; ``FrameBlock.encoding`` names it,
so a later layout can be added without touching the stored blocks)::

    payload = zlib.compress(body)          # zlib stream, with its Adler-32 check
    body    = t_s    float64 little-endian [n]    seconds since the trial's first frame
              fl_n   float64 little-endian [n]    force on the front-left cell, N
              fr_n   float64 little-endian [n]
              bl_n   float64 little-endian [n]
              br_n   float64 little-endian [n]
              flags  uint32  little-endian [n]    station.core.frames.FrameFlag bits
    len(body) == 44 * n,  n = FrameBlock.n_frames

Column after column (not frame after frame), so that a reader takes each
column with one ``numpy.frombuffer``.

Encoding ``f8le-zlib-pelvis/1``: a trial recorded with the pelvis sensor
(``docs/pelvis-sensor.md``). The same body, then one more column::

              pelvis float64 little-endian [n]    pelvis_obliquity_deg, degrees; NaN: no sensor value
    len(body) == 52 * n

A block without the sensor is still written ``f8le-zlib/1``, so the stored
trials of a station without it are unchanged, and every block ever written
is read.

Precision: float64 keeps times and forces bit for bit, so a trial rebuilt from
its blocks is exactly what was written, far better than the 0.1 mN a
recording file keeps (:mod:`station.core.recording`). The cost is 44 bytes a frame
before compression (about 37 after zlib: the low bits of calibrated forces
are noise), 3 kB a second at 80 Hz, 100 kB for a 30-second trial. Scaled
int32 with delta coding would be a third of that, but not exact; at a few
megabytes a clinic day the SD card does not need it. zlib's Adler-32 also
catches a damaged block on reading.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["ENCODING", "ENCODING_PELVIS", "BYTES_PER_FRAME", "BlockDecodeError", "DecodedBlock", "decode_block",
           "encode_block"]

ENCODING = "f8le-zlib/1"
#: The layout with the pelvis sensor's column (the module notes).
ENCODING_PELVIS = "f8le-zlib-pelvis/1"
_F8 = np.dtype("<f8")
_U4 = np.dtype("<u4")
BYTES_PER_FRAME = 5 * _F8.itemsize + _U4.itemsize  # 44
ZLIB_LEVEL = 6


class BlockDecodeError(ValueError):
    """A stored block cannot be decoded (unknown encoding, damaged payload, wrong length)."""


@dataclass(frozen=True, eq=False)
class DecodedBlock:
    t_s: np.ndarray  # (n,) float64
    forces_n: np.ndarray  # (n, 4) float64: fl, fr, bl, br
    flags: np.ndarray  # (n,) uint32
    pelvis_deg: np.ndarray | None = None  # (n,) float64, NaN: no value; None: recorded without the sensor

    @property
    def n_frames(self) -> int:
        return int(self.t_s.size)


def encode_block(t_s: np.ndarray, forces_n: np.ndarray, flags: np.ndarray | None = None,
                 pelvis_deg: np.ndarray | None = None) -> bytes:
    """The ``f8le-zlib/1`` payload of ``n`` frames (``f8le-zlib-pelvis/1`` with ``pelvis_deg``).

    Parameters
    ----------
    t_s : array (n,)
        Seconds since the trial's first frame.
    forces_n : array (n, 4)
        ``fl, fr, bl, br`` in N.
    flags : array (n,) of non-negative int, optional
        Frame flags (default 0).
    pelvis_deg : array (n,), optional
        The pelvis obliquity, degrees, NaN where the sensor had no value: the
        payload is then :data:`ENCODING_PELVIS`.
    """
    t = np.ascontiguousarray(t_s, dtype=_F8)
    f = np.asarray(forces_n, dtype=np.float64)
    n = t.size
    if t.ndim != 1 or n == 0:
        raise ValueError(f"t_s must be a non-empty 1-D array, got shape {t.shape}")
    if f.shape != (n, 4):
        raise ValueError(f"forces_n must have shape ({n}, 4), got {f.shape}")
    if flags is None:
        g = np.zeros(n, dtype=_U4)
    else:
        raw = np.asarray(flags)
        if raw.shape != (n,) or (raw.size and (raw.min() < 0 or raw.max() > 0xFFFFFFFF)):
            raise ValueError(f"flags must be {n} integers from 0 to 2**32-1")
        g = raw.astype(_U4)
    body = t.tobytes() + np.ascontiguousarray(f.T, dtype=_F8).tobytes() + g.tobytes()
    if pelvis_deg is not None:
        p = np.ascontiguousarray(pelvis_deg, dtype=_F8)
        if p.shape != (n,):
            raise ValueError(f"pelvis_deg must have shape ({n},), got {p.shape}")
        body += p.tobytes()
    return zlib.compress(body, ZLIB_LEVEL)


def decode_block(payload: bytes, n_frames: int, encoding: str = ENCODING) -> DecodedBlock:
    """The frames of a stored block; :class:`BlockDecodeError` when it is not what it says."""
    if encoding not in (ENCODING, ENCODING_PELVIS):
        raise BlockDecodeError(f"unknown frame block encoding {encoding!r} "
                               f"(this program reads {ENCODING!r} and {ENCODING_PELVIS!r})")
    per_frame = BYTES_PER_FRAME + (_F8.itemsize if encoding == ENCODING_PELVIS else 0)
    try:
        body = zlib.decompress(payload)
    except zlib.error as exc:
        raise BlockDecodeError(f"damaged frame block ({exc})") from None
    n = int(n_frames)
    if n <= 0 or len(body) != per_frame * n:
        raise BlockDecodeError(f"frame block holds {len(body)} bytes, expected {per_frame} x {n} frames")
    t = np.frombuffer(body, dtype=_F8, count=n, offset=0).astype(np.float64)
    f = np.frombuffer(body, dtype=_F8, count=4 * n, offset=8 * n).reshape(4, n).T.astype(np.float64)
    g = np.frombuffer(body, dtype=_U4, count=n, offset=40 * n).astype(np.uint32)
    p = (np.frombuffer(body, dtype=_F8, count=n, offset=BYTES_PER_FRAME * n).astype(np.float64)
         if encoding == ENCODING_PELVIS else None)
    return DecodedBlock(t_s=t, forces_n=f, flags=g, pelvis_deg=p)
