"""The single-leg test on the patient screen: patient, leg, instructions, countdown, hold, result, other leg.

Each screen is a :class:`~station.screen.window.Mode`; they share a
:class:`FlowContext` (the live station, the visit, the trial controller,
the sounds). Modes read input and draw; the test itself runs in the
controller (:mod:`station.clinic.controller`), whose snapshot every mode draws from, so
a test started from the web page or the start button shows here the same way.

Navigation needs no mouse: arrow keys and Enter (or Space), Esc to go back,
the start button (:meth:`FlowContext.press`), or a touch on the big buttons.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pygame

from station.clinic.controller import TrialBusy
from station.clinic.snapshot import QuietStanceStatus, SingleLegStatus, TrialSnapshot
from station.clinic.visit import Visit
from station.core.cop import GRAVITY_M_S2
from station.core.geometry import PlateGeometry
from station.core.sides import SIDES
from station.screen import view, widgets
from station.screen.live_view import LiveMode
from station.screen.menu import DrillMenuMode, available_items, programme_items
from station.screen.widgets import menu_size
from station.screen.window import Mode
from station.storage.db import StorageError

__all__ = ["FlowContext", "HomeMode", "NewPatientMode", "PatientMode", "ResultMode", "SideMode", "TrialMode"]

SIDE_WORD = {"left": "LEFT", "right": "RIGHT"}
OTHER = {"left": "right", "right": "left"}
#: how long the touchdown signal stays on the screen, in s
TOUCHDOWN_FLASH_S = 1.2


@dataclass
class FlowContext:
    """What every screen of the flow shares.

    ``switch`` changes the screen; ``clock`` is monotonic seconds (for the
    flashes); ``cue`` plays a sound (and the buzzer, when there is one).
    """

    live: Any
    visit: Visit
    geometry: PlateGeometry
    switch: Callable[[Mode], None]
    cue: Callable[[str], None]
    clock: Callable[[], float]
    home: Callable[[], Mode] | None = None
    sounds: Any = None
    extra_menu: list[tuple[str, str, Callable[[], Mode]]] = field(default_factory=list)

    @property
    def controller(self) -> Any:
        return self.visit.controller

    def go_home(self) -> None:
        """The start screen; the patient's turn is over (no badge left behind, no hidden plan for the button)."""
        if not self.controller.running:
            self.visit.patient = None
            self.visit.plan = None
        self.switch(self.home() if self.home is not None else HomeMode(self))

    def press(self) -> str:
        """The start button: abort the running test, or start the next leg of the plan."""
        done = self.visit.press()
        if done == "started":
            self.switch(TrialMode(self))
        return done


