"""Measure how much of the sequential latency the fsyncs cause, with a diagnostic run that skips them.

Run from the repository root with the package installed:

    python benchmarks/latency_floor.py [--seconds 6] [--repetitions 3]

Each repetition runs two sequential loads (1 client, window 1, 100-byte
messages) on a fresh 5 sync x 3 store cluster, one after the other: a normal
one, and one in which every fsync of the node processes does nothing. The
second is not a mode of the cluster. It forks the nodes from a process in
which `os.fsync` was replaced, and it exists only to show what the network
hops and the Python processes cost without the disk. Its data directories
are thrown away, and its runs are never verified as durable.

The p50 and p99 of each run, and the medians over the repetitions, go to
stdout and to `benchmarks/results/latency_floor.json`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cluster_bench
import machine

ROOT = Path(__file__).resolve().parent.parent


def _skip_fsync(fd: int) -> None:
    """Replace os.fsync in the diagnostic run, and return without flushing anything."""
    return None


def measure(seconds: float, skip_fsync: bool, seed: int) -> dict[str, Any]:
    """Run one sequential load and return its latency summary. With `skip_fsync` set, no node fsyncs."""
    real_fsync: Callable[[int], None] = os.fsync
    if skip_fsync:
        os.fsync = _skip_fsync  # the node processes fork from this one and inherit it
    try:
        with tempfile.TemporaryDirectory(prefix="latency-floor-") as workdir:
            result = cluster_bench.load_run(Path(workdir), 1, 1, seconds, 100, seed)
    finally:
        os.fsync = real_fsync
    return {
        "fsync": not skip_fsync,
        "count": result["latency"]["count"],
        "p50_ms": result["latency"]["p50_ms"],
        "p99_ms": result["latency"]["p99_ms"],
        "spurious_elections": result["spurious_elections"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per run (default 6)")
    parser.add_argument("--repetitions", type=int, default=3, help="pairs of runs (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the sync nodes' election timeouts (default 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latency_floor.json",
                        help="result file (default benchmarks/results/latency_floor.json)")
    args = parser.parse_args()
    if "fork" not in multiprocessing.get_all_start_methods():
        parser.error("this platform cannot fork, so the node processes would not inherit the replaced os.fsync")
    if not 1 <= args.repetitions <= 20:
        parser.error(f"--repetitions {args.repetitions} is out of range; use 1 to 20")
    if not 1 <= args.seconds <= 120:
        parser.error(f"--seconds {args.seconds} is out of range; use 1 to 120")

    load_before = machine.load_average()
    runs = []
    for repetition in range(1, args.repetitions + 1):
        for skip_fsync in (False, True):
            run = measure(args.seconds, skip_fsync, args.seed)
            runs.append(run)
            label = "fsync on " if run["fsync"] else "fsync off"
            print(f"repetition {repetition}, {label}: p50 {run['p50_ms']:.3f} ms, p99 {run['p99_ms']:.3f} ms,"
                  f" {run['count']} messages", flush=True)

    medians = {}
    for fsync in (True, False):
        chosen = [run for run in runs if run["fsync"] is fsync]
        medians["fsync_on" if fsync else "fsync_off"] = {
            "p50_ms": round(statistics.median(run["p50_ms"] for run in chosen), 3),
            "p99_ms": round(statistics.median(run["p99_ms"] for run in chosen), 3),
        }
    result = {
        "runs": runs,
        "medians": medians,
        "load_before": load_before,
        "load_after": machine.load_average(),
        "machine": machine.describe(),
        "command": "python benchmarks/latency_floor.py " + " ".join(sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, values in medians.items():
        print(f"median of {name.replace('_', ' ')}: p50 {values['p50_ms']:.3f} ms, p99 {values['p99_ms']:.3f} ms")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
