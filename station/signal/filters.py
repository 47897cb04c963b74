"""Low-pass filters for force-plate signals: zero-phase for analysis, causal for the live display.

Two jobs, two tools:

* :func:`lowpass_zero_phase` filters a whole recording forward and backward
  (no lag, squared magnitude response). This is the default processing of the
  ``analyze`` command (DESIGN.md section 5: 4th-order zero-phase Butterworth at
  10 Hz), as recommended by Duarte & Freitas (2010).
* :class:`CausalLowpass` filters a live stream one frame at a time for the
  patient screen, where only past samples exist. It delays the signal by its
  group delay (see the class notes for the figures at the default settings).

References
----------
.. [1] Prieto TE et al. (1996) Measures of postural steadiness: differences
   between healthy young and elderly adults. IEEE Trans Biomed Eng 43:956-966.
.. [2] Duarte M, Freitas SMSF (2010) Revision of posturography based on force
   plate for balance evaluation. Rev Bras Fisioter 14:183-192.
"""

from __future__ import annotations

import math
import operator

import numpy as np
from scipy import signal

__all__ = ["lowpass_zero_phase", "min_samples_zero_phase", "CausalLowpass"]


def _check_rate_and_cutoff(fs_hz: float, cutoff_hz: float, order: int) -> int:
    """Validate the filter design arguments; return ``order`` as an int."""
    if not (isinstance(fs_hz, (int, float, np.integer, np.floating)) and math.isfinite(fs_hz) and fs_hz > 0):
        raise ValueError(f"fs_hz must be a positive finite sampling rate in Hz, got {fs_hz!r}")
    if not (isinstance(cutoff_hz, (int, float, np.integer, np.floating)) and math.isfinite(cutoff_hz)):
        raise ValueError(f"cutoff_hz must be a finite frequency in Hz, got {cutoff_hz!r}")
    if not 0 < cutoff_hz < fs_hz / 2:
        raise ValueError(
            f"cutoff_hz must be above 0 and below half the sampling rate (fs_hz/2 = {fs_hz / 2:g} Hz), "
            f"got {cutoff_hz!r}"
        )
    try:
        order = operator.index(order)
    except TypeError:
        raise ValueError(f"order must be an integer, got {order!r}") from None
    if not 1 <= order <= 12:
        raise ValueError(f"order must be between 1 and 12, got {order!r}")
    return order


def _default_padlen(sos: np.ndarray) -> int:
    """scipy.signal.sosfiltfilt's default pad length for ``sos`` (3 x (2 x sections + 1), less trivial taps)."""
    n_sections = sos.shape[0]
    trivial = min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return 3 * (2 * n_sections + 1 - trivial)


def min_samples_zero_phase(*, order: int = 4) -> int:
    """Fewest samples :func:`lowpass_zero_phase` accepts for a filter of ``order``.

    It is one more than scipy's default edge padding for the filter, so that the
    odd extension at each end can be built from the signal itself.

    Parameters
    ----------
    order : int
        Butterworth order (1 to 12).

    Returns
    -------
    int
        The minimum length along the filtered axis (16 for order 4).
    """
    _check_rate_and_cutoff(2.0, 0.5, order)
    sos = signal.butter(order, 0.25, output="sos")
    return _default_padlen(sos) + 1


