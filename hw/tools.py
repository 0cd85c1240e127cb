"""Running the YoWASP tools: a time limit, the whole output in a log file, progress from marker lines."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque
from importlib.metadata import version
from pathlib import Path

from codegen.errors import BuildError

TAIL_LINES = 3  # how much of a failed tool's log an error quotes


def executable(name: str) -> str:
    """The venv's console script: the tools are Python packages, not necessarily on PATH."""
    return str(Path(sys.executable).parent / name)


def tool_version(package: str) -> str:
    """The package's version, e.g. ``0.70.0.0.post1259``: the tool's release and YoWASP's build."""
    return version(package)


def run(tool: str, args: list[str], log: Path, timeout_s: float, cwd: Path,
        markers: dict[str, str] | None = None, progress=None, what: str = "", log_option: str | None = None) -> float:
    """Run ``tool`` in ``cwd`` writing its output to ``log``; return the seconds taken.

    ``markers`` maps a line prefix to a phase name: ``progress(phase)`` is called
    the first time such a line appears. ``log_option``: the tool writes ``log`` itself,
    given this option and the log's path, and its console output is only scanned (YoWASP's
    Yosys loses its standard output once ABC has run in its process, errors included).
    Raises BuildError, naming ``what`` and quoting the log's last lines, on a non-zero
    exit or after ``timeout_s``.
    """
    start = time.monotonic()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    pending = dict(markers or {})
    if log_option:
        log.unlink(missing_ok=True)  # no earlier run's log can be quoted
        args = [log_option, os.path.relpath(log, cwd), *args]  # YoWASP's tools see only the working directory
    with open(os.devnull if log_option else log, "w") as out:
        proc = subprocess.Popen([executable(tool), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, errors="replace")
        timed_out = threading.Event()
        timer = threading.Timer(timeout_s, lambda: (timed_out.set(), proc.kill()))
        timer.start()
        try:
            for line in proc.stdout:
                out.write(line)
                if line.strip():
                    tail.append(line.strip())
                for prefix in [p for p in pending if line.startswith(p)]:
                    if progress:
                        progress(pending[prefix])
                    del pending[prefix]
            code = proc.wait()
        finally:
            timer.cancel()
    seconds = time.monotonic() - start
    if code != 0 and log_option and log.exists():
        tail.extend(line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip())
    if code != 0:
        cause = f"timed out after {timeout_s:g} s" if timed_out.is_set() else f"failed (exit {code})"
        raise BuildError(f"{what}: {tool} {cause}, log {log}: {' | '.join(tail)}")
    return seconds
