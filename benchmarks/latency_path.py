"""Split the sequential latency of a local cluster into the steps of the write path.

Run from the repository root with the package installed:

    python benchmarks/latency_path.py [--messages 500]

It starts 5 sync and 3 store nodes with message tracing on, so every peer
message gets a `send` and a `recv` event. One client sends the messages at
window 1. For each acknowledged message, the script finds the steps between
the client's `sent` line and its `acked` line. The primary receives `Write`,
a backup receives `Replicate`, and the primary receives the last
`ReplicateReply`. Then the leader receives `WriteAck` and logs its `commit`
event, once the entries are in `output.txt`. Each step's median and 90th percentile go to stdout and to
`benchmarks/results/latency_path.json`.

It also reports how many of the slowest 3% of the messages, and of those
from p25 to p50, overlap a heartbeat round, during which seven nodes wake
up to answer the leader.

Writing the trace events costs a few tens of microseconds per message on
each node, so the steps add up to more than the untraced latency of
`benchmarks/run.py`; the split between them is what this script is for.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cluster_bench
import machine

from cluster.files import client_log_path, events_path, read_events
from cluster.launcher import LocalCluster, RunOptions, find_leader, find_primary, prepare_data_dir
from cluster.run import wait_settled

ROOT = Path(__file__).resolve().parent.parent

# Each step ends when a node logs that it received a message, or for the output
# its commit event. A receive is logged right after the frame is read. A send
# event can lag, because the receiver woken by the frame may take the core
# before the sender writes its event.
STEPS = (
    "leader orders the message, Write reaches the primary",
    "primary forwards it, Replicate reaches the first backup",
    "backups write their logs, the last ReplicateReply reaches the primary",
    "primary commits, WriteAck reaches the leader",
    "leader appends to output.txt (commit event)",
    "reply reaches the client",
)


@dataclass(frozen=True, slots=True)
class Record:
    time: float
    node: str
    event: str
    kind: str


def read_records(data_dir: Path, sync: int, store: int) -> list[Record]:
    """Return the trace and commit events of every node, in time order."""
    records: list[Record] = []
    for role, count in (("sync", sync), ("store", store)):
        for node in range(1, count + 1):
            for event in read_events(events_path(data_dir, role, node)):
                if event["event"] in ("send", "recv", "commit"):
                    records.append(Record(event["time"], f"{role} {node}", event["event"], event.get("type", "")))
    return sorted(records, key=lambda record: record.time)


def client_times(data_dir: Path) -> list[tuple[float, float]]:
    """Return (sent, acked) for each message of client 1 that was acknowledged."""
    sent: dict[int, float] = {}
    pairs: list[tuple[float, float]] = []
    for event in read_events(client_log_path(data_dir, 1)):
        if event["event"] == "sent":
            sent[event["request_id"]] = event["time"]
        elif event["event"] == "acked" and event["request_id"] in sent:
            pairs.append((sent[event["request_id"]], event["time"]))
    return pairs


def split_message(records: list[Record], sent: float, acked: float, leader: str, primary: str) -> list[float] | None:
    """Return the duration of each step in milliseconds for one message, or None when a step is missing."""
    window = [record for record in records if sent <= record.time <= acked]

    def received(nodes: set[str], event: str, kind: str, after: float, last: bool = False) -> float | None:
        times = [record.time for record in window
                 if record.node in nodes and record.event == event and record.kind == kind and record.time >= after]
        if not times:
            return None
        return max(times) if last else min(times)

    backups = {record.node for record in window if record.node.startswith("store") and record.node != primary}
    points: list[float] = [sent]
    for nodes, event, kind, last in (
        ({primary}, "recv", "Write", False),
        (backups, "recv", "Replicate", False),
        ({primary}, "recv", "ReplicateReply", True),
        ({leader}, "recv", "WriteAck", False),
        ({leader}, "commit", "", False),
    ):
        point = received(nodes, event, kind, points[-1], last)
        if point is None:
            return None
        points.append(point)
    points.append(acked)
    return [(later - earlier) * 1000 for earlier, later in itertools.pairwise(points)]


HEARTBEAT_TYPES = frozenset({"Heartbeat", "HeartbeatReply", "StorePing", "StoreStatus"})


def heartbeat_share(records: list[Record], messages: list[tuple[float, float]]) -> float:
    """Return the fraction of `messages` (sent, acked) during which some node sent or received a heartbeat message.

    The leader's heartbeat round sends a `Heartbeat` to each follower and a
    `StorePing` to each store node, and every one of them wakes up to reply.
    """
    times = sorted(record.time for record in records if record.kind in HEARTBEAT_TYPES)
    overlapping = 0
    for sent, acked in messages:
        index = bisect.bisect_left(times, sent)
        if index < len(times) and times[index] <= acked:
            overlapping += 1
    return overlapping / max(len(messages), 1)


def measure(messages: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="latency-path-") as workdir:
        data_dir = Path(workdir)
        options = RunOptions(sync=5, store=3, clients=1, data_dir=data_dir, seed=seed, fresh=True, window=1,
                             trace_messages=True)
        prepare_data_dir(options)
        local = LocalCluster(options)
        local.write_layout()
        for role, count in (("sync", 5), ("store", 3)):
            for node in range(1, count + 1):
                local.start(role, node)
        try:
            if not local.wait_ready(cluster_bench.READY_SECONDS):
                raise RuntimeError(f"no leader with a ready store within {cluster_bench.READY_SECONDS} s")
            statuses = local.statuses()
            leader, primary = find_leader(statuses), find_primary(statuses)
            if leader is None or primary is None:
                raise RuntimeError("no leader or no primary after the cluster became ready")
            local.start("client", 1, cluster_bench.client_texts(1, messages, 100))
            for process in local.client_processes():
                process.join(60 + messages / 100)
            wait_settled(local)
        finally:
            local.stop_nodes()
        time.sleep(0.1)
        records = read_records(data_dir, 5, 3)
        pairs = client_times(data_dir)
        leader_name, primary_name = f"sync {leader.node}", f"store {primary.node}"

    # The first messages pay for connection set-up and warm caches; skip a tenth of them.
    measured = pairs[len(pairs) // 10:]
    splits = [split_message(records, sent, acked, leader_name, primary_name) for sent, acked in measured]
    complete = [split for split in splits if split is not None]
    steps = []
    for index, name in enumerate(STEPS):
        values = [split[index] for split in complete]
        steps.append({"step": name, "p50_ms": round(cluster_bench.percentile(values, 0.5), 3),
                      "p90_ms": round(cluster_bench.percentile(values, 0.9), 3)})
    totals = [(acked - sent) * 1000 for sent, acked in measured]
    by_latency = sorted(measured, key=lambda pair: pair[1] - pair[0])
    slowest = by_latency[len(by_latency) * 97 // 100:]
    middle = by_latency[len(by_latency) // 4 : len(by_latency) // 2]
    return {
        "messages": messages, "measured": len(measured), "split": len(complete),
        "total_p50_ms": round(cluster_bench.percentile(totals, 0.5), 3), "steps": steps,
        "heartbeat_share": {"slowest_3_percent": round(heartbeat_share(records, slowest), 3),
                            "p25_to_p50": round(heartbeat_share(records, middle), 3)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500, help="messages to send (default 500)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the sync nodes' election timeouts (default 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latency_path.json",
                        help="result file (default benchmarks/results/latency_path.json)")
    args = parser.parse_args()
    if args.messages < 20:
        parser.error(f"--messages {args.messages} is too few to split; use 20 or more")

    load_before = machine.load_average()
    result = measure(args.messages, args.seed)
    machine.write_result(args.out, result, load_before)

    print(f"{result['measured']} messages measured (the first tenth of {result['messages']} skipped as warm-up),"
          f" {result['split']} with every step found in the trace; traced latency p50 {result['total_p50_ms']} ms")
    print(f"{'p50 ms':>8} {'p90 ms':>8}  step")
    for step in result["steps"]:
        print(f"{step['p50_ms']:8.3f} {step['p90_ms']:8.3f}  {step['step']}")
    share = result["heartbeat_share"]
    print(f"messages that overlap a heartbeat round: {share['slowest_3_percent']:.0%} of the slowest 3%,"
          f" {share['p25_to_p50']:.0%} of those from p25 to p50")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
