"""Measure the cluster and its peers, write benchmarks/results/cluster.json and regenerate the docs.

Run from the repository root with the package installed (`make bench` does this):

    python benchmarks/run.py [--seconds 5] [--repetitions 10] [--no-peers]

For 5 sync x 3 store nodes (every durable write fsynced) it measures
committed messages per second and latency with 1, 5 and 50 client
processes, each with window 1 (one message at a time: the sequential
latency) and with window 32 (pipelined); then the failover time after
SIGKILL of the sync leader and of the store primary under load. The same
appends then go to a 3-node PySyncObj cluster and, when an `etcd` binary is
installed, a 3-member etcd cluster, all on 127.0.0.1.

Last, it measures the sequential latency again in --sequential-runs more
runs of 1 client at window 1, taking turns with etcd, so that both see the
same hours of a shared machine. The sequential targets are judged on the
latencies of those runs together.

Before measuring, it waits (bounded by --max-wait) for the 1-minute load
average to fall below --load-threshold and records whether it did. Right
after that wait it measures the floor of the sequential path on this
machine (`latency_budget.py`), which the report prints next to the latency
targets.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cluster_bench
import latency_budget
import machine
import peer_etcd
import peer_pysyncobj
import report

from cluster.launcher import free_ports

ROOT = Path(__file__).resolve().parent.parent
FAILOVER_CLIENTS = 50
FAILOVER_WINDOW = 32
# The peer that takes turns with this cluster in the extra sequential runs.
# PySyncObj waits about 100 ms per append at window 1, so its runs would add nothing.
SEQUENTIAL_PEER = "etcd"


def timed(log: Callable[[str], None], label: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one measurement and add the load average before and after it."""
    before = machine.load_average()
    log(f"{label} ...")
    result = run()
    result["load_before"] = before
    result["load_after"] = machine.load_average()
    return result


def peer_load(name: str, raw: dict[str, Any], clients: int, window: int, size: int) -> dict[str, Any]:
    latencies = raw.pop("latencies_ms")
    return {
        "system": name, "clients": clients, "window": window, "message_bytes": size,
        "messages_per_second": round(raw["count"] / raw["seconds"], 1),
        "latency": cluster_bench.summarize_latency(latencies), **raw, "latencies_ms": latencies,
    }


