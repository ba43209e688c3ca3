"""Measure how much of the sequential latency each fsync causes, with diagnostic runs that skip them.

Run from the repository root with the package installed:

    python benchmarks/latency_floor.py [--seconds 6] [--repetitions 3]

Each repetition runs the same sequential load (1 client, window 1, 100-byte
messages) four times, each on a fresh 5 sync x 3 store cluster:

- `all`: as usual, every fsync done;
- `no-output`: the fsyncs of `output.txt` skipped;
- `no-logs`: the fsyncs of the store nodes' write-ahead logs skipped;
- `none`: every fsync of the node processes skipped.

Only the first is a mode of the cluster. The others fork the nodes from a
process in which `os.fsync` and `os.fdatasync` were replaced, and they exist only to show what
the network hops, the Python processes and each fsync stage cost. Their
data directories are thrown away, and their runs are never verified as
durable. The replacement learns which file a descriptor belongs to from
`/proc/self/fd`, so the script runs on Linux only.

The p50 and p99 of each run, and the medians over the repetitions, go to
stdout and to `benchmarks/results/latency_floor.json`.
"""

from __future__ import annotations

import argparse
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
PROC_FD = Path("/proc/self/fd")

# The fsyncs each variant skips, by a test on the name of the file written.
VARIANTS: dict[str, Callable[[str], bool] | None] = {
    "all": None,
    "no-output": lambda name: name == "output.txt",
    "no-logs": lambda name: name.startswith("store_") and name.endswith(".wal"),
    "none": lambda name: True,
}


def skipping_fsync(real_fsync: Callable[[Any], None], skip: Callable[[str], bool]) -> Callable[[Any], None]:
    """Return a replacement for `real_fsync` that does nothing for the files `skip` picks by name."""

    def fsync(fd: Any) -> None:
        number = fd if isinstance(fd, int) else fd.fileno()
        if not skip(os.path.basename(os.readlink(PROC_FD / str(number)))):
            real_fsync(fd)

    return fsync


def measure(seconds: float, variant: str, seed: int) -> dict[str, Any]:
    """Run one sequential load and return its latency summary, skipping the fsyncs that `variant` names."""
    real_fsync, real_fdatasync = os.fsync, os.fdatasync
    skip = VARIANTS[variant]
    if skip is not None:
        # The node processes fork from this one and inherit the replacements.
        os.fsync = skipping_fsync(real_fsync, skip)  # type: ignore[assignment]
        os.fdatasync = skipping_fsync(real_fdatasync, skip)  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory(prefix="latency-floor-") as workdir:
            result = cluster_bench.load_run(Path(workdir), 1, 1, seconds, 100, seed)
    finally:
        os.fsync, os.fdatasync = real_fsync, real_fdatasync
    return {
        "variant": variant,
        "count": result["latency"]["count"],
        "p50_ms": result["latency"]["p50_ms"],
        "p99_ms": result["latency"]["p99_ms"],
        "spurious_elections": result["spurious_elections"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per run (default 6)")
    parser.add_argument("--repetitions", type=int, default=3, help="rounds of the four runs (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the sync nodes' election timeouts (default 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latency_floor.json",
                        help="result file (default benchmarks/results/latency_floor.json)")
    args = parser.parse_args()
    if "fork" not in multiprocessing.get_all_start_methods():
        parser.error("this platform cannot fork, so the node processes would not inherit the replaced os.fsync")
    if not PROC_FD.is_dir():
        parser.error(f"{PROC_FD} is missing, so the replaced os.fsync could not tell files apart; run on Linux")
    if not 1 <= args.repetitions <= 20:
        parser.error(f"--repetitions {args.repetitions} is out of range; use 1 to 20")
    if not 1 <= args.seconds <= 120:
        parser.error(f"--seconds {args.seconds} is out of range; use 1 to 120")

    load_before = machine.load_average()
    runs = []
    for repetition in range(1, args.repetitions + 1):
        for variant in VARIANTS:
            run = measure(args.seconds, variant, args.seed)
            runs.append(run)
            print(f"repetition {repetition}, {variant:<9}: p50 {run['p50_ms']:.3f} ms, p99 {run['p99_ms']:.3f} ms,"
                  f" {run['count']} messages", flush=True)

    medians = {}
    for variant in VARIANTS:
        chosen = [run for run in runs if run["variant"] == variant]
        medians[variant] = {
            "p50_ms": round(statistics.median(run["p50_ms"] for run in chosen), 3),
            "p99_ms": round(statistics.median(run["p99_ms"] for run in chosen), 3),
        }
    machine.write_result(args.out, {"runs": runs, "medians": medians}, load_before)
    for variant, values in medians.items():
        print(f"median of {variant:<9}: p50 {values['p50_ms']:.3f} ms, p99 {values['p99_ms']:.3f} ms")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