def lowpass_zero_phase(
    x: np.ndarray, *, fs_hz: float, cutoff_hz: float, order: int = 4, axis: int = 0
) -> np.ndarray:
    """Butterworth low-pass run forward and backward: no phase shift, no lag.

    Parameters
    ----------
    x : array_like
        Signal sampled uniformly at ``fs_hz`` (for example COP in mm or Fz in N).
        Must be finite: a gap (NaN) has to be handled before filtering.
    fs_hz : float
        Sampling rate in Hz.
    cutoff_hz : float
        -3 dB frequency in Hz of the *single-pass* Butterworth design, strictly
        between 0 and ``fs_hz / 2``. The forward-backward response is the square
        of the single-pass one, so the overall gain at ``cutoff_hz`` is -6 dB.
    order : int
        Order of the single-pass design (default 4, as in DESIGN.md section 5).
        The forward-backward filter has twice the roll-off.
    axis : int
        Axis of ``x`` along which time runs (default 0).

    Returns
    -------
    ndarray
        Filtered signal, float64, same shape as ``x``.

    Raises
    ------
    ValueError
        When the signal is not finite, shorter than
        :func:`min_samples_zero_phase` along ``axis``, or the cut-off is not
        below ``fs_hz / 2``.

    Notes
    -----
    The design is ``scipy.signal.butter(order, cutoff_hz, fs=fs_hz,
    output="sos")`` applied with ``scipy.signal.sosfiltfilt`` and odd
    (point-reflection) padding, which keeps the value and slope at each end.
    The padding is three periods of the cut-off frequency, ``ceil(3 fs /
    cutoff)`` samples (30 samples for 10 Hz at 100 Hz), so that the start-up
    transient of the filter has decayed before the real data begin; it is never
    shorter than scipy's default (15 samples for order 4) and is capped at
    ``n - 1``. The gain at 0 Hz is exactly 1: a constant signal comes back
    unchanged up to rounding.

    References
    ----------
    .. [1] Duarte M, Freitas SMSF (2010) Revision of posturography based on
       force plate for balance evaluation. Rev Bras Fisioter 14:183-192
       (DESIGN.md section 7: low-pass filtering of the COP before the metrics).
    .. [2] Prieto TE et al. (1996) Measures of postural steadiness. IEEE Trans
       Biomed Eng 43:956-966 (DESIGN.md section 7).

    Examples
    --------
    >>> import numpy as np
    >>> t_s = np.arange(0, 10, 0.01)
    >>> y = lowpass_zero_phase(np.sin(2 * np.pi * 0.5 * t_s), fs_hz=100, cutoff_hz=10)
    >>> bool(np.max(np.abs(y - np.sin(2 * np.pi * 0.5 * t_s))) < 1e-3)
    True
    """
    order = _check_rate_and_cutoff(fs_hz, cutoff_hz, order)
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        raise ValueError("x must have at least one dimension (a time axis)")
    try:
        axis = operator.index(axis)
    except TypeError:
        raise ValueError(f"axis must be an integer, got {axis!r}") from None
    if not -a.ndim <= axis < a.ndim:
        raise ValueError(f"axis {axis} is out of range for x with {a.ndim} dimension(s)")
    if not np.all(np.isfinite(a)):
        bad = int(np.argmax(~np.isfinite(np.moveaxis(a, axis, 0)).reshape(a.shape[axis], -1).any(axis=1)))
        raise ValueError(f"x must be finite; sample {bad} along axis {axis} is not (NaN or inf)")
    sos = signal.butter(order, float(cutoff_hz), fs=float(fs_hz), output="sos")
    n = a.shape[axis]
    need = _default_padlen(sos) + 1
    if n < need:
        raise ValueError(
            f"x is too short for an order-{order} zero-phase filter: {n} samples along axis {axis}, "
            f"need at least {need}"
        )
    padlen = min(max(_default_padlen(sos), math.ceil(3 * fs_hz / cutoff_hz)), n - 1)
    return signal.sosfiltfilt(sos, a, axis=axis, padtype="odd", padlen=padlen)


