"""Load and failover measurements of a local cluster: real node processes on loopback.

Every figure comes from the client logs (`client_<id>.jsonl`): each client
writes a `sent` line when it first sends a message and an `acked` line when
the acknowledgement arrives, both stamped with `time.time()` in the client
process. Latency is acked minus sent for one request id, so it includes any
resends. The benchmark process stamps kills with the same clock.
"""

from __future__ import annotations

import math
import os
import signal
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.files import backup_path, client_log_path, events_path, read_events
from cluster.launcher import LocalCluster, RunOptions, find_leader, find_primary, prepare_data_dir
from cluster.run import wait_settled
from cluster.verify import verify

READY_SECONDS = 30.0
# Acknowledgements in the first second after the last client started are not
# counted, so process start-up does not lower the rate.
WARMUP_SECONDS = 1.0
# An upper bound on the cluster's rate, used only to size each client's queue
# so that no client runs out of messages before the measurement ends.
MAX_EXPECTED_RATE = 40_000
RECOVERY_SECONDS = 10.0
# Longest wait, before each kill, for every store node to be a caught-up member again.
STORE_HEALTHY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Sample:
    """One acknowledged message as the client saw it."""

    client: int
    request_id: int
    sent: float
    acked: float
    seq: int
    term: int


def message_text(client: int, index: int, size: int) -> str:
    """Return a message of exactly `size` ASCII bytes that names its client and index."""
    head = f"c{client:03d} m{index:08d} "
    return (head + "x" * size)[:size]


def client_texts(client: int, count: int, size: int) -> tuple[str, ...]:
    return tuple(message_text(client, index, size) for index in range(1, count + 1))


def read_samples(data_dir: Path, clients: int) -> tuple[list[Sample], int]:
    """Return every acknowledged message of the client logs, and how many were sent."""
    samples: list[Sample] = []
    sent_total = 0
    for client in range(1, clients + 1):
        sent: dict[int, float] = {}
        for record in read_events(client_log_path(data_dir, client)):
            event = record.get("event")
            if event == "sent":
                sent[int(record["request_id"])] = float(record["time"])
            elif event == "acked":
                request_id = int(record["request_id"])
                if request_id in sent:
                    samples.append(Sample(client, request_id, sent[request_id], float(record["time"]),
                                          int(record["seq"]), int(record["term"])))
        sent_total += len(sent)
    samples.sort(key=lambda sample: sample.acked)
    return samples, sent_total


def sync_events(data_dir: Path, sync: int, names: frozenset[str]) -> list[tuple[float, str, dict[str, Any]]]:
    """Return (time, event, record) of the sync nodes' events named in `names`, in time order."""
    found: list[tuple[float, str, dict[str, Any]]] = []
    for node in range(1, sync + 1):
        for record in read_events(events_path(data_dir, "sync", node)):
            if record.get("event") in names:
                found.append((float(record["time"]), record["event"], record))
    found.sort(key=lambda item: item[0])
    return found


def elections(data_dir: Path, sync: int) -> list[tuple[float, int]]:
    """Return (time, term) of every `became_leader` event in the sync event logs, in time order."""
    found = sync_events(data_dir, sync, frozenset({"became_leader"}))
    return [(at, int(record["term"])) for at, _name, record in found]


def sync_commits(data_dir: Path, sync: int) -> list[tuple[float, int, int]]:
    """Return (time, node, term) of every `commit` event (entries appended to output.txt) of the sync nodes."""
    return [(at, int(record["node"]), int(record["term"]))
            for at, _name, record in sync_events(data_dir, sync, frozenset({"commit"}))]


# The sync events that mark the steps of a failover, in the order they happen.
FAILOVER_STEPS = {
    "primary": ("store_failed", "epoch_installing", "epoch_ready"),
    "leader": ("became_leader", "epoch_installing", "epoch_ready"),
}


