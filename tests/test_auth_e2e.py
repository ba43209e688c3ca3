"""Peer authentication against real node processes on loopback: rejections, foreign keys, key rotation."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.core.messages import Commit, Heartbeat, PreVoteReply, initial_config
from cluster.files import events_path
from cluster.launcher import LocalCluster, RunOptions
from cluster.net import auth
from cluster.net.auth import Connector, KeyRing
from cluster.verify import verify
from cluster.wire import encode
from tests.e2e_helpers import Cluster, wait_for

pytestmark = pytest.mark.e2e

HOST = "127.0.0.1"
SOCKET_TIMEOUT = 5.0


# --- A peer speaking the protocol by hand -------------------------------------------------


def recv_exact(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {count} bytes")
        data += chunk
    return bytes(data)


def read_envelope(sock: socket.socket) -> bytes:
    (length,) = struct.unpack(">I", recv_exact(sock, 4))
    return recv_exact(sock, length)


def closed_by_node(sock: socket.socket) -> bool:
    """Return True once the node closes the connection (it writes nothing after the challenge)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


class HandPeer:
    """One connection to a node's cluster port; records every byte it sends."""

    def __init__(self, port: int, ring: KeyRing, role: str = "sync", node: int = 2,
                 to_role: str = "sync", to_node: int = 1) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT)
        self.connector = Connector(ring, role, node, to_role, to_node, secrets.token_bytes(auth.NONCE_BYTES))
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.sent.append(data)

    def handshake(self) -> None:
        self.send(self.connector.open_frame())
        self.send(self.connector.receive_challenge(read_envelope(self.sock)))

    def close(self) -> None:
        self.sock.close()


# --- Event log ----------------------------------------------------------------------------


def rejection_counts(data_dir: Path, role: str, node: int) -> dict[str, int]:
    """Return the latest count of each auth_rejected reason in a node's event log."""
    counts: dict[str, int] = {}
    path = events_path(data_dir, role, node)
    if not path.exists():
        return counts
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["event"] == "auth_rejected":
            counts[record["reason"]] = max(counts.get(record["reason"], 0), record["count"])
    return counts


def wait_rejected(data_dir: Path, role: str, node: int, reason: str, before: dict[str, int]) -> int:
    """Wait until the node reports one more rejection for `reason` than in `before`."""
    return wait_for(
        lambda: rejection_counts(data_dir, role, node).get(reason, 0) > before.get(reason, 0) and
        rejection_counts(data_dir, role, node)[reason],
        10, f"{role} {node} to report {reason}",
    )


def all_rejections(data_dir: Path) -> dict[str, dict[str, int]]:
    result = {}
    for path in sorted(data_dir.glob("events_*.jsonl")):
        _prefix, role, node = path.stem.split("_")
        counts = rejection_counts(data_dir, role, int(node))
        if counts:
            result[f"{role} {node}"] = counts
    return result


def assert_verified(data_dir: Path) -> None:
    report = verify(data_dir)
    failed = {check.name: check.violations for check in report.checks if not check.passed}
    assert failed == {}


# --- Rejections on a running cluster ------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("auth"), sync=3, store=2)
    try:
        running.ready_leader()
        yield running
    finally:
        running.close()


def sync_port(cluster: Cluster, node: int = 1) -> int:
    return cluster.local.sync_nodes[node - 1].cluster_port


def harmless() -> bytes:
    """A frame every sync node ignores once it has a leader: a pre-vote reply for term 0."""
    return encode(PreVoteReply(0, 2, False))


def check_rejected(cluster: Cluster, peer: HandPeer, reason: str, before: dict[str, int]) -> None:
    assert closed_by_node(peer.sock)
    wait_rejected(cluster.options.data_dir, "sync", 1, reason, before)
    peer.close()
    assert all(status.reply is not None for status in cluster.statuses())


def test_untagged_frame_rejected(cluster: Cluster) -> None:
    """A plain message frame on the cluster port, with no handshake, is rejected as missing its tag."""
    before = rejection_counts(cluster.options.data_dir, "sync", 1)
    peer = HandPeer(sync_port(cluster), cluster.local.keys)

    peer.send(encode(Heartbeat(99, 2, initial_config(2))))

    check_rejected(cluster, peer, "missing_tag", before)
    status = next(s for s in cluster.statuses() if s.role == "sync" and s.node == 1)
    assert status.reply is not None and status.reply.term < 99


