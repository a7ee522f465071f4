"""What every benchmark shares: the machine it ran on, how busy it was, memory, a server."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexer.settings import PROJECT_ROOT

REPO = PROJECT_ROOT  # the checkout whose code and seeds the benchmarks use


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def load_average() -> str:
    """The machine is shared: every run says how busy it was."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def rss_mb() -> float:
    """Resident memory of this process (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def dir_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(
    index: Path,
    extra_env: dict | None = None,
    code: Path | None = None,
    args: list[str] = (),
    wait_s: float = 180,
) -> Iterator[str]:
    """The real service in a subprocess on a free loopback port; yields its base URL.

    ``code``: run the service from this checkout instead (for before/after comparisons in
    one run: the packages in the working directory come first on ``sys.path``). ``args``:
    more options of ``serve`` (``--ray local``: starting takes longer, see ``wait_s``)."""
    import httpx

    port = free_port()
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"} | (extra_env or {})
    cmd = [sys.executable, "-m", "qa_service", "serve", "--index", str(index.resolve())]
    # The server logs a line per request: to a file, since an undrained pipe fills up and
    # then blocks the server's event loop in the middle of a run.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port), *args],
            cwd=code or REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )

        def tail() -> str:
            log.seek(0)
            return log.read().decode(errors="replace")[-2000:]

        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + wait_s
            while time.time() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"the server exited: {tail()}")
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
            else:
                raise RuntimeError(f"the server did not become ready in {wait_s:g} s: {tail()}")
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def markdown_table(columns: list[str], rows: list[list], right_from: int = 0) -> str:
    """A Markdown table (what BENCHMARKS.md holds); columns from ``right_from`` on are
    right-aligned numbers."""
    rule = ["---:" if i >= right_from else "---" for i in range(len(columns))]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