def failover_steps(
    events: list[tuple[float, str, dict[str, Any]]], target: str, kill: dict[str, Any],
) -> dict[str, float]:
    """Return the milliseconds from a kill to each step of its failover that the sync events show.

    Each step is the first event of its name after the previous step, and
    for a leader kill the election must be of a later term than the killed
    leader's. A step that never happened is left out, and so are the later ones.
    """
    steps: dict[str, float] = {}
    since = kill["time"]
    for name in FAILOVER_STEPS[target]:
        found = next(
            (at for at, event, record in events
             if event == name and at >= since and (name != "became_leader" or record["term"] > kill["term"])),
            None,
        )
        if found is None:
            break
        steps[f"{name}_ms"] = round((found - kill["time"]) * 1000, 1)
        since = found
    return steps


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of `values` (not interpolated)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarize_latency(latencies_ms: list[float]) -> dict[str, float | int]:
    if not latencies_ms:
        return {"count": 0}
    return {
        "count": len(latencies_ms),
        "p50_ms": round(percentile(latencies_ms, 0.50), 3),
        "p99_ms": round(percentile(latencies_ms, 0.99), 3),
        "max_ms": round(max(latencies_ms), 3),
        "mean_ms": round(statistics.fmean(latencies_ms), 3),
    }


class BenchCluster:
    """A 5 sync x 3 store cluster (by default) in a fresh data directory, started and ready."""

    def __init__(self, data_dir: Path, clients: int, window: int, seed: int, sync: int = 5, store: int = 3) -> None:
        self.options = RunOptions(sync=sync, store=store, clients=clients, data_dir=data_dir, seed=seed,
                                  fresh=True, window=window)
        prepare_data_dir(self.options)
        self.local = LocalCluster(self.options)
        self.local.write_layout()
        for node in range(1, sync + 1):
            self.local.start("sync", node)
        for node in range(1, store + 1):
            self.local.start("store", node)
        if not self.local.wait_ready(READY_SECONDS):
            self.local.stop_nodes()
            raise RuntimeError(f"no leader with a ready store within {READY_SECONDS} s; see {data_dir}/logs")

    def start_clients(self, count: int, size: int) -> float:
        """Start `count` client processes, each with enough messages; return when the last started."""
        for client in range(1, self.options.clients + 1):
            self.local.start("client", client, client_texts(client, count, size))
        return time.time()

    def stop_clients(self) -> None:
        for process in self.local.client_processes():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self.local.client_processes():
            process.join(10)
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGKILL)
                process.join()

    def finish(self) -> dict[str, Any]:
        """Stop the clients, let the store settle, stop the nodes and verify the data directory."""
        self.stop_clients()
        settled = wait_settled(self.local).settled
        exited = self.local.unexpected_exits()
        self.local.stop_nodes()
        report = verify(self.options.data_dir)
        failed = [check.name for check in report.checks if not check.passed]
        if not settled:
            failed.append("settled")
        # A node that stopped by itself is a crash the verification cannot see. Unlike
        # `cluster run`, a stop from outside fails too: nothing else should touch a measurement.
        failed += [f"{role} {node} exited with code {code}" for role, node, code in exited]
        return {
            "verified": not failed,
            "failed_checks": failed,
            "output_entries": report.output_entries,
        }


