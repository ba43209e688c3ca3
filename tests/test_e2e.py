"""End-to-end tests: real node processes, real sockets on loopback, real files."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.exits import is_paused
from cluster.files import backup_path, events_path, output_path, read_entries
from cluster.verify import verify
from tests.e2e_helpers import Cluster, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path)
    try:
        yield running
    finally:
        running.close()


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cluster", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
    )


def assert_verified(data_dir: Path) -> None:
    report = verify(data_dir)
    failed = {check.name: check.violations for check in report.checks if not check.passed}
    assert failed == {}


def test_run_normal(tmp_path: Path) -> None:
    """A small run ends with every message acknowledged and the verification passing."""
    result = run_cli("run", "--sync", "3", "--store", "2", "--clients", "3", "--messages", "40",
                     "--data-dir", str(tmp_path / "data"), "--seed", "3")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "verification passed" in result.stdout
    assert "120 of 120 sent messages acknowledged" in result.stdout
    assert len(read_entries(output_path(tmp_path / "data"))) == 120


def test_clean_stop_keeps_store_members(tmp_path: Path) -> None:
    """Stopping a run records no store failure, so the next start finds every store member configured."""
    data = tmp_path / "data"
    result = run_cli("run", "--sync", "3", "--store", "2", "--clients", "1", "--messages", "20",
                     "--data-dir", str(data), "--seed", "3")

    assert result.returncode == 0, result.stdout + result.stderr
    for node in range(1, 4):
        config = json.loads((data / f"sync_{node}.state.json").read_text(encoding="utf-8"))["config"]
        assert sorted([config["primary"], *config["backups"]]) == [1, 2]
        assert '"store_failed"' not in events_path(data, "sync", node).read_text(encoding="utf-8")


def test_run_chaos_seed_1(tmp_path: Path) -> None:
    """`cluster run --chaos --seed 1` kills the leader and the primary while clients send, and still verifies."""
    data = tmp_path / "data"
    result = run_cli("run", "--chaos", "--seed", "1", "--messages", "100", "--data-dir", str(data))

    assert result.returncode == 0, result.stdout + result.stderr
    kills = re.findall(r"chaos: killed (sync|store) \d+ \(SIGKILL\) after (\d+) acknowledged", result.stdout)
    assert {role for role, _count in kills} == {"sync", "store"}
    assert all(int(count) < 500 for _role, count in kills), "a kill came after every message was acknowledged"
    assert "chaos: paused sync" in result.stdout
    assert "verification passed" in result.stdout

    # The seed pauses a leader before it kills the primary. The primary must
    # still die while clients send, so the new epoch commits messages too.
    events = [json.loads(line) for node in range(1, 6)
              for line in events_path(data, "sync", node).read_text(encoding="utf-8").splitlines()]
    store_failed = min(event["time"] for event in events if event["event"] == "store_failed")
    assert any(event["event"] == "commit" and event["time"] > store_failed for event in events)


def test_leader_killed_mid_run(cluster: Cluster) -> None:
    """Killing the sync leader elects a new one in a later term and loses nothing acknowledged."""
    first = cluster.ready_leader()
    for client in (1, 2):
        cluster.start_client(client, [f"c{client} m{index}" for index in range(400)])
    wait_for(lambda: cluster.local.acknowledged() >= 100, 30, "100 acknowledged messages")

    cluster.local.kill("sync", first.node)
    second = wait_for(lambda: (leader := cluster.leader()) and leader.node != first.node and leader, 20,
                      "a new leader")
    cluster.local.start("sync", first.node)
    cluster.wait_clients()
    cluster.settle()
    cluster.close()

    assert second.reply is not None and first.reply is not None
    assert second.reply.term > first.reply.term
    assert_verified(cluster.options.data_dir)


def test_primary_killed_mid_run(cluster: Cluster) -> None:
    """Killing the store primary installs a new epoch with another primary, losing nothing acknowledged."""
    cluster.ready_leader()
    first = wait_for(cluster.primary, 20, "a store primary")
    for client in (1, 2):
        cluster.start_client(client, [f"c{client} m{index}" for index in range(400)])
    wait_for(lambda: cluster.local.acknowledged() >= 100, 30, "100 acknowledged messages")

    cluster.local.kill("store", first.node)
    second = wait_for(lambda: (primary := cluster.primary()) and primary.node != first.node and primary, 20,
                      "a new primary")
    cluster.wait_clients()
    cluster.settle()
    cluster.close()

    assert second.reply is not None and first.reply is not None
    assert second.reply.epoch > first.reply.epoch
    assert_verified(cluster.options.data_dir)


def test_backup_restarts_and_catches_up(cluster: Cluster) -> None:
    """A killed backup restarts, catches up from the primary and rejoins the configuration."""
    cluster.ready_leader()
    primary = wait_for(cluster.primary, 20, "a store primary")
    backup = next(node for node in (1, 2, 3) if node != primary.node)
    cluster.start_client(1, [f"before {index}" for index in range(200)])
    cluster.wait_clients()

    first_epoch = primary.reply.epoch if primary.reply else 0
    cluster.local.kill("store", backup)

    def new_epoch() -> bool:
        current = cluster.primary()
        return bool(current and current.reply and current.reply.epoch > first_epoch)

    wait_for(new_epoch, 20, "an epoch without the backup")
    cluster.start_client(2, [f"while down {index}" for index in range(200)])
    cluster.wait_clients()
    cluster.local.start("store", backup)

    def rejoined() -> bool:
        statuses = cluster.statuses()
        status = next(s for s in statuses if s.role == "store" and s.node == backup)
        current = cluster.primary()
        return bool(status.reply and current and current.reply and status.reply.role == "backup"
                    and status.reply.epoch == current.reply.epoch and status.reply.commit >= 400)

    wait_for(rejoined, 30, f"store {backup} to rejoin as a backup")
    cluster.settle()
    cluster.close()

    data_dir = cluster.options.data_dir
    assert len(read_entries(backup_path(data_dir, backup))) == 400
    assert_verified(data_dir)


def test_messages_with_unusual_text(cluster: Cluster) -> None:
    """Non-ASCII, empty, tab, backslash and embedded-newline texts reach output.txt unchanged."""
    texts = ["olá, mundo ção", "", "line one\nline two", "tab\there", "back\\slash\\n", "emoji 🎉", "\r\n"]
    cluster.ready_leader()
    cluster.start_client(1, texts)
    cluster.wait_clients()
    cluster.settle()
    cluster.close()

    output = read_entries(output_path(cluster.options.data_dir))
    assert [entry.text for entry in output] == texts
    assert len(output_path(cluster.options.data_dir).read_text(encoding="utf-8").splitlines()) == len(texts)
    assert_verified(cluster.options.data_dir)


BAD_FRAMES = {
    "garbage": b"\x00\x00\x00\x05\x01{oops",
    "truncated": struct.pack(">I", 100) + b"\x01{\"type\":",
    "oversized": struct.pack(">I", 64 * 1024 * 1024) + b"\x01",
    "unknown type": b"\x00\x00\x00\x10\x01" + b'{"type":"Nope"}',
    "wrong version": b"\x00\x00\x00\x03\x07{}",
}


@pytest.mark.parametrize("frame_name", sorted(BAD_FRAMES))
def test_bad_frame_closes_connection(cluster: Cluster, frame_name: str) -> None:
    """A malformed, truncated or oversized frame closes that connection; every node keeps serving."""
    cluster.ready_leader()
    local = cluster.local
    ports = [("sync", node, address.port) for node, address in enumerate(local.sync_nodes, 1)]
    ports += [("sync", node, address.cluster_port) for node, address in enumerate(local.sync_nodes, 1)]
    ports += [("store", node, address.port) for node, address in enumerate(local.store_nodes, 1)]
    ports += [("store", node, address.cluster_port) for node, address in enumerate(local.store_nodes, 1)]

    for _role, _node, port in ports:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(BAD_FRAMES[frame_name])
            if frame_name == "truncated":
                sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""

    statuses = cluster.statuses()
    assert all(status.reply is not None for status in statuses)
    cluster.start_client(1, ["still serving"])
    cluster.wait_clients()
    logs = "".join(path.read_text(encoding="utf-8") for path in (cluster.options.data_dir / "logs").glob("*.log"))
    assert "closing connection from" in logs or frame_name == "truncated"


def test_unexpected_exits_skip_killed_nodes(cluster: Cluster) -> None:
    """A node killed by the run is expected to be down. One that stopped by itself is reported with its exit code."""
    cluster.ready_leader()
    local = cluster.local

    local.kill("store", 3)
    terminated = local.processes[("sync", 3)]
    assert terminated.pid is not None
    os.kill(terminated.pid, signal.SIGTERM)
    terminated.join(10)

    assert local.unexpected_exits() == [("sync", 3, 0)]
    local.start("store", 3)
    local.start("sync", 3)
    assert local.unexpected_exits() == []


def test_nodes_run_on_uvloop(cluster: Cluster) -> None:
    """Every sync and store process runs its event loop on uvloop, which shortens each hop of the write path."""
    cluster.ready_leader()
    logs = {path.stem: path.read_text(encoding="utf-8") for path in (cluster.options.data_dir / "logs").glob("*.log")}
    nodes = {name: text for name, text in logs.items() if name.startswith(("sync", "store"))}

    assert len(nodes) == len(cluster.local.sync_nodes) + len(cluster.local.store_nodes)
    assert {name for name, text in nodes.items() if "event loop from uvloop" in text} == set(nodes)


def test_single_node_commands_from_environment(tmp_path: Path) -> None:
    """`cluster sync`, `cluster store` and `cluster client` run from environment variables alone."""
    from cluster.launcher import free_ports

    ports = free_ports(6)
    sync_nodes = f"127.0.0.1:{ports[0]}:{ports[1]}"
    store_nodes = f"127.0.0.1:{ports[2]}:{ports[3]},127.0.0.1:{ports[4]}:{ports[5]}"
    base = {**os.environ, "SYNC_NODES": sync_nodes, "STORE_NODES": store_nodes, "DATA_DIR": str(tmp_path)}
    nodes = [
        subprocess.Popen([sys.executable, "-m", "cluster", "sync"],
                         env={**base, "ID": "1", "PORT": str(ports[0]), "CLUSTER_PORT": str(ports[1])},
                         stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "cluster", "store"],
                         env={**base, "POD_NAME": "store-0", "PORT": str(ports[2]), "CLUSTER_PORT": str(ports[3])},
                         stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "cluster", "store"],
                         env={**base, "ID": "2", "PORT": str(ports[4]), "CLUSTER_PORT": str(ports[5])},
                         stderr=subprocess.DEVNULL),
    ]
    try:
        client = subprocess.run([sys.executable, "-m", "cluster", "client"],
                                env={**base, "JOB_COMPLETION_INDEX": "0", "MESSAGES": "25"},
                                capture_output=True, text=True, timeout=60)
        health = run_cli("health", "--port", str(ports[0]))
        status = run_cli("status", "--sync-nodes", sync_nodes, "--store-nodes", store_nodes)
    finally:
        for process in nodes:
            process.send_signal(signal.SIGTERM)
        for process in nodes:
            process.wait(timeout=10)

    assert client.returncode == 0, client.stderr
    assert health.returncode == 0, health.stderr
    assert status.returncode == 0, status.stdout + status.stderr
    assert "leader" in status.stdout
    assert [process.returncode for process in nodes] == [0, 0, 0]
    assert len(read_entries(output_path(tmp_path))) == 25


def test_node_log_names_damaged_state_file(cluster: Cluster) -> None:
    """A node that stops on a damaged state file writes the reason to the log that the run's summary names."""
    cluster.ready_leader()
    local = cluster.local
    local.kill("sync", 3)
    state = cluster.options.data_dir / "sync_3.state.json"
    state.write_text('{"term": "x"}', encoding="utf-8")

    local.start("sync", 3)
    process = local.processes[("sync", 3)]
    process.join(30)

    assert process.exitcode == 2
    log = (cluster.options.data_dir / "logs" / "sync_3.log").read_text(encoding="utf-8")
    assert f'{state}: "term" must be an integer from 0 to {2**63 - 1}, found "x"' in log


