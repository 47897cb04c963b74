"""The drill engine: pure, deterministic balance drills fed by force frames (issue 5).

Each drill is a state machine (:class:`Drill`) built by :func:`make_drill`,
fed frames with :meth:`Drill.update`, drawn from :meth:`Drill.view` (a
:class:`~station.drills.view.DrillView`) and scored by :meth:`Drill.metrics`.
Time comes only from the frames' ``t_s`` and randomness only from the
injected generator. No pygame here.
"""

from station.drills.base import Drill, DrillEvent
from station.drills.catalogue import DRILLS, drill_class, make_drill
from station.drills.feedback import FEEDBACK_MODES, cursor_visible
from station.drills.programme import Programme, ProgrammeItem
from station.drills.progression import LEVEL_TABLES, MAX_LEVEL, MIN_LEVEL, level_params, next_level
from station.drills.stability import DIRECTIONS, Limits

__all__ = [
    "DIRECTIONS", "DRILLS", "Drill", "DrillEvent", "FEEDBACK_MODES", "LEVEL_TABLES", "Limits", "MAX_LEVEL",
    "MIN_LEVEL", "Programme", "ProgrammeItem", "cursor_visible", "drill_class", "level_params", "make_drill",
    "next_level",
]
