"""Network-fault scenarios: a cluster whose every node runs in its own namespace, broken on purpose.

Each scenario starts 5 sync nodes, 3 store nodes and one namespace of
clients, each node a process of the `cluster` command. It waits for a
leader with a ready store and applies its fault while the clients send.
Then it removes the fault, waits for the clients, stops every node and
runs `cluster verify` on the data directory. A scenario is bounded in time: every wait has a deadline,
and a missed deadline is a failed scenario, not a hang.

Every process, namespace and nftables rule a scenario creates is removed
when it ends, on failure too; processes are stopped by their pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cluster.core.messages import StatusReply
from cluster.faultnet.netns import FaultNet
from cluster.files import (
    events_path,
    layout_path,
    output_fence_path,
    output_lock_path,
    output_path,
    read_entries,
    read_events,
)
from cluster.launcher import find_leader, find_primary
from cluster.net.auth import generate_key, write_key_file
from cluster.node.settings import KEY_FILE_NAME, NodeAddress
from cluster.status import NodeStatus
from cluster.verify import Report, verify

logger = logging.getLogger(__name__)

CLIENT_PORT = 7000
CLUSTER_PORT = 7001
READY_SECONDS = 30.0
CLIENTS_SECONDS = 60.0
STOP_SECONDS = 5.0
# Longer than the largest election timeout (60 ticks of 10 ms).
PAUSE_SECONDS = 1.5


class ScenarioFailed(AssertionError):
    """A scenario's check failed; the message names the check and the values it saw."""


@dataclass(slots=True)
class ScenarioResult:
    name: str
    passed: bool
    acknowledged: int
    sent: int
    output_entries: int
    seconds: float
    report: Report
    failed_checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    namespace_tag: str = ""  # the prefix of the network namespaces this run created

    def describe(self) -> str:
        state = "passed" if self.passed else "FAILED"
        text = (f"{self.name}: {state}, {self.acknowledged} of {self.sent} sent messages acknowledged, "
                f"{self.output_entries} in output.txt, {self.seconds:.1f} s")
        details = self.failed_checks + self.notes
        return text + "".join(f"\n  - {detail}" for detail in details)


