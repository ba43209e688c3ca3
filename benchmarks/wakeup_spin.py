"""Measure what polling instead of sleeping would save on the sequential path.

Run from the repository root with the package installed:

    python benchmarks/wakeup_spin.py [--seconds 5] [--repetitions 3]

On this benchmark's virtual machine a process that sleeps in epoll and is
woken by a frame pays for waking a halted virtual CPU (docs/benchmarks.md).
The Go runtime avoids part of that cost by letting an idle worker thread spin
for a while before it parks. This script tries the same on the cluster:
after each message a node or client handles, its event loop keeps polling
its sockets for a fixed window instead of blocking. Each repetition runs
the same sequential load (1 client, window 1, 100-byte messages) once per
variant, each on a fresh 5 sync x 3 store cluster:

- `off`: the cluster as it runs;
- `spin`: poll for `--window` microseconds after each message, and call
  `sched_yield` between polls so that a woken process gets the core;
- `spin-no-yield`: the same without `sched_yield`.

None of them is a mode of the cluster. The spinning variants fork the
node and client processes from a process in which the message handlers
were wrapped, and they exist only to show what the wake-ups cost. Their
data directories are thrown away.

The p50, p99 and CPU time per message of each run, and the medians over
the repetitions, go to stdout and to `benchmarks/results/wakeup_spin.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cluster_bench
import machine

from cluster.node.client_process import ReplyProtocol
from cluster.node.runtime import NodeRuntime
from cluster.node.sync_process import SyncRuntime
from cluster.wire import Message

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("off", "spin", "spin-no-yield")


class Spinner:
    """A poll window on the running event loop, during which the loop polls its sockets instead of blocking.

    While a callback is pending, the loop polls with a zero timeout, so the
    callback below keeps the loop awake by rescheduling itself until the
    window closes.
    """

    def __init__(self, window_seconds: float, yield_core: bool) -> None:
        self.window_seconds = window_seconds
        self.yield_core = yield_core
        self.until = 0.0
        self.polling = False
        self.polls = 0

    def touch(self) -> None:
        """Open the window, or extend it, from now."""
        self.until = time.monotonic() + self.window_seconds
        if not self.polling:
            self.polling = True
            asyncio.get_running_loop().call_soon(self._poll)

    def _poll(self) -> None:
        if time.monotonic() >= self.until:
            self.polling = False
            return

        self.polls += 1
        if self.yield_core:
            os.sched_yield()
        asyncio.get_running_loop().call_soon(self._poll)


@contextlib.contextmanager
def spinning(spinner: Spinner) -> Iterator[None]:
    """Open the spinner's window on each message a node or client receives, in processes forked meanwhile.

    Ticks do not open it, so an idle cluster does not poll.
    """
    peer_handler: Callable[..., None] = NodeRuntime._handle_peer_message
    client_handler: Callable[..., list[Any]] = SyncRuntime.on_client_message
    data_received: Callable[..., None] = ReplyProtocol.data_received

    def spinning_peer_handler(runtime: NodeRuntime, message: Message) -> None:
        spinner.touch()
        peer_handler(runtime, message)

    def spinning_client_handler(runtime: SyncRuntime, conn: int, message: Message) -> list[Any]:
        spinner.touch()
        return client_handler(runtime, conn, message)

    def spinning_data_received(protocol: ReplyProtocol, data: bytes) -> None:
        spinner.touch()
        data_received(protocol, data)

    NodeRuntime._handle_peer_message = spinning_peer_handler  # type: ignore[method-assign, assignment]
    SyncRuntime.on_client_message = spinning_client_handler  # type: ignore[method-assign, assignment]
    ReplyProtocol.data_received = spinning_data_received  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        NodeRuntime._handle_peer_message = peer_handler  # type: ignore[method-assign]
        SyncRuntime.on_client_message = client_handler  # type: ignore[method-assign]
        ReplyProtocol.data_received = data_received  # type: ignore[method-assign]


def measure(seconds: float, variant: str, window_seconds: float, seed: int) -> dict[str, Any]:
    """Run one sequential load with the given variant and return its latency and CPU summary."""
    hooks: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if variant != "off":
        hooks = spinning(Spinner(window_seconds, yield_core=variant == "spin"))
    with hooks, tempfile.TemporaryDirectory(prefix="wakeup-spin-") as workdir:
        result = cluster_bench.load_run(Path(workdir), 1, 1, seconds, 100, seed)
    return {
        "variant": variant,
        "count": result["latency"]["count"],
        "p50_ms": result["latency"]["p50_ms"],
        "p99_ms": result["latency"]["p99_ms"],
        "cpu_per_message_us": result["cpu_per_message"],
        "spurious_elections": result["spurious_elections"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run (default 5)")
    parser.add_argument("--repetitions", type=int, default=3, help="rounds of the three runs (default 3)")
    parser.add_argument("--window", type=int, default=1000,
                        help="microseconds of polling after each message (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the sync nodes' election timeouts (default 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "wakeup_spin.json",
                        help="result file (default benchmarks/results/wakeup_spin.json)")
    args = parser.parse_args()
    if "fork" not in multiprocessing.get_all_start_methods():
        parser.error("this platform cannot fork, so the node processes would not inherit the wrapped handlers")
    if not 1 <= args.repetitions <= 20:
        parser.error(f"--repetitions {args.repetitions} is out of range; use 1 to 20")
    if not 1 <= args.seconds <= 120:
        parser.error(f"--seconds {args.seconds} is out of range; use 1 to 120")
    if not 10 <= args.window <= 100_000:
        parser.error(f"--window {args.window} is out of range; use 10 to 100000 microseconds")

    load_before = machine.load_average()
    runs = []
    for repetition in range(1, args.repetitions + 1):
        for variant in VARIANTS:
            run = measure(args.seconds, variant, args.window / 1e6, args.seed)
            runs.append(run)
            print(f"repetition {repetition}, {variant:<13}: p50 {run['p50_ms']:.3f} ms, p99 {run['p99_ms']:.3f} ms,"
                  f" nodes {run['cpu_per_message_us']['nodes_us']:.0f} µs and client"
                  f" {run['cpu_per_message_us']['clients_us']:.0f} µs of CPU per message", flush=True)

    medians = {}
    for variant in VARIANTS:
        chosen = [run for run in runs if run["variant"] == variant]
        medians[variant] = {
            "p50_ms": round(statistics.median(run["p50_ms"] for run in chosen), 3),
            "p99_ms": round(statistics.median(run["p99_ms"] for run in chosen), 3),
            "nodes_cpu_us": round(statistics.median(run["cpu_per_message_us"]["nodes_us"] for run in chosen), 1),
            "client_cpu_us": round(statistics.median(run["cpu_per_message_us"]["clients_us"] for run in chosen), 1),
        }
    machine.write_result(args.out, {"window_us": args.window, "runs": runs, "medians": medians}, load_before)
    for variant, values in medians.items():
        print(f"median of {variant:<13}: p50 {values['p50_ms']:.3f} ms, p99 {values['p99_ms']:.3f} ms,"
              f" nodes {values['nodes_cpu_us']:.0f} µs, client {values['client_cpu_us']:.0f} µs")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
