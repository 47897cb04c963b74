"""The game's sounds: short tones made with numpy, played through pygame.mixer.

Nothing is loaded from disk. Each cue of a drill (:data:`station.drills.view.Cue`)
has its sound: a bright two-note chime for a target reached, a rising
three-note run for a streak, a short fanfare at the end of a round, a soft
falling pair for a miss, a soft low tone (never a buzzer) when the balance is
lost, and a click for the metronome's beat.

Without a sound card (no audio device, SDL_AUDIODRIVER=dummy, a mixer that
cannot open), :class:`Sounds` stays silent and still counts the cues it was
asked to play, so tests can check that the right cues were sounded.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402

log = logging.getLogger(__name__)

RATE_HZ = 44_100
#: the mixer's buffer, in samples: about 12 ms at 44.1 kHz, so a cue is heard right after its event
BUFFER = 512
#: the cues and their loudness, 0 to 1 (the lost-balance tone is deliberately soft)
VOLUMES = {"hit": 0.55, "streak": 0.5, "round_end": 0.5, "miss": 0.3, "lost_balance": 0.28, "beat": 0.35}


def _note(freq_hz: float, dur_s: float, *, rate: int, attack_s: float = 0.004, decay_s: float | None = None,
          partials: tuple[tuple[float, float], ...] = ((1.0, 1.0),)) -> np.ndarray:
    """One note: a sum of sine partials (multiple, amplitude) with a short attack and an exponential decay."""
    n = max(1, int(dur_s * rate))
    t = np.arange(n) / rate
    wave = sum(a * np.sin(2 * np.pi * freq_hz * m * t) for m, a in partials)
    env = np.minimum(1.0, t / attack_s) if attack_s > 0 else np.ones(n)
    env = env * np.exp(-t / (decay_s if decay_s is not None else dur_s / 3))
    fade = min(n, int(0.004 * rate))  # no click at the end
    env[-fade:] *= np.linspace(1.0, 0.0, fade)
    return wave * env / sum(a for _, a in partials)


def _seq(*parts: tuple[np.ndarray, float], rate: int) -> np.ndarray:
    """Notes placed at start times (s), overlapping where they ring on."""
    end = max(int(start * rate) + len(note) for note, start in parts)
    out = np.zeros(end)
    for note, start in parts:
        i = int(start * rate)
        out[i:i + len(note)] += note
    return out


def synthesize(rate: int = RATE_HZ) -> dict[str, np.ndarray]:
    """The cues' waveforms, float in -1..1, mono, at ``rate`` samples/s."""
    bell = ((1.0, 1.0), (2.0, 0.35), (3.0, 0.12))
    soft = ((1.0, 1.0), (2.0, 0.15))
    e5, b5, c6, e6, g6 = 659.26, 987.77, 1046.5, 1318.5, 1568.0
    g5 = 783.99
    waves = {
        "hit": _seq((_note(e5, 0.16, rate=rate, partials=bell, decay_s=0.08), 0.0),
                    (_note(b5, 0.32, rate=rate, partials=bell, decay_s=0.14), 0.085), rate=rate),
        "streak": _seq((_note(c6, 0.14, rate=rate, partials=bell, decay_s=0.07), 0.0),
                       (_note(e6, 0.14, rate=rate, partials=bell, decay_s=0.07), 0.075),
                       (_note(g6, 0.3, rate=rate, partials=bell, decay_s=0.13), 0.15), rate=rate),
        "round_end": _seq((_note(g5, 0.2, rate=rate, partials=bell, decay_s=0.1), 0.0),
                          (_note(c6, 0.2, rate=rate, partials=bell, decay_s=0.1), 0.12),
                          (_note(e6, 0.5, rate=rate, partials=bell, decay_s=0.22), 0.24), rate=rate),
        "miss": _seq((_note(392.0, 0.16, rate=rate, partials=soft, attack_s=0.01, decay_s=0.09), 0.0),
                     (_note(329.63, 0.26, rate=rate, partials=soft, attack_s=0.01, decay_s=0.12), 0.12), rate=rate),
        # gentle: low, slow attack, no harmonics to speak of
        "lost_balance": _note(220.0, 0.45, rate=rate, partials=((1.0, 1.0), (2.0, 0.08)), attack_s=0.04, decay_s=0.2),
        # a woodblock-like click
        "beat": _note(1800.0, 0.03, rate=rate, partials=((1.0, 1.0), (2.7, 0.4)), attack_s=0.0005, decay_s=0.006),
    }
    return {cue: w / max(1.0, float(np.max(np.abs(w)))) * VOLUMES[cue] for cue, w in waves.items()}


def _to_sound(wave: np.ndarray, fmt: tuple[int, int, int]) -> pygame.mixer.Sound:
    """A mixer Sound from a float wave, in the mixer's own format (rate, size, channels)."""
    _rate, size, channels = fmt
    if size == -16:
        data = (wave * 32767).astype(np.int16)
    elif size == 16:
        data = (wave * 32767 + 32768).astype(np.uint16)
    elif size == 32:
        data = wave.astype(np.float32)
    elif size == -8:
        data = (wave * 127).astype(np.int8)
    elif size == 8:
        data = (wave * 127 + 128).astype(np.uint8)
    else:
        raise ValueError(f"mixer sample size {size} not supported")
    frames = np.repeat(data[:, None], channels, axis=1) if channels > 1 else data
    return pygame.mixer.Sound(buffer=np.ascontiguousarray(frames).tobytes())


@contextlib.contextmanager
def _c_stderr_kept(into: list[str]) -> Iterator[None]:
    """Keep what C libraries write on file descriptor 2 meanwhile (ALSA prints eight lines on a
    machine without a sound card) and append it to ``into`` instead of the console."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr: nothing to keep quiet
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as kept:
        os.dup2(kept.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            kept.seek(0)
            into.append(kept.read(8192).decode("utf-8", "replace"))


class Sounds:
    """The game's cues, played through pygame.mixer when there is one; always counted.

    Parameters
    ----------
    enabled : bool
        False keeps the game silent (the cues are still counted).

    Attributes
    ----------
    played : collections.Counter
        How many times each cue was asked for.
    available : bool
        Whether the mixer opened and the sounds are really played.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self.played: collections.Counter[str] = collections.Counter()
        self.available = False
        self.reason = "disabled" if not enabled else ""
        self._sounds: dict[str, pygame.mixer.Sound] = {}
        if enabled:
            self._open()

    def _open(self) -> None:
        noise: list[str] = []
        try:
            if not pygame.mixer.get_init():
                with _c_stderr_kept(noise):
                    pygame.mixer.init(frequency=RATE_HZ, size=-16, channels=1, buffer=BUFFER)
            fmt = pygame.mixer.get_init()
            if not fmt:
                raise pygame.error("the mixer did not open")
            self._sounds = {cue: _to_sound(wave, fmt) for cue, wave in synthesize(fmt[0]).items()}
            self.available = True
        except (pygame.error, ValueError, NotImplementedError) as exc:
            self.reason = str(exc) or type(exc).__name__
            self._sounds = {}
            log.info("game sounds off: %s", self.reason)
        if "".join(noise).strip():
            log.debug("the sound library said: %s", "".join(noise).strip())

    def play(self, cue: str | None) -> None:
        """Play ``cue`` (one of the drill cues); unknown cues and ``None`` are ignored."""
        if cue is None or cue not in VOLUMES:
            return
        self.played[cue] += 1
        sound = self._sounds.get(cue)
        if sound is not None:
            try:
                sound.play()
            except pygame.error:  # the device went away: go on silently
                pass