def cpu_seconds(pid: int | None) -> float:
    """Return the user plus system CPU time of process `pid` so far, or 0.0 when it is gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # Fields 14 and 15 of proc(5) (utime, stime), counted after the ")" that ends the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(cluster: BenchCluster) -> dict[tuple[str, int], float]:
    return {key: cpu_seconds(process.pid) for key, process in cluster.local.processes.items()}


def cpu_per_message(
    cluster: BenchCluster, before: dict[tuple[str, int], float], after: dict[tuple[str, int], float], messages: int,
) -> dict[str, float]:
    """Return the CPU microseconds per acknowledged message of the leader, the primary, all nodes and all clients."""
    statuses = cluster.local.statuses()
    leader, primary = find_leader(statuses), find_primary(statuses)
    used = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in before}

    def per_message(seconds: float) -> float:
        return round(seconds * 1e6 / max(messages, 1), 1)

    result = {
        "nodes_us": per_message(sum(value for (role, _node), value in used.items() if role != "client")),
        "clients_us": per_message(sum(value for (role, _node), value in used.items() if role == "client")),
    }
    if leader is not None:
        result["leader_us"] = per_message(used.get(("sync", leader.node), 0.0))
    if primary is not None:
        result["primary_us"] = per_message(used.get(("store", primary.node), 0.0))
    return result


def messages_per_client(clients: int, window: int, seconds: float) -> int:
    return math.ceil(MAX_EXPECTED_RATE * (seconds + WARMUP_SECONDS + 2) / clients) + window


def load_run(workdir: Path, clients: int, window: int, seconds: float, size: int, seed: int) -> dict[str, Any]:
    """Run `clients` client processes with `window` messages in flight each for `seconds`, and measure."""
    data_dir = workdir / f"load_c{clients}_w{window}"
    cluster = BenchCluster(data_dir, clients, window, seed)
    try:
        started = cluster.start_clients(messages_per_client(clients, window, seconds), size)
        time.sleep(WARMUP_SECONDS)
        cpu_before = cpu_snapshot(cluster)
        time.sleep(seconds)
        cpu_after = cpu_snapshot(cluster)
        stopped = time.time()
        cpu = cpu_per_message(cluster, cpu_before, cpu_after, 1)
        cluster.stop_clients()
    except BaseException:
        cluster.local.stop_nodes()
        raise
    outcome = cluster.finish()

    samples, sent = read_samples(data_dir, clients)
    begin = started + WARMUP_SECONDS
    in_window = [sample for sample in samples if begin <= sample.acked <= stopped]
    cpu = {name: round(value / max(len(in_window), 1), 1) for name, value in cpu.items()}
    latencies = [(sample.acked - sample.sent) * 1000 for sample in samples if begin <= sample.sent <= stopped]
    terms = elections(data_dir, 5)
    return {
        "clients": clients,
        "window": window,
        "message_bytes": size,
        "measured_seconds": round(stopped - begin, 3),
        "acknowledged_in_window": len(in_window),
        "messages_per_second": round(len(in_window) / (stopped - begin), 1),
        "latency": summarize_latency(latencies),
        "cpu_per_message": cpu,
        "sent": sent,
        "acknowledged": len(samples),
        "elections": len(terms),
        "spurious_elections": max(0, len(terms) - 1),
        **outcome,
        "latencies_ms": [round(value, 3) for value in latencies],
    }


def _wait_progress(cluster: BenchCluster, since: int, timeout: float) -> bool:
    """Wait until the clients' acknowledgement count exceeds `since` by one window's worth."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.local.acknowledged() > since + cluster.options.window:
            return True
        time.sleep(0.01)
    return False


def _wait_store_members(cluster: BenchCluster, timeout: float) -> float | None:
    """Wait until every store node is a primary or backup of one epoch and holds what the primary had committed.

    A store node restarted after a kill first catches up from the primary and
    rejoins; killing the primary before then would measure the catch-up, not
    the failover. Returns the seconds waited, or None on timeout.
    """
    started = time.monotonic()
    committed = -1
    while time.monotonic() - started < timeout:
        replies = [status.reply for status in cluster.local.statuses() if status.role == "store"]
        members = [reply for reply in replies if reply is not None and reply.role in ("primary", "backup")]
        primary = next((reply for reply in members if reply.role == "primary"), None)
        if (primary is not None and len(members) == cluster.options.store
                and all(reply.epoch == primary.epoch and reply.log_len >= committed for reply in members)
                and committed >= 0):
            return round(time.monotonic() - started, 2)
        committed = primary.commit if primary is not None else -1
        time.sleep(0.05)
    return None