class NetCluster:
    """Sync, store and client processes, each in its own namespace of a `FaultNet`."""

    def __init__(self, data_dir: Path, sync: int = 5, store: int = 3, clients: int = 3, messages: int = 300,
                 seed: int = 1, delayed_store: tuple[int, float] | None = None, rate: float | None = None) -> None:
        self.data_dir = data_dir
        self.sync, self.store, self.clients, self.messages, self.seed = sync, store, clients, messages, seed
        self.rate = rate
        hosts = [f"s{node}" for node in range(1, sync + 1)] + [f"t{node}" for node in range(1, store + 1)]
        self.net = FaultNet([*hosts, "clients"])
        self.processes: dict[tuple[str, int], subprocess.Popen[bytes]] = {}
        self.killed: set[tuple[str, int]] = set()  # nodes the scenario killed and has not restarted
        self.helpers: list[subprocess.Popen[bytes]] = []
        self.probe: subprocess.Popen[str] | None = None
        self.delayed_store = delayed_store
        self._logs: list[IO[bytes]] = []

    # --- Set-up and tear-down ---------------------------------------------------------

    def __enter__(self) -> NetCluster:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        write_key_file(self.data_dir / KEY_FILE_NAME, generate_key())
        self.net.create()
        try:
            self._start_all()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def host(self, role: str, node: int) -> str:
        return f"{'s' if role == 'sync' else 't'}{node}"

    def _start_all(self) -> None:
        sync_hosts = [self.net.addresses[self.host("sync", node)] for node in range(1, self.sync + 1)]
        store_hosts = [self.net.addresses[self.host("store", node)] for node in range(1, self.store + 1)]
        if self.delayed_store is not None:
            store_hosts[self.delayed_store[0] - 1] = self._start_proxy(*self.delayed_store)
        self.sync_nodes = ",".join(str(NodeAddress(host, CLIENT_PORT, CLUSTER_PORT)) for host in sync_hosts)
        self.store_nodes = ",".join(str(NodeAddress(host, CLIENT_PORT, CLUSTER_PORT)) for host in store_hosts)
        # `cluster run` writes the same layout, and `cluster verify` requires it.
        layout = {"sync_nodes": self.sync_nodes.split(","), "store_nodes": self.store_nodes.split(",")}
        layout_path(self.data_dir).write_text(json.dumps(layout, indent=2) + "\n", encoding="utf-8")
        for node in range(1, self.sync + 1):
            self.start("sync", node)
        for node in range(1, self.store + 1):
            self.start("store", node)
        self.probe = subprocess.Popen(
            [*self.net.exec_prefix("clients"), sys.executable, "-m", "cluster.faultnet.probe", self.sync_nodes,
             self.store_nodes],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )

    def _start_proxy(self, store: int, delay_ms: float) -> str:
        """Put a delay proxy in front of store node `store` and return the address that reaches it through it."""
        host = self.host("store", store)
        front = self.net.extra_address(host)
        real = self.net.addresses[host]
        args = [*self.net.exec_prefix(host), sys.executable, "-m", "cluster.faultnet.proxy", "--delay-ms",
                str(delay_ms)]
        for port in (CLIENT_PORT, CLUSTER_PORT):
            args += ["--listen", f"{front}:{port}", "--target", f"{real}:{port}"]
        self.helpers.append(self._popen(args, "proxy"))
        return front

    def _popen(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.data_dir / "logs" / f"{log_name}.log", "ab")  # noqa: SIM115 (closed in close())
        self._logs.append(log)
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)

    def start(self, role: str, node: int) -> None:
        """Start (or restart) one sync or store node in its namespace."""
        host = self.host(role, node)
        args = [
            *self.net.exec_prefix(host), sys.executable, "-m", "cluster", role, "--id", str(node),
            "--port", str(CLIENT_PORT), "--cluster-port", str(CLUSTER_PORT), "--sync-nodes", self.sync_nodes,
            "--store-nodes", self.store_nodes, "--data-dir", str(self.data_dir), "--bind", self.net.addresses[host],
            "--key-file", str(self.data_dir / KEY_FILE_NAME),
        ]
        if role == "sync":
            args += ["--seed", str(self.seed * 1000 + node)]
        self.processes[(role, node)] = self._popen(args, f"{role}_{node}")
        self.killed.discard((role, node))

    def start_clients(self) -> None:
        for client in range(1, self.clients + 1):
            args = [*self.net.exec_prefix("clients"), sys.executable, "-m", "cluster", "client", "--id", str(client),
                    "--sync-nodes", self.sync_nodes, "--messages", str(self.messages),
                    "--data-dir", str(self.data_dir)]
            if self.rate is not None:
                args += ["--rate", str(self.rate)]
            self.processes[("client", client)] = self._popen(args, f"client_{client}")

    def signal(self, role: str, node: int, signum: int) -> None:
        process = self.processes[(role, node)]
        if process.poll() is None:
            os.kill(process.pid, signum)

    def kill(self, role: str, node: int) -> None:
        self.signal(role, node, signal.SIGKILL)
        self.processes[(role, node)].wait(STOP_SECONDS)
        self.killed.add((role, node))

    def unexpected_exits(self) -> list[tuple[str, int, int | None]]:
        """Return (role, id, exit status) of each sync or store node that stopped unless the scenario killed it."""
        return [
            (role, node, process.returncode)
            for (role, node), process in sorted(self.processes.items())
            if role != "client" and (role, node) not in self.killed and process.poll() is not None
        ]

    def stop_nodes(self) -> None:
        """SIGTERM the clients, then the nodes and helpers; SIGKILL any left after STOP_SECONDS. Resume paused ones."""
        ordered = [process for (role, _node), process in self.processes.items() if role == "client"]
        ordered += [process for (role, _node), process in self.processes.items() if role != "client"]
        ordered += self.helpers
        for process in ordered:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for process in ordered:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()

    def close(self) -> None:
        try:
            self.stop_nodes()
            if self.probe is not None and self.probe.poll() is None:
                assert self.probe.stdin is not None
                self.probe.stdin.close()
                try:
                    self.probe.wait(STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    os.kill(self.probe.pid, signal.SIGKILL)
                    self.probe.wait()
        finally:
            for log in self._logs:
                log.close()
            self._logs.clear()
            self.net.close()

    # --- Observation ----------------------------------------------------------------------

    def statuses(self) -> list[NodeStatus]:
        assert self.probe is not None and self.probe.stdin is not None and self.probe.stdout is not None
        self.probe.stdin.write("status\n")
        self.probe.stdin.flush()
        records: list[dict[str, Any]] = json.loads(self.probe.stdout.readline())
        return [
            NodeStatus(record["role"], record["node"], "", CLIENT_PORT,
                       StatusReply(**record["reply"]) if record["reply"] is not None else None)
            for record in records
        ]

    def wait_for(self, what: str, condition: Callable[[list[NodeStatus]], Any], timeout: float) -> Any:
        """Poll the statuses until `condition` returns a truthy value; raise ScenarioFailed after `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition(self.statuses())
            if value:
                return value
            time.sleep(0.1)
        raise ScenarioFailed(f"timed out after {timeout:.0f} s waiting for {what}")

    def ready_leader(self, timeout: float = READY_SECONDS) -> NodeStatus:
        def ready(statuses: list[NodeStatus]) -> NodeStatus | None:
            leader, primary = find_leader(statuses), find_primary(statuses)
            if leader and primary and leader.reply and primary.reply and leader.reply.epoch == primary.reply.epoch:
                return leader
            return None

        leader: NodeStatus = self.wait_for("a leader with a ready store primary", ready, timeout)
        return leader

    def acknowledged(self) -> int:
        count = 0
        for path in self.data_dir.glob("client_*.jsonl"):
            with path.open(encoding="utf-8", errors="replace") as file:
                count += sum(1 for line in file if '"event": "acked"' in line)
        return count

    def acknowledged_after_term(self, term: int) -> bool:
        """Return True when some client logged an acknowledgement from a leader of a term after `term`."""
        for path in self.data_dir.glob("client_*.jsonl"):
            for record in read_events(path):
                if record.get("event") == "acked" and int(record.get("term", 0)) > term:
                    return True
        return False

    def wait_for_acknowledgement_after_term(self, term: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.acknowledged_after_term(term):
                return True
            time.sleep(0.1)
        return False

    def wait_acknowledged(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.acknowledged() >= count:
                return True
            time.sleep(0.1)
        return False

    def wait_clients(self, timeout: float = CLIENTS_SECONDS) -> list[int | None]:
        deadline = time.monotonic() + timeout
        clients = [process for (role, _node), process in self.processes.items() if role == "client"]
        for process in clients:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
        return [process.poll() for process in clients]

    def sync_events(self, node: int) -> list[dict[str, Any]]:
        return read_events(events_path(self.data_dir, "sync", node))


# --- Scenarios ----------------------------------------------------------------------------


def _leader_minority(cluster: NetCluster, notes: list[str]) -> None:
    """Cut the leader and one follower off from the other three sync nodes, the store and the clients."""
    leader = cluster.ready_leader()
    assert leader.reply is not None
    cluster.wait_acknowledged(50, 20)
    follower = next(node for node in range(1, cluster.sync + 1) if node != leader.node)
    minority = [cluster.host("sync", leader.node), cluster.host("sync", follower)]
    cluster.net.partition(minority)
    old_term = leader.reply.term
    new = cluster.wait_for(
        "a leader in the majority",
        lambda statuses: next((s for s in statuses if s.role == "sync" and s.reply and s.reply.role == "leader"
                               and s.reply.term > old_term and s.node not in (leader.node, follower)), None),
        15,
    )
    notes.append(f"sync {leader.node} (term {old_term}) cut off with sync {follower}; sync {new.node} "
                 f"elected in term {new.reply.term}")
    # Count acknowledgements of a later term, not acknowledgements after this
    # point: the clients may have sent their last message by the time the
    # status queries found the new leader.
    if not cluster.wait_for_acknowledgement_after_term(old_term, 15):
        raise ScenarioFailed("the majority acknowledged nothing while the old leader was cut off")
    cluster.net.heal()


def _primary_cut_from_leader(cluster: NetCluster, notes: list[str]) -> None:
    """Cut the store primary and the sync leader apart, both ways, for 3 s."""
    leader = cluster.ready_leader()
    primary = find_primary(cluster.statuses())
    if primary is None or primary.reply is None or leader.reply is None:
        raise ScenarioFailed("no store primary to cut off")
    cluster.wait_acknowledged(50, 20)
    leader_host, primary_host = cluster.host("sync", leader.node), cluster.host("store", primary.node)
    cluster.net.cut(leader_host, primary_host)
    cluster.net.cut(primary_host, leader_host)
    old_epoch = leader.reply.epoch
    time.sleep(3)
    epochs = [s.reply.epoch for s in cluster.statuses() if s.role == "sync" and s.reply and s.reply.role == "leader"]
    notes.append(f"sync {leader.node} and store {primary.node} cut apart for 3 s; leader epochs then {epochs} "
                 f"(was {old_epoch})")
    cluster.net.heal()


def _one_way_cut(cluster: NetCluster, notes: list[str]) -> None:
    """Drop the sync leader's packets to the store primary for 3 s, while the primary still reaches the leader."""
    leader = cluster.ready_leader()
    primary = find_primary(cluster.statuses())
    if primary is None:
        raise ScenarioFailed("no store primary")
    cluster.wait_acknowledged(50, 20)
    cluster.net.cut(cluster.host("sync", leader.node), cluster.host("store", primary.node))
    time.sleep(3)
    notes.append(f"packets from sync {leader.node} to store {primary.node} dropped for 3 s, the other way open")
    cluster.net.heal()


def _flapping_link(cluster: NetCluster, notes: list[str]) -> None:
    """Cut and restore the leader's links to a follower and to the primary every 300 ms for 4 s."""
    leader = cluster.ready_leader()
    follower = next(node for node in range(1, cluster.sync + 1) if node != leader.node)
    primary = find_primary(cluster.statuses())
    cluster.wait_acknowledged(50, 20)
    pairs = [(cluster.host("sync", leader.node), cluster.host("sync", follower))]
    if primary is not None:
        pairs.append((cluster.host("sync", leader.node), cluster.host("store", primary.node)))
    flips = 0
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        for source, target in pairs:
            cluster.net.cut(source, target)
            cluster.net.cut(target, source)
        time.sleep(0.3)
        cluster.net.heal()
        time.sleep(0.3)
        flips += 1
    notes.append(f"links of sync {leader.node} to sync {follower} and to the primary flapped {flips} times")


def _output_snapshot(data_dir: Path, blocking: bool) -> tuple[int, int] | None:
    """Return (fence term, lines) of the output, read under its lock; None if the lock is held and not `blocking`."""
    descriptor = os.open(output_lock_path(data_dir), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            return None
        fence_path = output_fence_path(data_dir)
        fence = int(fence_path.read_text(encoding="ascii").strip() or 0) if fence_path.exists() else 0
        return fence, len(read_entries(output_path(data_dir)))
    finally:
        os.close(descriptor)  # closing the descriptor releases the flock


def _leader_paused(cluster: NetCluster, notes: list[str]) -> None:
    """SIGSTOP the leader for longer than an election timeout, then SIGCONT; it must not append after that.

    Appends and fence raises both run under the flock of output.lock, so the
    harness reads the fence and the line count under that lock too. From the
    first such reading whose fence is above the old term, the old leader may
    not append: none of its `commit` events may end past that line count.
    """
    leader = cluster.ready_leader()
    assert leader.reply is not None
    cluster.wait_acknowledged(50, 20)
    old_term = leader.reply.term
    cluster.signal("sync", leader.node, signal.SIGSTOP)
    try:
        new = cluster.wait_for(
            "a new leader while the old one is paused",
            lambda statuses: next((s for s in statuses if s.role == "sync" and s.reply and s.reply.role == "leader"
                                   and s.reply.term > old_term), None),
            15,
        )
        time.sleep(PAUSE_SECONDS)
        held = _output_snapshot(cluster.data_dir, blocking=False) is None
    finally:
        cluster.signal("sync", leader.node, signal.SIGCONT)

    snapshot: tuple[int, int] | None = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        snapshot = _output_snapshot(cluster.data_dir, blocking=True)
        if snapshot is not None and snapshot[0] > old_term:
            break
        time.sleep(0.05)
    if snapshot is None or snapshot[0] <= old_term:
        raise ScenarioFailed(f"output.fence never rose above the paused leader's term {old_term}: {snapshot}")
    time.sleep(2)

    fence, lines = snapshot
    late = [record for record in cluster.sync_events(leader.node)
            if record.get("event") == "commit" and int(record["last_seq"]) > lines]
    if late:
        raise ScenarioFailed(f"sync {leader.node} appended past line {lines} after the fence rose to {fence}: {late}")
    notes.append(f"sync {leader.node} (term {old_term}) paused{' inside an output append' if held else ''}; "
                 f"sync {new.node} elected in term {new.reply.term}; fence {fence} at {lines} output lines; "
                 f"no output append by the old leader after that")


def _majority_killed(cluster: NetCluster, notes: list[str]) -> None:
    """SIGKILL three of five sync nodes, the leader among them, then restart them: a leader is elected again."""
    leader = cluster.ready_leader()
    assert leader.reply is not None
    cluster.wait_acknowledged(50, 20)
    victims = [leader.node, *[node for node in range(1, cluster.sync + 1) if node != leader.node][:2]]
    for node in victims:
        cluster.kill("sync", node)
    time.sleep(2)
    for node in victims:
        cluster.start("sync", node)
    new = cluster.ready_leader()
    assert new.reply is not None
    notes.append(f"killed sync {victims} (leader {leader.node}, term {leader.reply.term}); after the restart "
                 f"sync {new.node} leads in term {new.reply.term}")


def _store_backups_killed(cluster: NetCluster, notes: list[str]) -> None:
    """SIGKILL every store backup, wait, restart them; the store keeps taking writes and takes them back."""
    cluster.ready_leader()
    primary = find_primary(cluster.statuses())
    if primary is None:
        raise ScenarioFailed("no store primary")
    cluster.wait_acknowledged(50, 20)
    backups = [node for node in range(1, cluster.store + 1) if node != primary.node]
    for node in backups:
        cluster.kill("store", node)
    before = cluster.acknowledged()
    progressed = cluster.wait_acknowledged(before + 20, 10)
    for node in backups:
        cluster.start("store", node)
    notes.append(f"killed store backups {backups}; "
                 + ("writes went on with the primary alone" if progressed else "no write acknowledged meanwhile"))


def _slow_store(cluster: NetCluster, notes: list[str]) -> None:
    """Run with store 1 behind a proxy that delays every byte by 20 ms each way, and no other fault."""
    cluster.ready_leader()
    notes.append("store 1 reached through a 20 ms delay proxy")


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    run: Callable[[NetCluster, list[str]], None]
    delayed_store: tuple[int, float] | None = None
    # Messages per client, and new messages per second per client: together
    # they keep the clients sending until the fault ends, however fast the
    # cluster is.
    messages: int = 4000
    rate: float = 800.0


SCENARIOS = {
    scenario.name: scenario
    for scenario in (
        Scenario("leader-minority", _leader_minority),
        Scenario("primary-cut-from-leader", _primary_cut_from_leader),
        Scenario("one-way-cut", _one_way_cut),
        Scenario("flapping-link", _flapping_link),
        Scenario("leader-paused", _leader_paused, messages=10000),
        Scenario("majority-killed", _majority_killed),
        Scenario("store-backups-killed", _store_backups_killed),
        Scenario("slow-store", _slow_store, delayed_store=(1, 20.0)),
    )
}


def run_scenario(name: str, data_dir: Path, seed: int = 1, clients: int = 3) -> ScenarioResult:
    """Run one named scenario in `data_dir` (created, must be empty) and verify the outcome."""
    scenario = SCENARIOS[name]
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    notes: list[str] = []
    failures: list[str] = []
    with NetCluster(data_dir, clients=clients, messages=scenario.messages, seed=seed,
                    delayed_store=scenario.delayed_store, rate=scenario.rate) as cluster:
        cluster.ready_leader()
        cluster.start_clients()
        try:
            scenario.run(cluster, notes)
        except ScenarioFailed as error:
            failures.append(str(error))
        finally:
            cluster.net.heal()
        codes = cluster.wait_clients()
        if codes != [0] * len(codes):
            failures.append(f"client exit statuses {codes} (None: still running after {CLIENTS_SECONDS:.0f} s)")
        try:
            cluster.ready_leader(15)
        except ScenarioFailed as error:
            failures.append(str(error))
        settle_deadline = time.monotonic() + 10
        while time.monotonic() < settle_deadline:
            statuses = cluster.statuses()
            leader = find_leader(statuses)
            members = [s.reply.commit for s in statuses if s.role == "store" and s.reply
                       and s.reply.role in ("primary", "backup")]
            if leader and leader.reply and members and min(members) >= leader.reply.commit >= leader.reply.log_len:
                break
            time.sleep(0.1)
        failures += [f"{role} {node} stopped on its own with exit status {code}"
                     for role, node, code in cluster.unexpected_exits()]

    report = verify(data_dir)
    failures += [f"{check.name}: {'; '.join(check.violations[:3])}" for check in report.checks if not check.passed]
    return ScenarioResult(name, not failures, report.acknowledged, report.sent, report.output_entries,
                          time.monotonic() - started, report, failures, notes, cluster.net.tag)


def main(argv: list[str] | None = None) -> int:
    """Run the named scenarios (all by default) and print one line each; exit 1 if any failed."""
    import argparse
    import tempfile

    from cluster.faultnet.netns import unavailable

    parser = argparse.ArgumentParser(prog="python -m cluster.faultnet.scenarios",
                                     description="Run network-fault scenarios in network namespaces (root only).")
    parser.add_argument("names", nargs="*", choices=[[], *SCENARIOS], metavar="NAME",
                        help=f"scenarios to run (default: all of {', '.join(SCENARIOS)})")
    parser.add_argument("--seed", type=int, default=1, help="seed of the sync nodes' election timeouts (default 1)")
    args = parser.parse_args(argv)
    reason = unavailable()
    if reason is not None:
        print(f"cannot run network scenarios: {reason}", file=sys.stderr)
        return 2
    failed = 0
    for name in args.names or list(SCENARIOS):
        try:
            with tempfile.TemporaryDirectory(prefix=f"faultnet-{name}-") as directory:
                result = run_scenario(name, Path(directory) / "data", seed=args.seed)
        except KeyboardInterrupt:
            # run_scenario has stopped its processes and deleted its namespaces on the way out.
            print(f"{name}: interrupted; its processes and network namespaces are removed", file=sys.stderr)
            return 130
        print(result.describe(), flush=True)
        failed += not result.passed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
