"""Describe the machine a benchmark runs on, and wait for it to be quiet."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def load_average() -> list[float]:
    """Return the 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def describe() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": memory_bytes(),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
    }


def wait_quiet(threshold: float, max_seconds: float, log: Any = print) -> dict[str, Any]:
    """Wait until the 1-minute load average is below `threshold`, for at most `max_seconds`.

    Returns what happened, so the result file records whether the figures were
    taken on a quiet machine.
    """
    started = time.monotonic()
    first = load_average()
    announced = False
    while os.getloadavg()[0] >= threshold and time.monotonic() - started < max_seconds:
        if not announced:
            log(f"waiting up to {max_seconds:.0f} s for the 1-minute load average ({first[0]}) to fall below "
                f"{threshold}")
            announced = True
        time.sleep(5)
    reached = os.getloadavg()[0] < threshold
    return {
        "threshold": threshold,
        "max_seconds": max_seconds,
        "waited_seconds": round(time.monotonic() - started, 1),
        "reached": reached,
        "load_before_wait": first,
        "load_after_wait": load_average(),
    }


def write_result(path: Path, result: dict[str, Any], load_before: list[float]) -> None:
    """Add the load averages, the machine and the command line to `result`, and write it to `path` as JSON."""
    result.update({
        "load_before": load_before,
        "load_after": load_average(),
        "machine": describe(),
        "command": " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