def failover_run(
    workdir: Path, target: str, repetitions: int, clients: int, window: int, size: int, seed: int,
    steady_seconds: float = 1.5,
) -> dict[str, Any]:
    """Kill the sync leader or the store primary (`target`) under load `repetitions` times.

    The failover time of one kill runs from the SIGKILL to the first
    acknowledgement a client receives after the cluster committed without
    the killed node. For the leader, that is the first acknowledgement
    received after a leader of a later term appended to output.txt (its
    replies leave in the same round). For the primary, it is the first
    acknowledgement of an entry past the killed primary's committed prefix.
    Each kill also lists, under `steps`, when the sync events show the
    failure noticed (or the new leader elected), the epoch installing and
    the epoch ready.
    """
    data_dir = workdir / f"failover_{target}"
    cluster = BenchCluster(data_dir, clients, window, seed)
    kills: list[dict[str, Any]] = []
    try:
        cluster.start_clients(messages_per_client(clients, window, repetitions * (steady_seconds + 3) + 10), size)
        _wait_progress(cluster, 0, RECOVERY_SECONDS)
        for _repetition in range(repetitions):
            time.sleep(steady_seconds)
            healthy_after = _wait_store_members(cluster, STORE_HEALTHY_SECONDS)
            statuses = cluster.local.statuses()
            victim = find_leader(statuses) if target == "leader" else find_primary(statuses)
            if victim is None or victim.reply is None:
                kills.append({"skipped": f"no {target} found"})
                continue
            count = cluster.local.acknowledged()
            killed_at = time.time()
            cluster.local.kill(victim.role, victim.node)
            kill = {"time": killed_at, "node": victim.node, "term": victim.reply.term, "epoch": victim.reply.epoch,
                    "store_healthy_after_s": healthy_after}
            if target == "primary":
                kill["committed"] = sum(1 for _line in backup_path(data_dir, victim.node).open("rb"))
            kill["recovered"] = _wait_progress(cluster, count, RECOVERY_SECONDS)
            kills.append(kill)
            cluster.local.start(victim.role, victim.node)
        time.sleep(steady_seconds)  # the last kill's acknowledgements reach the client logs too
        cluster.stop_clients()
    except BaseException:
        cluster.local.stop_nodes()
        raise
    outcome = cluster.finish()

    samples, sent = read_samples(data_dir, clients)
    commits = sync_commits(data_dir, 5)
    times_ms: list[float] = []
    for kill in kills:
        if "time" not in kill:
            continue
        if target == "leader":
            # The first entry a later leader appended to output.txt; its replies leave in the same round.
            first = min((at for at, _node, term in commits if term > kill["term"] and at >= kill["time"]),
                        default=None)
            after = [s for s in samples if first is not None and s.acked >= first]
        else:
            after = [s for s in samples if s.acked >= kill["time"] and s.seq > kill["committed"]]
        if after:
            kill["failover_ms"] = round((after[0].acked - kill["time"]) * 1000, 1)
            # A kill made before the store was whole again measures the catch-up of
            # a restarted node too, so it is kept in the kills but not in the spread.
            if kill.get("store_healthy_after_s") is not None:
                times_ms.append(kill["failover_ms"])
    step_events = sync_events(data_dir, 5, frozenset(FAILOVER_STEPS[target]))
    for killed in kills:
        if "time" in killed:
            killed["steps"] = failover_steps(step_events, target, killed)
    terms = elections(data_dir, 5)
    leader_kills = sum(1 for kill in kills if "time" in kill) if target == "leader" else 0
    return {
        "target": target,
        "clients": clients,
        "window": window,
        "message_bytes": size,
        "repetitions": repetitions,
        "kills": kills,
        "failover_ms": _spread(times_ms),
        "samples_ms": times_ms,
        "kills_before_store_healthy": sum(1 for kill in kills if "time" in kill
                                          and kill.get("store_healthy_after_s") is None),
        "elections": len(terms),
        "spurious_elections": max(0, len(terms) - 1 - leader_kills),
        "sent": sent,
        "acknowledged": len(samples),
        **outcome,
    }


def _spread(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    return {"count": len(values), "min": min(values), "median": round(statistics.median(values), 1),
            "max": max(values)}
