"""The HTTP API: one router per concern, their dependencies in ``deps``."""
