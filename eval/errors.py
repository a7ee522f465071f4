"""The errors of the evaluation inputs: messages a user can act on (which file, which line)."""

from __future__ import annotations


class DatasetError(Exception):
    """A gold set (or run/qrels file) is missing or malformed; the message says how."""


class RunFileError(DatasetError):
    """A run or qrels file is malformed; the message names the file and line."""
