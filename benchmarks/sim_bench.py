"""Measure simulator speed: scheduler steps per second for a 5 sync x 3 store cluster on one core.

A step is one scheduler event (delivery, tick, output completion or fault)
including the invariant check after it. Each repeat runs the same seeds, so
repeats differ only by machine noise. Writes benchmarks/results/sim.json.

    python benchmarks/sim_bench.py [--repeats 5] [--runs 20] [--steps 3000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from cluster.sim.runner import SimConfig
from cluster.sim.scheduler import simulate


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    parser.add_argument("--runs", type=int, default=20, help="seeds per repeat (default 20)")
    parser.add_argument("--steps", type=int, default=3000, help="random steps per run (default 3000)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sim.json"))
    args = parser.parse_args()
    logging.getLogger("cluster.core").setLevel(logging.CRITICAL)

    config = SimConfig(sync=5, store=3, clients=3, messages=20, steps=args.steps)
    rates = []
    for _ in range(args.repeats):
        steps = 0
        started = time.perf_counter()
        for seed in range(args.runs):
            steps += len(simulate(config, seed).events)
        rates.append(steps / (time.perf_counter() - started))
        print(f"{steps} steps, {rates[-1]:.0f} steps/s", flush=True)

    result = {
        "benchmark": "simulator steps per second",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": {**config.to_json(), "runs_per_repeat": args.runs},
        "steps_per_second": {
            "min": round(min(rates)),
            "median": round(statistics.median(rates)),
            "max": round(max(rates)),
        },
        "repeats": args.repeats,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result["steps_per_second"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