def sequential_runs(workdir: Path, systems: list[str], args: argparse.Namespace,
                    log: Callable[[str], None]) -> dict[str, Any]:
    """Run 1 client at window 1 on each of `systems` in turn, `args.sequential_runs` times, and pool the latencies."""
    runs: list[dict[str, Any]] = []
    pooled: dict[str, list[float]] = {name: [] for name in systems}
    for repetition in range(1, args.sequential_runs + 1):
        for name in systems:
            label = f"{report.PEER_NAMES[name]}: sequential run {repetition} of {args.sequential_runs}"
            if name == "cluster":
                run = timed(log, label, lambda: cluster_bench.load_run(workdir, 1, 1, args.seconds, args.size,
                                                                       args.seed))
                shutil.rmtree(workdir / "load_c1_w1", ignore_errors=True)
            else:
                run = timed(log, label, lambda n=name: peer_load(n, peer_etcd.load_run(
                    workdir / n, free_ports(6), 1, 1, args.seconds, cluster_bench.WARMUP_SECONDS, args.size),
                    1, 1, args.size))
                shutil.rmtree(workdir / name, ignore_errors=True)
            run["system"] = name
            log(report.describe_load(run))
            pooled[name] += run.pop("latencies_ms")
            runs.append({key: run[key] for key in ("system", "messages_per_second", "latency", "load_before",
                                                   "load_after", "verified") if key in run})
    return {"runs": runs, "pooled": {name: cluster_bench.summarize_latency(values) for name, values in pooled.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per load run (default 5)")
    parser.add_argument("--repetitions", type=int, default=10, help="kills per failover run (default 10)")
    parser.add_argument("--clients", default="1,5,50", help="client counts, comma-separated (default 1,5,50)")
    parser.add_argument("--windows", default="1,32", help="client windows, comma-separated (default 1,32)")
    parser.add_argument("--size", type=int, default=100, help="message size in bytes (default 100)")
    parser.add_argument("--load-threshold", type=float, default=1.5,
                        help="wait for the 1-minute load average to fall below this (default 1.5)")
    parser.add_argument("--max-wait", type=float, default=600.0,
                        help="longest wait for that load average, in seconds (default 600)")
    parser.add_argument("--sequential-runs", type=int, default=3,
                        help="extra sequential runs of each system, taken in turns (default 3; 0 skips them)")
    parser.add_argument("--no-peers", action="store_true", help="measure only this cluster")
    parser.add_argument("--no-failover", action="store_true", help="skip the failover runs")
    parser.add_argument("--seed", type=int, default=1, help="seed of the sync nodes' election timeouts (default 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cluster.json")
    parser.add_argument("--docs", action="store_true", help="regenerate docs/benchmarks.md and the plot (default on "
                        "when --out is the default)")
    parser.add_argument("--report-only", type=Path, metavar="RESULT",
                        help="measure nothing: regenerate the docs and the plot from a result file")
    args = parser.parse_args()
    if args.report_only is not None:
        for path in report.write_docs(json.loads(args.report_only.read_text()), ROOT):
            print(f"wrote {path}")
        return 0
    if not 0 <= args.sequential_runs <= 20:
        parser.error(f"--sequential-runs {args.sequential_runs} is out of range; use 0 to 20")
    client_counts = [int(value) for value in args.clients.split(",")]
    windows = [int(value) for value in args.windows.split(",")]

    def log(text: str) -> None:
        print(text, flush=True)

    result: dict[str, Any] = {
        "benchmark": "committed messages per second, latency and failover, 5 sync x 3 store, fsync on",
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": machine.describe(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {"seconds": args.seconds, "warmup_seconds": cluster_bench.WARMUP_SECONDS,
                     "repetitions": args.repetitions, "message_bytes": args.size, "clients": client_counts,
                     "windows": windows, "failover_clients": FAILOVER_CLIENTS, "failover_window": FAILOVER_WINDOW,
                     "sequential_runs": args.sequential_runs},
    }
    result["quiet"] = machine.wait_quiet(args.load_threshold, args.max_wait, log)
    result["load_before"] = machine.load_average()
    log(f"load average {result['load_before']} (threshold {args.load_threshold}, "
        f"{'reached' if result['quiet']['reached'] else 'NOT reached'})")

    missing = latency_budget.unavailable()
    if missing is None:
        result["latency_budget"] = timed(log, "floor of the sequential path",
                                         lambda: latency_budget.measure(5000, 1000))
        for line in latency_budget.report_lines(result["latency_budget"]):
            log(f"  {line}")
    else:
        log(f"skipping the floor of the sequential path: {missing}")
        result["latency_budget"] = {"skipped": missing}

    workdir = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    try:
        runs: list[dict[str, Any]] = []
        for clients in client_counts:
            for window in windows:
                run = timed(log, f"cluster: {clients} clients, window {window}", lambda c=clients, w=window:
                            cluster_bench.load_run(workdir, c, w, args.seconds, args.size, args.seed))
                run["system"] = "cluster"
                log(report.describe_load(run))
                runs.append(run)
                shutil.rmtree(workdir / f"load_c{clients}_w{window}", ignore_errors=True)

        if not args.no_failover:
            result["failover"] = []
            for target in ("leader", "primary"):
                run = timed(log, f"cluster: {args.repetitions} kills of the {target}", lambda t=target:
                            cluster_bench.failover_run(workdir, t, args.repetitions, FAILOVER_CLIENTS,
                                                       FAILOVER_WINDOW, args.size, args.seed))
                log(report.describe_failover(run))
                result["failover"].append(run)

        result["peers"] = {}
        if not args.no_peers:
            peers: list[tuple[str, Callable[[], str | None], Any, int]] = [
                ("pysyncobj", peer_pysyncobj.available, peer_pysyncobj.load_run, 3),
                ("etcd", peer_etcd.available, peer_etcd.load_run, 6),
            ]
            for name, available, load_run, port_count in peers:
                missing = available()
                if missing is not None:
                    log(f"skipping the {name} peer: {missing}")
                    result["peers"][name] = {"skipped": missing}
                    continue
                result["peers"][name] = {"version": peer_etcd.version() if name == "etcd" else "0.3.17"}
                for clients in client_counts:
                    for window in windows:
                        run = timed(log, f"{name}: {clients} clients, window {window}",
                                    lambda c=clients, w=window, f=load_run, n=name, p=port_count: peer_load(
                                        n, f(workdir / n, free_ports(p), c, w, args.seconds,
                                             cluster_bench.WARMUP_SECONDS, args.size), c, w, args.size))
                        log(report.describe_load(run))
                        runs.append(run)
        result["load"] = runs

        if args.sequential_runs:
            peer = result["peers"].get(SEQUENTIAL_PEER, {"skipped": "peers not measured"})
            systems = ["cluster"] if "skipped" in peer else ["cluster", SEQUENTIAL_PEER]
            result["sequential"] = sequential_runs(workdir, systems, args, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    result["load_after"] = machine.load_average()
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["targets"] = report.targets(result)
    for line in report.target_lines(result["targets"]):
        log(line)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, sort_keys=True, separators=(",", ":")) + "\n")
    log(f"wrote {args.out}")
    if args.docs or args.out == parser.get_default("out"):
        for path in report.write_docs(result, ROOT):
            log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
