"""The machine's processes as /proc lists them: who started whom, and which session each
belongs to. What the service started on Ray (``serve_ray``) and what the test cluster
started (``tests/helpers/ray_cluster``) are found here, so that exactly those are stopped."""

from __future__ import annotations

import os
from pathlib import Path


def process_table() -> dict[int, tuple[int, int]]:
    """Every process: pid -> (parent pid, session id), from /proc/PID/stat."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        after_name = stat.rsplit(")", 1)[1].split()  # state, ppid, pgrp, session, ...
        table[int(entry)] = (int(after_name[1]), int(after_name[3]))
    return table


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for child, (parent, _) in process_table().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def session_pids(sid: int) -> list[int]:
    """The processes of session ``sid``."""
    return [pid for pid, (_, session) in process_table().items() if session == sid]