def test_untagged_frame_after_handshake_rejected(cluster: Cluster) -> None:
    before = rejection_counts(cluster.options.data_dir, "sync", 1)
    peer = HandPeer(sync_port(cluster), cluster.local.keys)
    peer.handshake()

    peer.send(harmless())

    check_rejected(cluster, peer, "missing_tag", before)


def test_wrong_tag_rejected(cluster: Cluster) -> None:
    before = rejection_counts(cluster.options.data_dir, "sync", 1)
    peer = HandPeer(sync_port(cluster), cluster.local.keys)
    peer.handshake()
    sealed = bytearray(peer.connector.seal(harmless()))
    sealed[20] ^= 0xFF  # a byte of the tag

    peer.send(bytes(sealed))

    check_rejected(cluster, peer, "wrong_tag", before)


def test_hello_signed_with_other_key_rejected(cluster: Cluster) -> None:
    before = rejection_counts(cluster.options.data_dir, "sync", 1)
    stranger = KeyRing((secrets.token_bytes(32), *cluster.local.keys.keys), "a ring signing with a stranger key")
    peer = HandPeer(sync_port(cluster), stranger)

    peer.handshake()

    check_rejected(cluster, peer, "unknown_key", before)


def test_frame_replayed_on_other_connection_rejected(cluster: Cluster) -> None:
    """Frames captured on one connection fail on another, whether the hello is replayed too or not."""
    data_dir = cluster.options.data_dir
    first = HandPeer(sync_port(cluster), cluster.local.keys)
    first.handshake()
    first.send(first.connector.seal(harmless()))
    first.send(first.connector.seal(harmless()))
    captured = list(first.sent)
    first.close()

    before = rejection_counts(data_dir, "sync", 1)
    second = HandPeer(sync_port(cluster), cluster.local.keys)
    second.handshake()
    second.send(captured[2])
    check_rejected(cluster, second, "wrong_tag", before)

    before = rejection_counts(data_dir, "sync", 1)
    whole = HandPeer(sync_port(cluster), cluster.local.keys)
    whole.send(captured[0])
    assert read_envelope(whole.sock)[1] == auth.FrameKind.CHALLENGE
    # The node closes the connection at the first replayed frame, so the
    # later ones may meet a closed socket.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        for data in captured[1:]:
            whole.send(data)
    check_rejected(cluster, whole, "wrong_tag", before)


def test_frame_replayed_on_same_connection_rejected(cluster: Cluster) -> None:
    before = rejection_counts(cluster.options.data_dir, "sync", 1)
    peer = HandPeer(sync_port(cluster), cluster.local.keys)
    peer.handshake()
    sealed = peer.connector.seal(harmless())

    peer.send(sealed)
    peer.send(sealed)

    check_rejected(cluster, peer, "replayed_frame", before)


def test_skipped_sequence_rejected(cluster: Cluster) -> None:
    before = rejection_counts(cluster.options.data_dir, "sync", 1)
    peer = HandPeer(sync_port(cluster), cluster.local.keys)
    peer.handshake()
    peer.connector.seal(harmless())

    peer.send(peer.connector.seal(harmless()))

    check_rejected(cluster, peer, "wrong_sequence", before)


@pytest.mark.parametrize(
    ("role", "node", "to_role", "to_node", "reason"),
    [
        ("sync", 7, "sync", 1, "unknown_node"),
        ("sync", 2, "sync", 3, "bad_hello"),
    ],
)
def test_hello_identity_rejected(
    cluster: Cluster, role: str, node: int, to_role: str, to_node: int, reason: str
) -> None:
    """A hello from a node id outside the cluster, or meant for another node, is rejected."""
    before = rejection_counts(cluster.options.data_dir, "sync", 1)
    peer = HandPeer(sync_port(cluster), cluster.local.keys, role, node, to_role, to_node)

    peer.handshake()

    check_rejected(cluster, peer, reason, before)