def _sizes(surface: pygame.Surface) -> tuple[int, int, int, int]:
    """Font sizes for this screen: huge, big, medium, small (readable from 2 m on a 7" screen)."""
    h = surface.get_height()
    return max(60, h // 4), max(34, h // 10), max(24, h // 17), max(18, h // 28)


def _header(surface: pygame.Surface, title: str, ctx: FlowContext, *, hint: str = "",
            show_patient: bool = True) -> None:
    """The title, centred and shrunk to fit between the patient's pill (left) and the plate's (right)."""
    w, h = surface.get_size()
    _, big, mid, small = _sizes(surface)
    margin = w // 40
    left_w = right_w = 0
    patient = ctx.visit.patient
    if patient is not None and show_patient:  # the code only: whoever stands on the plate sees the screen
        left_w = widgets.pill(surface, patient.code, (margin, h // 40), size_px=menu_size(small), pad_px=small // 3,
                              fg=view.BACKGROUND, bg=view.MUTED).width
    if ctx.live.synthetic:
        label = "SIMULATED PLATE"
        image_w = widgets.face(menu_size(small), True).size(label)[0] + small
        right_w = widgets.pill(surface, label, (w - margin - image_w, h // 40), size_px=menu_size(small),
                               pad_px=small // 3, fg=view.BACKGROUND, bg=view.SYNTHETIC).width
    room = w - 2 * (max(left_w, right_w) + 2 * margin)
    size = big
    while size > small and widgets.face(menu_size(size), True).size(title)[0] > room:
        size -= 2
    widgets.text(surface, title, (w // 2, h // 24 + (big - size) // 2), size_px=menu_size(size), anchor="midtop",
                 bold=True)
    if hint:
        widgets.text(surface, hint, (w // 2, h - h // 40), size_px=menu_size(small), colour=view.MUTED,
                     anchor="midbottom")


class MenuMode(Mode):
    """A column of big buttons, chosen with the arrows and Enter, the start button, or a touch."""

    title = ""
    hint = "Up/Down choose · Enter select · Esc back"
    #: the chosen patient's code in the corner (not on the start screen or the choice of patient)
    show_patient = True

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        self.selected = 0
        self._rects: list[pygame.Rect] = []
        self.message = ""

    def items(self) -> Sequence[tuple[str, str]]:
        """(label, sub-label) of each button."""
        raise NotImplementedError

    def choose(self, index: int) -> None:
        raise NotImplementedError

    def back(self) -> None:
        self.ctx.go_home()

    def press(self) -> None:
        """The start button selects the highlighted button."""
        if self.items():
            self.choose(self.selected)

    def handle_event(self, event: pygame.event.Event) -> None:
        n = len(self.items())
        if event.type == pygame.KEYDOWN:
            if event.key in (pygame.K_DOWN, pygame.K_TAB) and n:
                self.selected = (self.selected + 1) % n
            elif event.key == pygame.K_UP and n:
                self.selected = (self.selected - 1) % n
            elif event.key in (pygame.K_RETURN, pygame.K_KP_ENTER, pygame.K_SPACE) and n:
                self.choose(self.selected)
            elif event.key in (pygame.K_ESCAPE, pygame.K_BACKSPACE):
                self.back()
        elif event.type in (pygame.MOUSEBUTTONDOWN, pygame.FINGERDOWN):
            pos = _event_pos(event)
            for i, rect in enumerate(self._rects):
                if pos is not None and rect.collidepoint(pos):
                    self.selected = i
                    self.choose(i)
                    break

    def layout(self, surface: pygame.Surface, n: int) -> list[pygame.Rect]:
        w, h = surface.get_size()
        top, bottom = int(h * 0.2), int(h * 0.9)
        visible = max(1, min(n, 5))
        gap = max(8, h // 60)
        bh = min(int(h * 0.15), (bottom - top - gap * (visible - 1)) // visible)
        bw = int(w * 0.6)
        return [pygame.Rect((w - bw) // 2, top + i * (bh + gap), bw, bh) for i in range(visible)]

    def frame_key(self, surface: pygame.Surface) -> tuple | None:
        """Everything this menu shows: while it stays the same the screen loop does not draw it again (the
        start screen stands for hours). None (always draw) for a menu that draws more than its buttons."""
        if type(self).draw is not MenuMode.draw:
            return None
        patient = self.ctx.visit.patient
        return (surface.get_size(), self.title, self.hint, self.show_patient and patient is not None
                and patient.code, bool(self.ctx.live.synthetic), tuple(self.items()), self.selected, self.message)

    def draw(self, surface: pygame.Surface) -> None:
        surface.fill(view.BACKGROUND)
        _header(surface, self.title, self.ctx, hint=self.hint, show_patient=self.show_patient)
        items = list(self.items())
        slots = self.layout(surface, len(items))
        first = min(max(0, self.selected - len(slots) + 1), max(0, len(items) - len(slots)))
        _, _, mid, small = _sizes(surface)
        self._rects = [pygame.Rect(0, 0, 0, 0)] * len(items)
        for slot, i in zip(slots, range(first, first + len(slots))):
            label, sub = items[i]
            widgets.button(surface, label, slot, size_px=menu_size(mid), selected=i == self.selected, sub=sub,
                           sub_size_px=menu_size(max(14, mid * 2 // 3)), gap_px=mid // 8)
            self._rects[i] = slot
        if self.message:
            w, h = surface.get_size()
            widgets.text(surface, self.message, (w // 2, int(h * 0.93)), size_px=menu_size(small), colour=view.WARN,
                         anchor="midbottom", bold=True)


def _event_pos(event: pygame.event.Event) -> tuple[int, int] | None:
    if event.type == pygame.FINGERDOWN:
        surface = pygame.display.get_surface()
        if surface is None:
            return None
        w, h = surface.get_size()
        return int(event.x * w), int(event.y * h)
    return getattr(event, "pos", None)


class HomeMode(MenuMode):
    """The station's start screen."""

    title = "Balance station"
    hint = "Up/Down choose · Enter or the start button select"
    show_patient = False

    def items(self) -> Sequence[tuple[str, str]]:
        out = [("Single-leg test", "30 s on each leg (Trendelenburg)"),
               ("Balance games", "reach, weight shift, rhythm, single-leg hold")]
        out += [(label, sub) for label, sub, _ in self.ctx.extra_menu]
        out.append(("Stand on the plate", "live view of your balance"))
        return out

    def choose(self, index: int) -> None:
        if index == 0:
            self.ctx.switch(PatientMode(self.ctx))
        elif index == 1:
            self.ctx.switch(GamesPatientMode(self.ctx))
        elif index <= 1 + len(self.ctx.extra_menu):
            self.ctx.switch(self.ctx.extra_menu[index - 2][2]())
        else:

            self.ctx.switch(_BackToHome(LiveMode(self.ctx.live, self.ctx.geometry), self.ctx))

    def back(self) -> None:
        pass


class _BackToHome(Mode):
    """Wraps a mode so that Esc (or the start button) comes back to the home screen."""

    def __init__(self, inner: Mode, ctx: FlowContext) -> None:
        self.inner = inner
        self.ctx = ctx

    def handle_event(self, event: pygame.event.Event) -> None:
        if event.type == pygame.KEYDOWN and event.key in (pygame.K_ESCAPE, pygame.K_BACKSPACE):
            self.ctx.go_home()
        else:
            self.inner.handle_event(event)

    def press(self) -> None:
        self.ctx.go_home()

    def update(self) -> None:
        self.inner.update()

    def draw(self, surface: pygame.Surface) -> None:
        self.inner.draw(surface)


class PatientMode(MenuMode):
    """Choose the patient (the most recently seen first) or add one."""

    title = "Who is being tested?"
    show_patient = False

    def __init__(self, ctx: FlowContext) -> None:
        super().__init__(ctx)
        try:
            self.patients = ctx.visit.recent_patients()
        except StorageError as exc:
            self.patients = []
            self.message = str(exc)

    def items(self) -> Sequence[tuple[str, str]]:
        # codes only: whoever stands on the plate sees this list (no age, side or other data)
        return [("+ New patient", "type a pseudonymous code")] + [(p.code, "") for p in self.patients]

    def choose(self, index: int) -> None:
        if index == 0:
            self.ctx.switch(NewPatientMode(self.ctx))
            return
        self.ctx.visit.choose(self.patients[index - 1].code)
        self.ctx.switch(SideMode(self.ctx))


class GamesPatientMode(PatientMode):
    """Who is playing: the games are stored as trials of the patient (or played without saving)."""

    title = "Who is playing?"

    def items(self) -> Sequence[tuple[str, str]]:
        out = list(super().items())
        out.insert(1, ("Play without saving", "a demonstration: nothing is stored"))
        return out

    def choose(self, index: int) -> None:
        if index == 0:
            self.ctx.switch(NewPatientMode(self.ctx, then=GamesMenu, back=GamesPatientMode))
            return
        if index == 1:
            self.ctx.visit.patient = None
        else:
            self.ctx.visit.choose(self.patients[index - 2].code)
        self.ctx.switch(GamesMenu(self.ctx))


def GamesMenu(ctx: FlowContext) -> Mode:  # noqa: N802 - a mode factory, named like the modes
    """The drill menu for the patient on the station: their programme first, then every drill; each
    game stored as a trial of the patient (nothing stored without a patient)."""

    visit = ctx.visit
    patient = visit.patient
    pelvis = getattr(visit.controller, "pelvis", None)
    tiles = available_items(pelvis=pelvis is not None)
    items = programme_items(visit.programme(), pelvis=pelvis is not None) + tiles if patient else tiles
    title = f"Games for {patient.code}" if patient else "Games (not saved)"
    skill = None
    if ctx.live.synthetic and visit.controller.patient_sim is not None:
        skill = "good" if visit.controller.patient_sim.profile == "healthy" else "poor"
    return DrillMenuMode(ctx.live, ctx.geometry, switch=ctx.switch, home=HomeMode(ctx), sounds=ctx.sounds,
                         autoplay_skill=skill, items=items, title=title, limits=visit.limits(),
                         recorder=visit.record_game if patient else None,
                         level_for=visit.last_level if patient else None, pelvis=pelvis)


class ControlledDrill:
    """The drill the trial controller runs (started from the web page), as the game screen sees it.

    The controller feeds the drill and stores it; the screen only draws it:
    :meth:`update` hands back the drill's new events (for the sounds), stamped
    with the frame the screen is drawing, and :meth:`abort` asks the
    controller to stop it. Everything else is the drill's own.
    """

    def __init__(self, controller: Any, runner: Any) -> None:
        self.controller = controller
        self.drill = runner.drill
        self._seen = controller.snapshot().event_count

    def __getattr__(self, name: str) -> Any:
        return getattr(self.drill, name)

    def update(self, frame: Any) -> list[Any]:
        from station.drills import DrillEvent

        if self.controller.event_count == self._seen:  # most frames: nothing new, no snapshot taken
            return []
        snap = self.controller.snapshot()
        new = snap.event_count - self._seen
        self._seen = snap.event_count
        if new <= 0:
            return []
        return [DrillEvent(e.get("kind", ""), float(frame.t_s), e.get("message", ""), e.get("cue"))
                for e in snap.events[-new:]]

    def abort(self, reason: str = "stopped on the screen") -> list[Any]:
        self.controller.abort(reason)
        return []


class NewPatientMode(Mode):
    """Type a new patient's pseudonymous code (and, optionally, the year of birth for the norms)."""

    def __init__(self, ctx: FlowContext, *, then: Callable[[FlowContext], Mode] | None = None,
                 back: Callable[[FlowContext], Mode] | None = None) -> None:
        self.ctx = ctx
        self.then = then
        self.back = back or PatientMode
        self.fields = {"code": "", "birth_year": ""}
        self.field = "code"
        self.message = ""

    def handle_event(self, event: pygame.event.Event) -> None:
        if event.type != pygame.KEYDOWN:
            return
        if event.key == pygame.K_ESCAPE:
            self.ctx.switch(self.back(self.ctx))  # the games' choice of player, or the test's
        elif event.key in (pygame.K_TAB, pygame.K_DOWN, pygame.K_UP):
            self.field = "birth_year" if self.field == "code" else "code"
        elif event.key == pygame.K_BACKSPACE:
            self.fields[self.field] = self.fields[self.field][:-1]
        elif event.key in (pygame.K_RETURN, pygame.K_KP_ENTER):
            self.submit()
        elif event.unicode and event.unicode.isprintable():
            allowed = "0123456789" if self.field == "birth_year" else None
            if (allowed is None or event.unicode in allowed) and len(self.fields[self.field]) < 32:
                self.fields[self.field] += event.unicode.upper() if self.field == "code" else event.unicode

    def submit(self) -> None:
        year_text = self.fields["birth_year"].strip()
        birth_year = int(year_text) if year_text else None
        try:
            self.ctx.visit.create(self.fields["code"], birth_year=birth_year)
        except (StorageError, ValueError) as exc:
            self.message = str(exc)
            return
        self.ctx.switch(self.then(self.ctx) if self.then is not None else SideMode(self.ctx))

    def draw(self, surface: pygame.Surface) -> None:
        surface.fill(view.BACKGROUND)
        _header(surface, "New patient", self.ctx, hint="Tab next field · Enter save · Esc back", show_patient=False)
        w, h = surface.get_size()
        _, big, mid, small = _sizes(surface)
        y = int(h * 0.22)
        for key, label, example in (("code", "Patient code", "e.g. P-0042: a code, never a name"),
                                    ("birth_year", "Year of birth (optional)", "for the age-matched norm")):
            widgets.text(surface, label, (w // 5, y), size_px=menu_size(mid), colour=view.MUTED)
            box = pygame.Rect(w // 5, y + mid + 4, int(w * 0.6), big + mid // 2)
            active = key == self.field
            pygame.draw.rect(surface, view.PANEL, box, border_radius=10)
            pygame.draw.rect(surface, view.ACCENT if active else view.PLATE_EDGE, box, width=3 if active else 2,
                             border_radius=10)
            shown = self.fields[key] + ("_" if active else "")
            widgets.text(surface, shown or example, (box.left + mid // 2, box.centery),
                         size_px=menu_size(big if shown else small), colour=view.TEXT if shown else view.MUTED,
                         anchor="midleft", bold=bool(shown))
            y = box.bottom + mid
        if self.message:
            widgets.paragraph(surface, self.message, (w // 2, y), size_px=menu_size(small), gap_px=small // 6,
                              width_px=int(w * 0.8), colour=view.WARN)


class SideMode(MenuMode):
    """Which leg stands first; the other one follows."""

    title = "Stand on which leg first?"

    def items(self) -> Sequence[tuple[str, str]]:
        return [("Left leg", "lift the right foot"), ("Right leg", "lift the left foot")]

    def choose(self, index: int) -> None:
        side = SIDES[index]
        self.ctx.visit.plan_single_leg(side)
        self.start()

    def start(self) -> None:
        try:
            self.ctx.visit.start_next()
        except TrialBusy as exc:
            self.message = str(exc)
            return
        self.ctx.switch(TrialMode(self.ctx))

    def back(self) -> None:
        self.ctx.switch(PatientMode(self.ctx))


class TrialMode(Mode):
    """The running test: instructions, the 3-2-1 countdown, the big timer, the COP over the feet."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        self._seen_events = ctx.controller.snapshot().event_count
        self._flash_until = 0.0
        self._flash_text = ""
        self._view: view.PlateView | None = None
        self.snapshot: TrialSnapshot = ctx.controller.snapshot()

    def press(self) -> None:
        self.ctx.press()

    def handle_event(self, event: pygame.event.Event) -> None:
        if event.type == pygame.KEYDOWN and event.key in (pygame.K_ESCAPE, pygame.K_a):
            self.ctx.controller.abort("aborted on the station")

    def update(self) -> None:
        snap = self.ctx.controller.snapshot()
        self.snapshot = snap
        new = snap.event_count - self._seen_events
        if new > 0:
            for event in snap.events[-new:]:
                self._on_event(event)
            self._seen_events = snap.event_count
        if not snap.running and snap.outcome:
            self.ctx.switch(ResultMode(self.ctx, snap))

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "countdown":
            self.ctx.cue("countdown")
        elif kind == "instruction" and event.get("code") == "lift":
            self.ctx.cue("go")
        elif kind == "touchdown":
            where = "on the plate" if event.get("where") == "plate" else "on the floor"
            self._flash_text = f"Foot down {where}"
            self._flash_until = self.ctx.clock() + TOUCHDOWN_FLASH_S
            self.ctx.cue("touchdown")
        elif kind == "finished":
            self.ctx.cue("finished")

    def _draw_pelvis(self, surface: pygame.Surface, snap: TrialSnapshot, side: str | None, size_px: int) -> None:
        """The pelvis-level gauge during the hold (with the pelvis sensor): above the timer, clear of the plate."""
        pelvis = snap.pelvis
        drop = pelvis.drop_deg if pelvis is not None else None
        if pelvis is None or side not in SIDES or drop is None or snap.state not in ("hold", "done"):
            return
        w, h = surface.get_size()
        _pelvis_gauge(surface, centre=(int(w * 0.87), int(h * 0.27)), length_px=int(w * 0.14), drop_deg=float(drop),
                      lifted=OTHER[side], threshold_deg=float(pelvis.threshold_deg or 2.0), size_px=size_px)

    def plate_view(self, surface: pygame.Surface) -> view.PlateView:
        w, h = surface.get_size()
        area = pygame.Rect(0, 0, int(w * 0.55), int(h * 0.62))
        area.midbottom = (int(w * 0.33), int(h * 0.9))
        if self._view is None or self._view.area != area:
            self._view = view.PlateView(self.ctx.geometry, area)
        return self._view

    def draw(self, surface: pygame.Surface) -> None:
        snap = self.snapshot
        status = snap.status
        leg = status if isinstance(status, SingleLegStatus) else None  # the single-leg test's timer and touchdowns
        countdown = status.countdown_remaining_s if isinstance(status, SingleLegStatus | QuietStanceStatus) else None
        side = snap.stance_side
        w, h = surface.get_size()
        huge, big, mid, small = _sizes(surface)
        flashing = self.ctx.clock() < self._flash_until
        surface.fill(view.BACKGROUND)
        title = f"Single-leg test: {SIDE_WORD.get(side, '?')} leg" if side else "Quiet standing test"
        _header(surface, title, self.ctx, hint="Esc or the start button: abort")

        # the instruction, large, across the top
        state = snap.state
        instruction = snap.instruction or ""
        widgets.paragraph(surface, instruction, (w // 2, h // 24 + big + mid // 2), size_px=menu_size(mid),
                          gap_px=mid // 6, width_px=int(w * 0.92), bold=True)

        # the plate with the feet and the COP; the stance foot highlighted, the lifted one dimmed in the hold
        pv = self.plate_view(surface)
        pv.draw_plate(surface)
        if side in SIDES and state in ("await_lift", "hold", "done"):
            lifted_x = self.ctx.geometry.right_foot_x_mm if side == "left" else self.ctx.geometry.left_foot_x_mm
            s_px = pv.scale_px_per_mm  # the stance foot ringed in green, the lifted one labelled
            ring = pygame.Rect(0, 0, round(130 * s_px), round(min(300.0, self.ctx.geometry.ap_mm) * 0.95 * s_px))
            ring.center = pv.to_px(-lifted_x, 0.0)
            pygame.draw.ellipse(surface, view.GOOD, ring, width=max(3, round(6 * s_px)))
            widgets.text(surface, "lift", pv.to_px(lifted_x, -self.ctx.geometry.ap_mm * 0.42), size_px=menu_size(small),
                         colour=view.MUTED, anchor="midtop", bold=True)
        sample = self.ctx.live.latest()
        if sample is not None and sample.occupied and not math.isnan(sample.frame.cop_ml_mm):
            pv.draw_cop(surface, sample.frame.cop_ml_mm, sample.frame.cop_ap_mm, self.ctx.live.trail())

        # the right-hand panel: the countdown, the timer, or the baseline's progress
        panel = pygame.Rect(int(w * 0.64), int(h * 0.33), int(w * 0.33), int(h * 0.58))
        pygame.draw.rect(surface, view.PANEL, panel, border_radius=18)
        if state == "countdown" and countdown is not None:
            widgets.text(surface, "Get ready", (panel.centerx, panel.top + mid // 2), size_px=menu_size(mid),
                         colour=view.MUTED, anchor="midtop")
            widgets.text(surface, str(countdown), panel.center,
                         size_px=menu_size(int(huge * 1.6)), anchor="center", bold=True, colour=view.WARN)
        elif state in ("hold", "done") or (leg is not None and leg.hold_elapsed_s is not None):
            held = float((leg.hold_elapsed_s if leg is not None else None) or 0.0)
            total = float((leg.hold_s if leg is not None else None) or 30.0)
            widgets.text(surface, "Hold", (panel.centerx, panel.top + mid // 2), size_px=menu_size(mid),
                         colour=view.MUTED, anchor="midtop")
            widgets.text(surface, f"{int(held)}", (panel.centerx, panel.centery - mid // 3), size_px=menu_size(huge),
                         anchor="center", bold=True)
            widgets.text(surface, f"of {total:.0f} s", (panel.centerx, panel.centery + huge // 2),
                         size_px=menu_size(mid), colour=view.MUTED, anchor="midtop")
            bar = pygame.Rect(panel.left + panel.width // 10, panel.bottom - mid * 2, panel.width * 8 // 10, mid // 2)
            pygame.draw.rect(surface, view.PLATE, bar, border_radius=bar.height // 2)
            fill = bar.copy()
            fill.width = round(bar.width * min(1.0, held / total))
            pygame.draw.rect(surface, view.GOOD, fill, border_radius=bar.height // 2)
            touchdowns = int(leg.touchdowns or 0) if leg is not None else 0
            if touchdowns:
                widgets.text(surface, f"Foot down: {touchdowns}×", (panel.centerx, bar.bottom + small // 2),
                             size_px=menu_size(small), colour=view.BAD, anchor="midtop", bold=True)
            elif leg is not None and leg.supported_now:
                widgets.text(surface, "Hand support", (panel.centerx, bar.bottom + small // 2),
                             size_px=menu_size(small), colour=view.WARN, anchor="midtop", bold=True)
        else:
            if state == "await_lift":
                widgets.text(surface, "Lift your", (panel.centerx, panel.top + mid), size_px=menu_size(mid),
                             colour=view.MUTED, anchor="midtop")
                lifted = OTHER.get(side or "", "")
                widgets.text(surface, f"{lifted.upper()} foot", panel.center, size_px=menu_size(big), anchor="center",
                             bold=True)
            else:
                widgets.text(surface, "Stand still", (panel.centerx, panel.top + mid), size_px=menu_size(mid),
                             colour=view.MUTED, anchor="midtop")
                widgets.text(surface, "on both feet", (panel.centerx, panel.top + 2 * mid + 4), size_px=menu_size(mid),
                             colour=view.MUTED, anchor="midtop")
                collected = leg.baseline_collected_s if leg is not None else None
                if collected is not None:
                    bar = pygame.Rect(panel.left + panel.width // 10, panel.centery, panel.width * 8 // 10, mid // 2)
                    pygame.draw.rect(surface, view.PLATE, bar, border_radius=bar.height // 2)
                    fill = bar.copy()
                    fill.width = round(bar.width * min(1.0, float(collected) / 3.0))
                    pygame.draw.rect(surface, view.ACCENT, fill, border_radius=bar.height // 2)
            if sample is not None and sample.occupied:
                widgets.text(surface, f"{sample.body_weight_n / GRAVITY_M_S2:.1f} kg",
                             (panel.centerx, panel.bottom - mid), size_px=menu_size(mid), anchor="midbottom")

        self._draw_pelvis(surface, snap, side, small)

        if flashing:  # the touchdown signal: a red frame round the screen and a banner
            pygame.draw.rect(surface, view.BAD, surface.get_rect(), width=max(12, h // 30))
            widgets.banner(surface, self._flash_text, (w // 2, h // 2), size_px=menu_size(big), pad_px=big,
                           colour=view.BAD)
        if snap.error:
            widgets.text(surface, snap.error[:120], (w // 2, h - h // 40 - small - 4), size_px=menu_size(small),
                         colour=view.WARN, anchor="midbottom", bold=True)


def pelvis_gauge_text(drop_deg: float, lifted: str, threshold_deg: float) -> tuple[str, str]:
    """The gauge's words and colour name (``good``, ``warn``, ``bad``) for a drop of the lifted side."""
    if drop_deg > threshold_deg:
        return f"Pelvis: {lifted} side {drop_deg:.0f}° low", "bad"
    if drop_deg > 0.5:
        return f"Pelvis: {lifted} side {drop_deg:.0f}° low", "warn"
    if drop_deg < -0.5:
        return f"Pelvis: {lifted} side {-drop_deg:.0f}° up", "good"
    return "Pelvis level", "good"


#: the gauge draws the pelvis's tilt this many times larger than it is (a 3 degree drop is then plain to see)
PELVIS_GAUGE_GAIN = 3.0


def _pelvis_gauge(surface: pygame.Surface, *, centre: tuple[int, int], length_px: int, drop_deg: float,
                  lifted: str, threshold_deg: float, size_px: int) -> None:
    """A bar for the pelvis seen from behind (the patient's right on the right), tilted by the lifted side's drop
    (exaggerated :data:`PELVIS_GAUGE_GAIN` times), a dashed level line, and the words."""
    words, tone = pelvis_gauge_text(drop_deg, lifted, threshold_deg)
    colour = {"good": view.GOOD, "warn": view.WARN, "bad": view.BAD}[tone]
    cx, cy = centre
    angle = math.radians(max(-15.0, min(15.0, PELVIS_GAUGE_GAIN * drop_deg)))
    half = length_px / 2
    dy = half * math.sin(angle)  # the lifted end goes down (screen y grows downwards)
    dx = half * math.cos(angle)
    sign = 1 if lifted == "right" else -1  # which end is the lifted side
    lifted_end = (cx + sign * dx, cy + dy)
    stance_end = (cx - sign * dx, cy - dy)
    for k in range(0, int(length_px), 16):  # the level, dashed
        x0 = cx - half + k
        pygame.draw.line(surface, view.MUTED, (x0, cy), (min(x0 + 8, cx + half), cy), 2)
    pygame.draw.line(surface, colour, stance_end, lifted_end, max(6, size_px // 3))
    for end in (stance_end, lifted_end):
        pygame.draw.circle(surface, colour, (round(end[0]), round(end[1])), max(6, size_px // 3))
    widgets.text(surface, words, (round(cx - half - size_px), cy), size_px=menu_size(size_px), colour=colour,
                 anchor="midright", bold=True)


class ResultMode(MenuMode):
    """The trial's result, then the other leg, a repeat, the left/right summary, or the end."""

    title = "Result"

    def __init__(self, ctx: FlowContext, snapshot: TrialSnapshot) -> None:
        super().__init__(ctx)
        self.snapshot = snapshot
        ctx.visit.trial_ended(snapshot)  # idempotent: the controller's callback may have counted it already

    def items(self) -> Sequence[tuple[str, str]]:
        nxt = self.ctx.visit.next_side()
        out = []
        if nxt is not None:
            again = nxt == self.snapshot.stance_side
            label = f"Repeat: {nxt} leg" if again else f"Next: {nxt} leg"
            out.append((label, "press Enter or the start button"))
        out.append(("Finish", "back to the start screen"))
        return out

    def choose(self, index: int) -> None:
        if self.ctx.visit.next_side() is not None and index == 0:
            try:
                self.ctx.visit.start_next()
            except (TrialBusy, ValueError) as exc:
                self.message = str(exc)
                return
            self.ctx.switch(TrialMode(self.ctx))
        else:
            self.ctx.visit.patient = None
            self.ctx.go_home()

    def layout(self, surface: pygame.Surface, n: int) -> list[pygame.Rect]:
        w, h = surface.get_size()
        bw, bh = int(w * 0.3), int(h * 0.14)
        gap = h // 40
        top = int(h * 0.88) - n * bh - (n - 1) * gap
        return [pygame.Rect(int(w * 0.66), top + i * (bh + gap), bw, bh) for i in range(n)]

    def draw(self, surface: pygame.Surface) -> None:
        super().draw(surface)
        w, h = surface.get_size()
        huge, big, mid, small = _sizes(surface)
        snap = self.snapshot
        side = snap.stance_side
        result = snap.result
        left_x = w // 20
        y = int(h * 0.18)
        if snap.protocol == "single-leg":
            widgets.text(surface, f"{(side or '').capitalize()} leg", (left_x, y), size_px=menu_size(mid),
                         colour=view.MUTED)
            y += mid + 4
        if result is None:  # stopped, or too short to score: said kindly, no blame
            widgets.text(surface, "Stopped", (left_x, y), size_px=menu_size(big), bold=True, colour=view.WARN)
            y += big + mid // 2
            y = widgets.paragraph(surface, "That is all right: we can try again whenever you are ready.", (left_x, y),
                                  size_px=menu_size(mid), gap_px=mid // 6, width_px=int(w * 0.55), anchor="topleft")
            reason = str(snap.detail or snap.error or "")
            if reason:
                widgets.paragraph(surface, f"({reason})", (left_x, y + small // 2), size_px=menu_size(small),
                                  gap_px=small // 6, width_px=int(w * 0.55), colour=view.MUTED, anchor="topleft")
            return
        # the result as the patient needs it: the seconds held and a kind word; the clinical measures
        # (sway, hand support in % of body weight, the norm, the asymmetry) are on the therapist's page
        if snap.protocol == "single-leg":
            held = result.get("hold_time_s")
            ok = bool(result.get("completed"))
            colour = view.GOOD if ok else view.WARN
            shown = f"{int(held)} seconds" if held is not None else "–"  # floor: 29.6 s is not 30
            size = huge
            while size > big and widgets.face(menu_size(size), True).size(shown)[0] > int(w * 0.58):
                size -= 4
            widgets.text(surface, shown, (left_x, y), size_px=menu_size(size), bold=True, colour=colour)
            y += size + mid // 3
            words = "Well done!" if ok else "Good effort. Every try makes you stronger."
            y = widgets.paragraph(surface, words, (left_x, y), size_px=menu_size(big), gap_px=big // 6,
                                  width_px=int(w * 0.58), bold=True, colour=colour, anchor="topleft")
        else:
            widgets.text(surface, "Well done!", (left_x, y), size_px=menu_size(huge), bold=True, colour=view.GOOD)
            y += huge + mid // 3
            y = widgets.paragraph(surface, "You stood still to the end.", (left_x, y), size_px=menu_size(big),
                                  gap_px=big // 6, width_px=int(w * 0.58), bold=True, anchor="topleft")
        summary = self.ctx.visit.summary()
        comparison = (summary or {}).get("comparison")
        if comparison:
            hold = comparison["hold_time"]
            text = f"Left leg {int(hold['left_s'])} s  ·  Right leg {int(hold['right_s'])} s"
            widgets.text(surface, text, (left_x, y + mid // 2), size_px=menu_size(mid), colour=view.MUTED, bold=True)
