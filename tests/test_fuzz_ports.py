"""Fuzz the real node ports: malformed bytes and frames sent to running sync and store processes.

Every case must end that connection with an error the node logs or counts,
and the node must keep serving: afterwards every node answers StatusRequest,
a client still gets its messages committed and `cluster verify` passes.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster import wire
from cluster.net import auth
from tests.e2e_helpers import Cluster, wait_for
from tests.test_auth_e2e import rejection_counts
from tests.test_fuzz import ANY_MESSAGE, MAX_INT

pytestmark = pytest.mark.e2e

HOST = "127.0.0.1"
CLOSE_SECONDS = 5.0
PORTS = settings(
    max_examples=40,
    deadline=timedelta(seconds=6),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- Malformed input ------------------------------------------------------------------------


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def document_of(message: Any) -> dict[str, Any]:
    return dict(json.loads(wire.encode(message)[wire.LENGTH_BYTES + 1 :]))


def versioned(document: dict[str, Any]) -> bytes:
    return frame(bytes([wire.WIRE_VERSION]) + json.dumps(document).encode())


# A JSON value of another type than the original, for each original type.
WRONG_TYPES: dict[type, st.SearchStrategy[Any]] = {
    int: st.one_of(st.text(max_size=5), st.lists(st.integers(), max_size=2), st.none(), st.floats(0, 10)),
    bool: st.one_of(st.integers(0, 2), st.text(max_size=5), st.none()),
    str: st.one_of(st.integers(), st.lists(st.text(max_size=3), max_size=2), st.booleans()),
    list: st.one_of(st.integers(), st.text(max_size=5), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                        max_size=2)),
    dict: st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)),
}


@st.composite
def wrong_field_type(draw: st.DrawFn) -> bytes:
    document = draw(ANY_MESSAGE.map(document_of).filter(lambda document: len(document) > 1))
    name = draw(st.sampled_from(sorted(name for name in document if name != "type")))
    original = document[name]
    kind = type(original) if original is not None else dict
    document[name] = draw(WRONG_TYPES[kind])
    return versioned(document)


@st.composite
def huge_number(draw: st.DrawFn) -> bytes:
    document = draw(ANY_MESSAGE.map(document_of).filter(
        lambda document: any(type(value) is int for value in document.values())
    ))
    name = draw(st.sampled_from(sorted(name for name, value in document.items() if type(value) is int)))
    document[name] = draw(st.one_of(st.integers(MAX_INT + 1, 2**300), st.integers(-(2**64), -1)))
    return versioned(document)


@st.composite
def truncated(draw: st.DrawFn) -> bytes:
    data = wire.encode(draw(ANY_MESSAGE))
    return data[: draw(st.integers(1, len(data) - 1))]


@st.composite
def invalid_utf8(draw: st.DrawFn) -> bytes:
    body = json.dumps({"type": "StatusRequest"}).encode()
    position = draw(st.integers(0, len(body)))
    bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80", b"\xf8\x88\x80\x80\x80"]))
    return frame(bytes([wire.WIRE_VERSION]) + body[:position] + bad + body[position:])


OVERSIZED = st.integers(auth.MAX_PEER_FRAME_BYTES + 1, 2**32 - 1).map(
    lambda length: struct.pack(">I", length) + b"\x01"
)
UNKNOWN_TYPE = st.text(max_size=12).filter(lambda name: name not in wire._TABLES_BY_NAME).map(
    lambda name: versioned({"type": name})
)
PEER_ENVELOPES = st.tuples(st.integers(0, 6), st.binary(max_size=80)).map(
    lambda parts: frame(bytes([auth.PEER_WIRE_VERSION, parts[0]]) + parts[1])
)

MALFORMED = st.one_of(
    st.binary(min_size=1, max_size=300),
    st.binary(min_size=1, max_size=200).map(frame),
    truncated(),
    OVERSIZED,
    UNKNOWN_TYPE,
    wrong_field_type(),
    huge_number(),
    invalid_utf8(),
    PEER_ENVELOPES,
)


def send_then_wait_close(port: int, data: bytes) -> None:
    """Send `data`, end our side, and require the node to close the connection in time."""
    with socket.create_connection((HOST, port), timeout=CLOSE_SECONDS) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return  # the node closed first, which is what the case requires
        deadline = time.monotonic() + CLOSE_SECONDS
        while time.monotonic() < deadline:
            try:
                if sock.recv(4096) == b"":
                    return
            except ConnectionResetError:
                return
        raise AssertionError(f"port {port} kept the connection open after {data[:40]!r}")


def is_bare_open(data: bytes) -> bool:
    """Return True for exactly one OPEN frame: the start of a valid handshake, which ends without error."""
    return len(data) == 4 + 2 + auth.NONCE_BYTES and data[:6] == struct.pack(
        ">IBB", 2 + auth.NONCE_BYTES, auth.PEER_WIRE_VERSION, auth.FrameKind.OPEN
    )


# --- Checks on the running nodes ----------------------------------------------------------------


def log_lines(data_dir: Path, role: str, node: int, pattern: str) -> int:
    path = data_dir / "logs" / f"{role}_{node}.log"
    return len(re.findall(pattern, path.read_text(encoding="utf-8")))


CLIENT_ERROR = r"closing connection from client "
PEER_ERROR = r"closing connection from \d"


def peer_errors(data_dir: Path, role: str, node: int) -> int:
    """Errors on the cluster port: protocol errors logged one by one, plus authentication rejections."""
    return log_lines(data_dir, role, node, PEER_ERROR) + sum(rejection_counts(data_dir, role, node).values())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("fuzz-ports"), sync=3, store=2)
    try:
        running.ready_leader()
        yield running
    finally:
        running.close()


def port_of(cluster: Cluster, role: str, which: str) -> int:
    address = (cluster.local.sync_nodes if role == "sync" else cluster.local.store_nodes)[0]
    return address.port if which == "client" else address.cluster_port


@pytest.mark.parametrize("role", ["sync", "store"])
def test_client_port_fuzz(cluster: Cluster, role: str) -> None:
    """Each malformed input to a client port is logged as an error for that connection only."""
    data_dir = cluster.options.data_dir
    port = port_of(cluster, role, "client")
    before = log_lines(data_dir, role, 1, CLIENT_ERROR)
    sent = []

    @PORTS
    @given(MALFORMED)
    def run(data: bytes) -> None:
        send_then_wait_close(port, data)
        sent.append(data)

    run()

    assert log_lines(data_dir, role, 1, CLIENT_ERROR) - before >= len(sent)
    assert all(status.reply is not None for status in cluster.statuses())


@pytest.mark.parametrize("role", ["sync", "store"])
def test_cluster_port_fuzz(cluster: Cluster, role: str) -> None:
    """Each malformed input to a cluster port is rejected and counted, or logged as a protocol error."""
    data_dir = cluster.options.data_dir
    port = port_of(cluster, role, "cluster")
    before = peer_errors(data_dir, role, 1)
    expected = []

    @PORTS
    @given(MALFORMED)
    def run(data: bytes) -> None:
        send_then_wait_close(port, data)
        if not is_bare_open(data):
            expected.append(data)

    run()

    wait_for(lambda: peer_errors(data_dir, role, 1) - before >= len(expected), 10,
             f"{len(expected)} errors reported by {role} 1")
    assert all(status.reply is not None for status in cluster.statuses())


def test_cluster_serves_after_fuzz(cluster: Cluster) -> None:
    """After the fuzzing, a client gets every message committed and `cluster verify` passes."""
    cluster.start_client(1, [f"after fuzz {index}" for index in range(40)])
    cluster.wait_clients()
    cluster.settle()
    cluster.close()

    result = subprocess.run([sys.executable, "-m", "cluster", "verify", str(cluster.options.data_dir)],
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "verification passed" in result.stdout
