"""Tests of a real client process against a scripted sync node on loopback.

The sync node runs in a thread of the test process. It acknowledges the
first requests it receives and leaves the rest unanswered, so the client keeps running
until the test stops it.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cluster import wire
from cluster.core.messages import ClientReply, ClientRequest, ReplyStatus
from cluster.files import client_log_path
from cluster.node.settings import NodeAddress, NodeSettings

WINDOW = 4
TEXTS = tuple(f"message {index}" for index in range(1, 21))
TIMEOUT_SECONDS = 10.0


@dataclass
class ScriptedNode:
    """A sync node that acknowledges the first `ack_limit` requests, or replies to each with an invalid frame."""

    ack_limit: int
    send_invalid: bool = False
    port: int = 0
    connections: int = 0
    acknowledged: list[int] = field(default_factory=list)
    requests: list[ClientRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def counts(self) -> tuple[int, int, int]:
        with self.lock:
            return self.connections, len(self.requests), len(self.acknowledged)

    async def serve(self, ready: threading.Event, stop: asyncio.Event) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await stop.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self.lock:
            self.connections += 1
        try:
            while True:
                message = await wire.read_frame(reader)
                assert isinstance(message, ClientRequest)
                with self.lock:
                    self.requests.append(message)
                    if self.send_invalid:
                        writer.write(struct.pack(">I", 3) + b"\x01{]")
                        continue
                    if len(self.acknowledged) >= self.ack_limit or message.request_id in self.acknowledged:
                        continue
                    self.acknowledged.append(message.request_id)
                reply = ClientReply(ReplyStatus.OK, message.client_id, message.request_id,
                                    len(self.acknowledged), 1, message.lamport + 1, 1, 0)
                writer.write(wire.encode(reply))
        except (EOFError, ConnectionError, wire.ProtocolError):
            pass
        finally:
            writer.close()


@pytest.fixture
def node_factory() -> Iterator[Any]:
    stops: list[tuple[asyncio.AbstractEventLoop, asyncio.Event, threading.Thread]] = []

    def start(ack_limit: int, send_invalid: bool = False) -> ScriptedNode:
        node = ScriptedNode(ack_limit, send_invalid)
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        ready = threading.Event()
        thread = threading.Thread(target=loop.run_until_complete, args=(node.serve(ready, stop),), daemon=True)
        thread.start()
        assert ready.wait(TIMEOUT_SECONDS)
        stops.append((loop, stop, thread))
        return node

    yield start
    for loop, stop, thread in stops:
        loop.call_soon_threadsafe(stop.set)
        thread.join(TIMEOUT_SECONDS)


def run_client_process(settings: NodeSettings) -> None:
    from cluster.node.main import run_node

    # os._exit skips the exit handlers that the forked child inherited from pytest.
    os._exit(run_node(settings, settings.data_dir / "client.log"))


def start_client(data_dir: Path, port: int, rate: float | None = None) -> Any:
    settings = NodeSettings(role="client", node_id=1, sync_nodes=(NodeAddress("127.0.0.1", port, 0),),
                            store_nodes=(), data_dir=data_dir, texts=TEXTS, window=WINDOW, rate=rate)
    process = multiprocessing.get_context("fork").Process(target=run_client_process, args=(settings,))
    process.start()
    return process


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {TIMEOUT_SECONDS} s waiting for {what}")
        time.sleep(0.01)


def log_events(data_dir: Path, name: str) -> list[dict[str, Any]]:
    path = client_log_path(data_dir, 1)
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [record for record in records if record["event"] == name]


def stop(process: Any) -> int:
    if process.is_alive():
        os.kill(process.pid, signal.SIGTERM)
    process.join(TIMEOUT_SECONDS)
    if process.is_alive():
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        raise AssertionError("client did not stop within the timeout after SIGTERM")
    exit_code: int = process.exitcode
    return exit_code


def test_log_lines_written_while_running(tmp_path: Path, node_factory: Any) -> None:
    node = node_factory(ack_limit=6)
    process = start_client(tmp_path, node.port)
    try:
        wait_until(lambda: node.counts()[2] == 6, "six acknowledgements")

        wait_until(lambda: len(log_events(tmp_path, "acked")) == 6, "six acked lines in the client log")
        assert process.is_alive()
        assert len(log_events(tmp_path, "sent")) == 6 + WINDOW
    finally:
        stop(process)


def test_sigterm_leaves_complete_log(tmp_path: Path, node_factory: Any) -> None:
    node = node_factory(ack_limit=9)
    process = start_client(tmp_path, node.port)
    wait_until(lambda: node.counts()[2] == 9, "nine acknowledgements")

    exit_code = stop(process)

    assert exit_code == 1  # messages remain unacknowledged
    lines = client_log_path(tmp_path, 1).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0]["event"] == "started"
    assert records[-1]["event"] == "finished"
    assert records[-1]["acknowledged"] == 9
    assert [record["request_id"] for record in records if record["event"] == "acked"] == node.acknowledged
    assert [record["request_id"] for record in records if record["event"] == "sent"] == list(range(1, 9 + WINDOW + 1))


def test_all_acknowledged_exits_zero(tmp_path: Path, node_factory: Any) -> None:
    node = node_factory(ack_limit=len(TEXTS))
    process = start_client(tmp_path, node.port)

    process.join(TIMEOUT_SECONDS)

    assert process.exitcode == 0
    assert len(log_events(tmp_path, "acked")) == len(TEXTS)
    assert node.acknowledged == list(range(1, len(TEXTS) + 1))


def test_invalid_reply_closes_and_resends(tmp_path: Path, node_factory: Any) -> None:
    """A reply that breaks the wire format closes the connection, and the client resends on a new one."""
    node = node_factory(ack_limit=0, send_invalid=True)
    process = start_client(tmp_path, node.port)
    try:
        wait_until(lambda: node.counts()[0] >= 2, "a second connection")

        first_requests = [request.request_id for request in node.requests[:WINDOW]]
        assert first_requests == list(range(1, WINDOW + 1))
        assert process.is_alive()
    finally:
        stop(process)

    client_log = (tmp_path / "client.log").read_text(encoding="utf-8")
    assert "closing connection from sync 1: payload is not valid JSON" in client_log


def test_pause_and_resume_logs_no_error(tmp_path: Path, node_factory: Any) -> None:
    """A rate-limited client paused past its tick times (SIGSTOP, then SIGCONT) catches up without an error."""
    node = node_factory(ack_limit=5)
    process = start_client(tmp_path, node.port, rate=30)
    try:
        wait_until(lambda: len(log_events(tmp_path, "acked")) >= 5, "the first acknowledgements")
        os.kill(process.pid, signal.SIGSTOP)
        time.sleep(1.0)  # the length of the pause, longer than the client's resend timeout
        requests_before = node.counts()[1]
        os.kill(process.pid, signal.SIGCONT)
        # More than one window of requests means a second round of resends, from a tick scheduled after the pause.
        wait_until(lambda: node.counts()[1] > requests_before + WINDOW, "two rounds of resends after the pause")
    finally:
        os.kill(process.pid, signal.SIGCONT)
        stop(process)

    log = (tmp_path / "client.log").read_text(encoding="utf-8")
    assert "Traceback" not in log
    assert "ERROR" not in log