def test_paused_client_listed_as_paused(cluster: Cluster) -> None:
    cluster.ready_leader()
    cluster.start_client(1, [f"paused client message {index}" for index in range(1, 50_001)])
    pid = cluster.local.processes[("client", 1)].pid
    assert pid is not None

    os.kill(pid, signal.SIGSTOP)
    try:
        paused = wait_for(lambda: cluster.local.paused_outside() or None, 10, "the client to stop")
    finally:
        os.kill(pid, signal.SIGCONT)

    assert paused == [("client", 1)]
    wait_for(lambda: not cluster.local.paused_outside() or None, 10, "the client to continue")


def test_leader_warns_of_held_output_lock(cluster: Cluster, tmp_path: Path) -> None:
    leader = cluster.ready_leader()
    cluster.start_client(1, ["warm-up message"])
    wait_for(lambda: output_path(tmp_path).exists() or None, 20, "output.txt")

    with (tmp_path / "output.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cluster.start_client(2, ["a message that waits for the lock"])
        log = tmp_path / "logs" / f"sync_{leader.node}.log"
        wait_for(lambda: "waited 2 s for output.lock" in log.read_text(encoding="utf-8") or None, 20,
                 "the leader's warning")
        fcntl.flock(lock, fcntl.LOCK_UN)

    cluster.wait_clients()
    assert "a message that waits for the lock" in output_path(tmp_path).read_text(encoding="utf-8")


def test_paused_leader_named_as_lock_holder(cluster: Cluster) -> None:
    leader = cluster.ready_leader()
    cluster.start_client(1, [f"message {index}" for index in range(1, 200_001)])
    pid = cluster.local.processes[("sync", leader.node)].pid
    assert pid is not None
    lock = cluster.options.data_dir / "output.lock"
    wait_for(lambda: lock.exists() or None, 20, "output.lock")

    # The leader holds the lock only while it appends, about a fifth of the time under this load. Pause it
    # until a pause catches it holding the lock, and let it run for 2 ms between tries, so it stays leader.
    holder = None
    for _attempt in range(1000):
        os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while not is_paused(pid):
            assert time.monotonic() < deadline, "the leader did not stop within 10 s"
        holder = cluster.local.paused_lock_holder(cluster.local.paused_outside())
        if holder is not None:
            break
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.002)
    os.kill(pid, signal.SIGCONT)

    assert holder == ("sync", leader.node)