class CausalLowpass:
    """Streaming Butterworth low-pass for the live display, one frame at a time.

    Parameters
    ----------
    fs_hz : float
        Frame rate in Hz (default 80, the HX711 rate).
    cutoff_hz : float
        -3 dB frequency in Hz (default 8), strictly between 0 and ``fs_hz / 2``.
    order : int
        Butterworth order (default 2).

    Notes
    -----
    The filter is ``scipy.signal.butter(order, cutoff_hz, fs=fs_hz,
    output="sos")`` run with ``scipy.signal.sosfilt`` and its state kept
    between calls. Each channel (for example Fz, COP x, COP y) is filtered on
    its own. On a channel's first finite sample the state is set to the steady
    state for that value (``sosfilt_zi`` times the sample), so the output starts
    at the input with no start-up transient. A NaN sample (nobody on the plate:
    the COP is undefined) resets that channel: the output is NaN and the next
    finite sample starts it afresh.

    Group delay at the default settings (2nd order, 8 Hz, 80 Hz): 2.18 samples
    = 27.2 ms at 0 Hz, 27.6 ms at 1 Hz, 28.9 ms at 2 Hz, and at most 34.4 ms
    (near 5.6 Hz); :meth:`group_delay_s` computes it for any setting.
    Postural sway lies below about 2 Hz, so on the screen the dot trails the
    COP by about 28 ms: between 1 and 2 refreshes of a 60 Hz display.

    References
    ----------
    .. [1] Duarte M, Freitas SMSF (2010) Revision of posturography based on
       force plate for balance evaluation. Rev Bras Fisioter 14:183-192
       (DESIGN.md section 7).

    Examples
    --------
    >>> lp = CausalLowpass(fs_hz=80.0, cutoff_hz=8.0)
    >>> lp.update([700.0, 12.0, -3.0]).round(9).tolist()  # starts at the input (to rounding)
    [700.0, 12.0, -3.0]
    """

    def __init__(self, *, fs_hz: float = 80.0, cutoff_hz: float = 8.0, order: int = 2) -> None:
        self.order = _check_rate_and_cutoff(fs_hz, cutoff_hz, order)
        self.fs_hz = float(fs_hz)
        self.cutoff_hz = float(cutoff_hz)
        self._sos = signal.butter(self.order, self.cutoff_hz, fs=self.fs_hz, output="sos")
        zi_unit = signal.sosfilt_zi(self._sos)  # (n_sections, 2), steady state for input 1
        # per frame the filter runs in plain floats (a few channels, 80 times a second: numpy's and
        # sosfilt's call overhead would be nearly all of the cost); the same operations in the same
        # order as scipy's sosfilt (direct form II transposed)
        self._sections = [tuple(float(c) for c in row) for row in self._sos]
        self._zi_unit = [(float(a), float(b)) for a, b in zi_unit]
        # per channel: per section [z0, z1]; None: the channel has not started
        self._state: list[list[list[float]] | None] | None = None

    @property
    def n_channels(self) -> int | None:
        """Number of channels, fixed by the first sample (None before it)."""
        return None if self._state is None else len(self._state)

    def reset(self) -> None:
        """Forget the state; the next sample starts the filter again (any channel count)."""
        self._state = None

    def group_delay_s(self, *, freq_hz: float = 0.0) -> float:
        """Group delay of the filter at ``freq_hz`` (Hz), in seconds."""
        if not (math.isfinite(freq_hz) and 0 <= freq_hz < self.fs_hz / 2):
            raise ValueError(f"freq_hz must be in [0, fs_hz/2 = {self.fs_hz / 2:g}), got {freq_hz!r}")
        b, a = signal.sos2tf(self._sos)
        # group_delay is singular exactly at 0 for some designs; 1e-6 Hz is DC for all purposes.
        _, gd = signal.group_delay((b, a), w=[max(freq_hz, 1e-6)], fs=self.fs_hz)
        return float(gd[0]) / self.fs_hz

    def update_values(self, *values: float) -> tuple[float, ...]:
        """Filter one frame given as plain numbers, one per channel; the filtered values (NaN where NaN).

        What :meth:`update` does, without arrays: the live display's per-frame call.
        """
        k = len(values)
        if k == 0:
            raise ValueError("sample must hold at least one channel")
        if self._state is None:
            self._state = [None] * k
        elif k != len(self._state):
            raise ValueError(
                f"sample has {k} channel(s) but the filter was started with {len(self._state)}; "
                "call reset() to change the channel count"
            )
        out = []
        for i, value in enumerate(values):
            x = float(value)
            if not math.isfinite(x):  # nobody on the plate: this channel starts afresh on its next value
                self._state[i] = None
                out.append(math.nan)
                continue
            zs = self._state[i]
            if zs is None:  # steady state for this value: the output starts at the input
                zs = self._state[i] = [[u0 * x, u1 * x] for u0, u1 in self._zi_unit]
            for (b0, b1, b2, _a0, a1, a2), z in zip(self._sections, zs):
                y = b0 * x + z[0]
                z[0] = b1 * x - a1 * y + z[1]
                z[1] = b2 * x - a2 * y
                x = y
            out.append(x)
        return tuple(out)

    def update(self, sample: float | np.ndarray) -> np.ndarray:
        """Filter one frame.

        Parameters
        ----------
        sample : float or array_like, shape (k,)
            The frame's value on each of ``k`` channels (a scalar is one
            channel). NaN marks a channel with no value (nobody on the plate).

        Returns
        -------
        ndarray, same shape as ``sample``
            Filtered values; NaN where the input is NaN.
        """
        x = np.asarray(sample, dtype=np.float64)
        if x.ndim > 1:
            raise ValueError(f"sample must be a scalar or a 1-D frame of channels, got shape {x.shape}")
        return np.array(self.update_values(*x.reshape(-1).tolist())).reshape(x.shape)

    __call__ = update

    def filter_block(self, x: np.ndarray) -> np.ndarray:
        """Filter a block of frames, shape (n,) or (n, k), exactly as ``n`` calls to :meth:`update`."""
        a = np.asarray(x, dtype=np.float64)
        if a.ndim not in (1, 2):
            raise ValueError(f"x must have shape (n,) or (n, k), got {a.shape}")
        return np.stack([self.update(row) for row in a]) if len(a) else a.copy()
