"""The patient screen (pygame). Quiet pygame's banner before any module here imports it."""

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # keep the journal to the station's own lines
