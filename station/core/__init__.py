"""The shared vocabulary: plate geometry, the centre of pressure, frames, sides, the recording file,
the settings, JSON clean-up and the user-facing error. It imports nothing else of the project, and
every layer may use it (docs/architecture.md).
"""
