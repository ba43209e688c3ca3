"""Orchestrate one local run: start, send, optionally break, settle, stop, verify."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import TextIO

from cluster.files import DataFileError, events_path, read_events
from cluster.i18n import _, format_message, ngettext
from cluster.launcher import (
    LocalCluster,
    RunOptions,
    RunSummary,
    client_rate,
    find_leader,
    find_primary,
    load_texts,
)
from cluster.status import NodeStatus
from cluster.verify import unreadable_report, verify

PROGRESS_SECONDS = 0.5
# Without a terminal, progress is printed as whole lines, less often.
PLAIN_PROGRESS_SECONDS = 2.0
# How long a killed node stays down before it restarts, in seconds.
RESTART_DELAY = (0.2, 0.8)
# How long a paused leader stays stopped, in seconds: longer than the largest
# election timeout (60 ticks of 10 ms), so the others elect a new leader.
PAUSE_SECONDS = (0.8, 1.5)
READY_SECONDS = 30.0
# A run that makes no progress for this long is stopped and reported.
STALL_SECONDS = 60.0
# How long the chaos loop waits for each node's status when it looks for its
# target. A paused node never replies, and with the status command's 1 s the
# loop would strike late and leave a paused node stopped for too long.
CHAOS_STATUS_SECONDS = 0.2
# How long to wait, after the clients finish, for every store member to commit the last entry.
SETTLE_SECONDS = 15.0


@dataclass(slots=True)
class ChaosPlan:
    """When to kill the leader and the primary, and pause the leader, as fractions of the messages acknowledged."""

    kills: list[tuple[float, str]]  # (fraction, "leader" | "primary" | "pause"), sorted
    restart_delay: float
    pause_seconds: float = 0.0

    @classmethod
    def from_seed(cls, seed: int) -> ChaosPlan:
        rng = random.Random(seed)
        kills = [(rng.uniform(0.1, 0.4), "leader"), (rng.uniform(0.45, 0.75), "primary")]
        if rng.random() < 0.5:
            kills.append((rng.uniform(0.8, 0.9), rng.choice(["leader", "primary"])))
        restart_delay = rng.uniform(*RESTART_DELAY)
        # Drawn after the kills, so a seed kills at the same points as before pauses existed.
        kills.append((rng.uniform(0.2, 0.7), "pause"))
        return cls(sorted(kills), restart_delay, rng.uniform(*PAUSE_SECONDS))


def run_cluster(options: RunOptions, out: TextIO) -> RunSummary:
    """Run the cluster described by `options`, printing progress to `out`."""
    texts = load_texts(options)
    rate = client_rate(options, texts)
    total = sum(len(client_texts) for client_texts in texts)
    cluster = LocalCluster(options)
    cluster.write_layout()
    plan = ChaosPlan.from_seed(cluster.seed) if options.chaos else None
    interactive = out.isatty()
    kills: list[str] = []
    restarts: list[tuple[float, str, int]] = []
    resumes: list[tuple[float, str, int]] = []
    exited: list[tuple[str, int, int | None]] = []

    try:
        for node in range(1, options.sync + 1):
            cluster.start("sync", node)
        for node in range(1, options.store + 1):
            cluster.start("store", node)
        # Clients start once the cluster can take writes, so the throughput
        # measures the write path, not the start of the node processes.
        if not cluster.wait_ready(READY_SECONDS):
            out.write(_("no leader with a ready store after {seconds:.0f} s; starting the clients anyway").format(
                seconds=READY_SECONDS) + "\n")
        started = time.monotonic()
        for client, client_texts in enumerate(texts, start=1):
            cluster.start("client", client, tuple(client_texts), rate)

        last_print = 0.0
        last_count = -1
        last_change = started
        while any(process.is_alive() for process in cluster.client_processes()):
            time.sleep(0.05)
            now = time.monotonic()
            count = cluster.acknowledged()
            if count != last_count:
                last_count, last_change = count, now
            if now - last_change > STALL_SECONDS:
                stalled = _("no message acknowledged for {seconds:.0f} s; stopping").format(seconds=STALL_SECONDS)
                out.write(("\n" if interactive else "") + stalled + "\n")
                break
            if plan is not None:
                _run_chaos(cluster, plan, count, total, kills, restarts, resumes, out)
            for due, role, node in [item for item in resumes if item[0] <= now]:
                resumes.remove((due, role, node))
                cluster.resume(role, node)
            for due, role, node in [item for item in restarts if item[0] <= now]:
                restarts.remove((due, role, node))
                cluster.start(role, node)
            if now - last_print >= (PROGRESS_SECONDS if interactive else PLAIN_PROGRESS_SECONDS):
                last_print = now
                rate = count / max(now - started, 1e-9)
                line = _("acknowledged {count}/{total} messages, {rate:.0f} messages/s").format(
                    count=count, total=total, rate=rate)
                out.write("\r" + line + "   " if interactive else line + "\n")
                out.flush()
        elapsed = time.monotonic() - started
        for _due, role, node in resumes:
            cluster.resume(role, node)
        for _due, role, node in restarts:
            cluster.start(role, node)
        line = _("acknowledged {count}/{total} messages, {rate:.0f} messages/s").format(
            count=cluster.acknowledged(), total=total, rate=cluster.acknowledged() / max(elapsed, 1e-9))
        out.write(("\r" + line + "   \n") if interactive else line + "\n")

        settled = wait_settled(cluster)
        clients_finished = all(process.exitcode == 0 for process in cluster.client_processes())
    finally:
        exited = cluster.unexpected_exits()
        paused = cluster.paused_outside()
        lock_holder = cluster.paused_lock_holder(paused)
        cluster.stop_nodes()

    try:
        report = verify(options.data_dir)
    except DataFileError as error:
        # A node that crashed on a damaged file left it damaged, and the summary should still name that node.
        report = unreadable_report(error)
    elections, epochs = _count_failovers(options)
    return RunSummary(
        report=report, committed=report.output_entries, seconds=elapsed, leader=settled.leader,
        primary=settled.primary, kills=kills, elections=elections, epochs=epochs, exited=exited,
        paused_outside=paused, paused_lock_holder=lock_holder, clients_finished=clients_finished,
        settled=settled.settled,
    )


def _run_chaos(
    cluster: LocalCluster, plan: ChaosPlan, count: int, total: int, kills: list[str],
    restarts: list[tuple[float, str, int]], resumes: list[tuple[float, str, int]], out: TextIO,
) -> None:
    if not plan.kills or count < plan.kills[0][0] * total:
        return
    action = plan.kills[0][1]
    statuses = cluster.statuses(CHAOS_STATUS_SECONDS)
    target = find_primary(statuses) if action == "primary" else find_leader(statuses)
    if target is None:
        return  # no leader or primary right now; try again on the next pass
    plan.kills.pop(0)
    what = f"{target.role} {target.node}"
    if action == "pause":
        cluster.pause(target.role, target.node)
        count = cluster.acknowledged()
        kills.append(_("{node} paused").format(node=what))
        message = format_message(
            ngettext("chaos: paused {node} (SIGSTOP) for {seconds:.1f} s after {count} acknowledged message",
                     "chaos: paused {node} (SIGSTOP) for {seconds:.1f} s after {count} acknowledged messages", count),
            node=what, seconds=plan.pause_seconds, count=count)
        resumes.append((time.monotonic() + plan.pause_seconds, target.role, target.node))
    else:
        cluster.kill(target.role, target.node)
        count = cluster.acknowledged()
        kills.append(what)
        message = ngettext("chaos: killed {node} (SIGKILL) after {count} acknowledged message",
                           "chaos: killed {node} (SIGKILL) after {count} acknowledged messages", count).format(
            node=what, count=count)
        restarts.append((time.monotonic() + plan.restart_delay, target.role, target.node))
    out.write(("\n" if out.isatty() else "") + message + "\n")


@dataclass(frozen=True, slots=True)
class Settled:
    """The leader and the primary found last, and whether the cluster settled before the deadline."""

    leader: NodeStatus | None
    primary: NodeStatus | None
    settled: bool


def wait_settled(cluster: LocalCluster) -> Settled:
    """Wait up to SETTLE_SECONDS until the leader has written every entry and each store member committed it."""
    deadline = time.monotonic() + SETTLE_SECONDS
    leader: NodeStatus | None = None
    primary: NodeStatus | None = None
    while time.monotonic() < deadline:
        statuses = cluster.statuses()
        leader, primary = find_leader(statuses), find_primary(statuses)
        if leader is not None and leader.reply is not None and primary is not None and primary.reply is not None:
            written = leader.reply.commit
            members_done = all(
                status.reply.commit >= written
                for status in statuses
                if status.role == "store" and status.reply is not None and status.reply.role in ("primary", "backup")
                and status.reply.epoch == primary.reply.epoch
            )
            same_epoch = primary.reply.epoch == leader.reply.epoch
            if written >= leader.reply.log_len and members_done and same_epoch:
                return Settled(leader, primary, True)
        time.sleep(0.05)
    return Settled(leader, primary, False)


def _count_failovers(options: RunOptions) -> tuple[int, int]:
    """Return (leader elections, store epochs made ready) from the sync event logs.

    An epoch that a leader proposed but never made ready, because it lost
    leadership or another store node failed first, is not counted, so the
    count can be lower than the primary's epoch number.
    """
    terms: set[int] = set()
    epochs: set[int] = set()
    for node in range(1, options.sync + 1):
        for record in read_events(events_path(options.data_dir, "sync", node)):
            if record.get("event") == "became_leader":
                terms.add(int(record["term"]))
            elif record.get("event") == "epoch_ready":
                epochs.add(int(record["epoch"]))
    return len(terms), len(epochs)