@pytest.mark.parametrize("role", ["sync", "store"])
def test_client_port_rejects_peer_message(cluster: Cluster, role: str) -> None:
    """A client cannot pose as a node: the client port closes on a Heartbeat or a Commit."""
    address = (cluster.local.sync_nodes if role == "sync" else cluster.local.store_nodes)[0]
    message = Heartbeat(99, 2, initial_config(2)) if role == "sync" else Commit(99, 99)

    with socket.create_connection((HOST, address.port), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(encode(message))
        assert closed_by_node(sock)

    statuses = cluster.statuses()
    assert all(status.reply is not None for status in statuses)
    assert all(status.reply.term < 99 for status in statuses if status.reply is not None)


def test_message_for_other_role_closes_connection(cluster: Cluster) -> None:
    """An authenticated peer that sends a store message to a sync node is cut off with a logged error."""
    data_dir = cluster.options.data_dir
    peer = HandPeer(sync_port(cluster), cluster.local.keys)
    peer.handshake()

    peer.send(peer.connector.seal(encode(Commit(0, 0))))

    assert closed_by_node(peer.sock)
    peer.close()
    log = (data_dir / "logs" / "sync_1.log").read_text(encoding="utf-8")
    assert "a sync node does not accept Commit on its cluster port" in log


def test_cluster_serves_after_rejections(cluster: Cluster) -> None:
    """After every rejection above, clients still get messages committed and the run verifies."""
    cluster.start_client(1, [f"after rejections {index}" for index in range(30)])
    cluster.wait_clients()
    cluster.settle()
    cluster.close()

    assert_verified(cluster.options.data_dir)
    assert "sync 1" in all_rejections(cluster.options.data_dir)


# --- Foreign keys and rotation --------------------------------------------------------------


def new_ring(*keys: bytes) -> KeyRing:
    return KeyRing(keys, "a test key ring")


def stop(local: LocalCluster, role: str, node: int) -> None:
    process = local.processes[(role, node)]
    if process.pid is not None and process.is_alive():
        os.kill(process.pid, signal.SIGTERM)
    process.join(10)
    assert process.exitcode == 0


class ForeignKeyCluster(Cluster):
    """A cluster whose sync node 3 has a key of its own from the start."""

    def __init__(self, data_dir: Path) -> None:
        self.options = RunOptions(sync=3, store=2, clients=2, data_dir=data_dir, seed=5)
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.local = LocalCluster(self.options)
        self.local.write_layout()
        shared = self.local.keys
        for role, node in (("store", 1), ("store", 2), ("sync", 1), ("sync", 2)):
            self.local.start(role, node)
        self.local.keys = new_ring(secrets.token_bytes(32))
        self.local.start("sync", 3)
        self.local.keys = shared


def test_node_with_other_key_cannot_join(tmp_path: Path) -> None:
    """A sync node started with another key never learns a leader; the others keep committing."""
    data_dir = tmp_path / "data"
    cluster = ForeignKeyCluster(data_dir)
    try:
        cluster.ready_leader()
        cluster.start_client(1, [f"without sync 3: {index}" for index in range(40)])
        cluster.wait_clients()
        for node in (1, 2, 3):
            wait_for(lambda node=node: rejection_counts(data_dir, "sync", node).get("unknown_key"), 10,
                     f"sync {node} to reject the other key")
        outsider = next(s for s in cluster.statuses() if s.role == "sync" and s.node == 3)
        cluster.settle()
    finally:
        cluster.close()

    assert outsider.reply is not None
    assert outsider.reply.leader == 0
    assert outsider.reply.term == 0
    assert_verified(data_dir)


def test_key_rotation_without_downtime(tmp_path: Path) -> None:
    """Rolling restarts through the rings [A, B], [B, A] and [B] keep every connection authenticated.

    A client sends throughout, and after each restart the cluster acknowledges
    more of its messages; no node ever reports a rejected connection.
    """
    data_dir = tmp_path / "data"
    cluster = Cluster(data_dir, sync=3, store=2)
    old_key, new_key = cluster.local.keys.send_key, secrets.token_bytes(32)
    nodes = [("store", 1), ("store", 2), ("sync", 1), ("sync", 2), ("sync", 3)]
    try:
        cluster.ready_leader()
        cluster.start_client(1, [f"rotation {index}" for index in range(1_000_000)])
        for ring in (new_ring(old_key, new_key), new_ring(new_key, old_key), new_ring(new_key)):
            cluster.local.keys = ring
            for role, node in nodes:
                acked = cluster.local.acknowledged()
                stop(cluster.local, role, node)
                cluster.local.start(role, node)
                cluster.ready_leader()
                wait_for(lambda acked=acked: cluster.local.acknowledged() > acked, 20,
                         f"a message acknowledged after restarting {role} {node}")
        sender = cluster.local.processes[("client", 1)]
        os.kill(sender.pid or 0, signal.SIGTERM)
        sender.join(10)
        cluster.start_client(2, [f"after rotation {index}" for index in range(50)])
        wait_for(lambda: not cluster.local.processes[("client", 2)].is_alive(), 30, "client 2 to finish")
        cluster.settle()
    finally:
        cluster.close()

    assert cluster.local.processes[("client", 2)].exitcode == 0
    assert all_rejections(data_dir) == {}
    assert_verified(data_dir)
