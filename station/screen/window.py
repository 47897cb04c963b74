"""The screen's frame: the display (window or full screen) and the :class:`Mode` every screen is.

Screens are mode classes (:class:`Mode`): each reads input events, updates and
draws; all state lives in the station. :class:`Window` owns the display surface.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # keep the journal to the station's own lines

from typing import Protocol

import pygame  # noqa: E402

from station.core.config import ScreenSettings

log = logging.getLogger(__name__)


class ScreenUnavailable(RuntimeError):
    """No display could be opened (no monitor, no desktop, no KMS/DRM device)."""


#: the screens are drawn at most this many lines high; a bigger panel (1920x1080) gets the picture scaled by
#: SDL (pygame's SCALED: a texture the GPU stretches on the Pi), so the drawing costs what it costs at 720 lines
LOGICAL_HEIGHT = 720
#: video drivers that show nothing (tests, benchmarks): no window to scale up to
VIRTUAL_DRIVERS = ("dummy", "offscreen")


def logical_size(panel: tuple[int, int]) -> tuple[int, int]:
    """The size the screens are drawn at for a panel of ``panel`` pixels: the panel itself up to 720 lines,
    else the panel's shape 720 lines high."""
    w, h = panel
    if h <= LOGICAL_HEIGHT:
        return (w, h)
    return (max(1, round(w * LOGICAL_HEIGHT / h)), LOGICAL_HEIGHT)


def open_display(settings: ScreenSettings) -> pygame.Surface:
    """Open the window or the full screen. Raises :class:`ScreenUnavailable` with SDL's reason.

    The surface returned is at most :data:`LOGICAL_HEIGHT` lines high: on a bigger full screen SDL stretches it
    over the panel (SCALED; a texture the GPU scales); with a video driver that shows nothing the window is just
    the drawn size.
    """
    driver = os.environ.get("SDL_VIDEODRIVER", "")
    if not driver and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        if not any(Path("/dev/dri").glob("card*")):
            raise ScreenUnavailable("no desktop (DISPLAY/WAYLAND_DISPLAY unset) and no KMS/DRM device in /dev/dri")
        os.environ["SDL_VIDEODRIVER"] = "kmsdrm"
    virtual = os.environ.get("SDL_VIDEODRIVER", driver) in VIRTUAL_DRIVERS
    try:
        pygame.display.init()
        pygame.font.init()
        if settings.fullscreen and not virtual:
            panel = pygame.display.get_desktop_sizes()[0]
            size = logical_size(panel)
            if size == panel:
                surface = pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
            else:  # SDL stretches the picture over the whole panel, smoothly (linear filtering, on the GPU)
                os.environ.setdefault("PYGAME_FORCE_SCALE", "photo")
                surface = pygame.display.set_mode(size, pygame.FULLSCREEN | pygame.SCALED)
            pygame.mouse.set_visible(False)
        else:
            panel = (settings.width, settings.height)
            size = logical_size(panel)
            if size == panel or virtual:
                surface = pygame.display.set_mode(size)
            else:  # a window on a desktop: pygame scales it by the largest whole factor that fits
                surface = pygame.display.set_mode(size, pygame.SCALED)
    except pygame.error as exc:
        pygame.display.quit()
        raise ScreenUnavailable(f"SDL could not open a display: {exc}") from None
    pygame.display.set_caption("Balance station")
    return surface


class SoundPlayer(Protocol):
    """What plays the screen's sounds (:class:`station.screen.sounds.Sounds`, or a test's recorder)."""

    def play(self, cue: str | None) -> None: ...


class Buzzer(Protocol):
    """What beeps the station's cues (:class:`hardware.controls.StationControls`, or a test's recorder)."""

    def beep(self, name: str) -> None: ...


class Mode:
    """One screen. Subclasses handle input and draw; they keep no station state of their own."""

    def handle_event(self, event: pygame.event.Event) -> None:  # noqa: B027 - optional
        pass

    def update(self) -> None:  # noqa: B027 - optional, called once per screen frame
        pass

    def draw(self, surface: pygame.Surface) -> None:
        raise NotImplementedError


class Window:
    """The display surface shared by the station's screen loops: open, screenshot, close."""

    def __init__(self, settings: ScreenSettings) -> None:
        self.settings = settings
        self.surface: pygame.Surface | None = None
        self.frames_drawn = 0
        self.quit_requested = False

    def open(self) -> None:
        self.surface = open_display(self.settings)

    def screenshot(self, path: Path) -> None:
        assert self.surface is not None, "open() first"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(self.surface, str(path))

    def close(self) -> None:
        pygame.display.quit()
