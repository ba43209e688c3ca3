"""Add up what the sequential write path costs on this machine before any protocol logic runs.

Run from the repository root with the package installed:

    python benchmarks/latency_budget.py [--round-trips 5000] [--fsyncs 1000]

A message crosses six connections in a row (client, leader, primary,
backup, primary, leader, client) and waits for two fsync stages: the
store members' write-ahead logs, which three processes write at the same
time, and then `output.txt`. This script measures each of those costs on
its own, with no node running:

- the one-way latency between two processes over loopback TCP, as half of
  the p50 round trip of a 200-byte message, with blocking sockets, with
  asyncio streams on the standard event loop and with the same streams on
  uvloop, the loop the nodes run on. Each is measured with both processes
  pinned to one core and with them pinned to two. A wake-up on another
  core costs more, and nine node and client processes on two cores cannot
  all share one. Those round trips follow each other at once, so both
  processes stay busy. On the write path each node sleeps about 1 ms
  between its turns, so uvloop on two cores is measured once more with a
  pause of 1 ms before each round trip, during which the echo process
  sleeps in epoll;
- the p50 of appending one 120-byte line and syncing it the way the nodes
  do (`cluster.files.fsync_data`), each after a pause of 1 ms, for one writer
  and for the slowest of three writers that start together, in a
  temporary directory like the benchmarks' data directories;
- encoding and decoding each message of the path with the cluster's own
  codec, with the HMAC seal and check for the peer messages.

For each kind of hop, the sum of six one-way hops, both fsync stages and
the six frames estimates a floor. An implementation of this design that
spent no time on its own logic would still take about that long here.
The floor is an estimate because it adds medians, and the median of a
sum can be lower. The script prints it and writes it to
`benchmarks/results/latency_budget.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import machine
from auth_bench import connected_pair
from wire_bench import frames_per_second

from cluster import wire
from cluster.core.messages import (
    ClientReply,
    ClientRequest,
    Entry,
    Replicate,
    ReplicateReply,
    ReplyStatus,
    Write,
    WriteAck,
)
from cluster.event_loop import run_event_loop
from cluster.files import fsync_data

ROOT = Path(__file__).resolve().parent.parent
HOPS = 6
TARGET_P50_MS = 0.8
MESSAGE_BYTES = 200
LINE = b"x" * 119 + b"\n"
STORE_WRITERS = 3
SYNC_PAUSE_SECONDS = 0.001
# A node waits about this long between its turns on the sequential path. A
# process that slept that long wakes up slower than one that was busy.
IDLE_SECONDS = 0.001
# Round trips after an idle pause take over 1 ms each, so they run this many times fewer.
IDLE_ROUND_TRIP_SHARE = 2
# The transport of the node processes. The benchmark report quotes its two-core floor.
NODE_TRANSPORT = "uvloop streams"
# The node transport between processes that were idle, as on the write path. The report quotes its floor too.
IDLE_TRANSPORT = f"{NODE_TRANSPORT}, two cores, after {IDLE_SECONDS * 1000:g} ms idle"


# --- Loopback hops ---------------------------------------------------------------------


def _echo_blocking(listener: socket.socket) -> None:
    """Send every read back to the peer until it closes, with blocking calls."""
    connection, _ = listener.accept()
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with connection:
        while data := connection.recv(65536):
            connection.sendall(data)


def _echo_asyncio(listener: socket.socket, run: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run) -> None:
    """Send every read back to the peer until it closes, on the event loop that `run` starts."""

    async def serve() -> None:
        closed = asyncio.Event()

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(65536):
                writer.write(data)
            writer.close()
            closed.set()

        server = await asyncio.start_server(echo, sock=listener)
        async with server:
            await closed.wait()

    run(serve())


def _echo_uvloop(listener: socket.socket) -> None:
    _echo_asyncio(listener, run_event_loop)


def _blocking_round_trips(address: tuple[str, int], count: int) -> list[float]:
    message = b"m" * MESSAGE_BYTES
    times = []
    with socket.create_connection(address) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            start = time.perf_counter()
            connection.sendall(message)
            received = 0
            while received < MESSAGE_BYTES:
                received += len(connection.recv(65536))
            times.append(time.perf_counter() - start)
    return times


def _asyncio_round_trips(address: tuple[str, int], count: int,
                         run_loop: Callable[[Coroutine[Any, Any, list[float]]], list[float]] = asyncio.run,
                         pause: float = 0.0) -> list[float]:
    async def run() -> list[float]:
        message = b"m" * MESSAGE_BYTES
        reader, writer = await asyncio.open_connection(*address)
        times = []
        for _ in range(count):
            if pause:
                await asyncio.sleep(pause)
            start = time.perf_counter()
            writer.write(message)
            await reader.readexactly(MESSAGE_BYTES)
            times.append(time.perf_counter() - start)
        writer.close()
        await writer.wait_closed()
        return times

    return run_loop(run())


def _uvloop_round_trips(address: tuple[str, int], count: int) -> list[float]:
    return _asyncio_round_trips(address, count, run_event_loop)


def _uvloop_round_trips_after_idle(address: tuple[str, int], count: int) -> list[float]:
    # The echo process waits in epoll for IDLE_SECONDS before each round trip,
    # as the nodes do between the steps of sequential writes.
    return _asyncio_round_trips(address, count // IDLE_ROUND_TRIP_SHARE, run_event_loop, IDLE_SECONDS)


def _pinned(echo: Callable[[socket.socket], None], core: int, listener: socket.socket) -> None:
    os.sched_setaffinity(0, {core})
    echo(listener)


def one_way_us(echo: Callable[[socket.socket], None],
               round_trips: Callable[[tuple[str, int], int], list[float]], cores: tuple[int, int],
               count: int) -> float:
    """Return half the p50 round trip, in µs, between this process on `cores[0]` and an echo process on `cores[1]`."""
    allowed = os.sched_getaffinity(0)
    listener = socket.create_server(("127.0.0.1", 0))
    server = multiprocessing.get_context("fork").Process(target=_pinned, args=(echo, cores[1], listener))
    server.start()
    try:
        os.sched_setaffinity(0, {cores[0]})
        times = round_trips(listener.getsockname()[:2], count)
    finally:
        os.sched_setaffinity(0, allowed)
        listener.close()
        server.join(timeout=10)
        if server.is_alive():
            server.kill()
    return statistics.median(times) / 2 * 1e6


# --- fsync stages ----------------------------------------------------------------------------


def _append_and_fsync(path: Path, count: int, barrier: Barrier | None, results: Connection) -> None:
    """Append `count` lines to `path`, sync after each, and send the times; wait on `barrier` before each."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    times = []
    try:
        for _ in range(count):
            # On the write path a node syncs once per message, after an idle
            # pause. Back-to-back syncs took about 50 µs less on this machine.
            time.sleep(SYNC_PAUSE_SECONDS)
            if barrier is not None:
                barrier.wait()
            start = time.perf_counter()
            os.write(fd, LINE)
            fsync_data(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
    results.send(times)
    results.close()


def fsync_stage_us(directory: Path, writers: int, count: int) -> float:
    """Return the p50, in µs, of the slowest of `writers` processes that append and fsync together."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(writers) if writers > 1 else None
    pipes = [context.Pipe(duplex=False) for _ in range(writers)]
    processes = [
        context.Process(target=_append_and_fsync, args=(directory / f"writer_{index}.log", count, barrier, sender))
        for index, (_, sender) in enumerate(pipes)
    ]
    for process in processes:
        process.start()
    per_writer = [receiver.recv() for receiver, _ in pipes]
    for process in processes:
        process.join()
    slowest = [max(times) for times in zip(*per_writer, strict=True)]
    return float(statistics.median(slowest)) * 1e6


# --- Frames ------------------------------------------------------------------------------------


def path_messages() -> list[tuple[str, wire.Message, bool]]:
    """Return the six messages a sequential write sends, each with whether it travels between nodes."""
    entry = Entry(seq=1001, term=3, lamport=2002, client_id=1, request_id=501, text="m" * 100)
    return [
        ("ClientRequest", ClientRequest(1, 501, 2001, entry.text), False),
        ("Write", Write(3, 4, 2, (entry,)), True),
        ("Replicate", Replicate(2, 1, 1000, (entry,), 1000), True),
        ("ReplicateReply", ReplicateReply(2, 2, True, 1001), True),
        ("WriteAck", WriteAck(3, 2, 1001), True),
        ("ClientReply", ClientReply(ReplyStatus.OK, 1, 501, 1001, 3, 2002, 4, 502), False),
    ]


def frame_us(message: wire.Message, between_nodes: bool) -> float:
    """Return the µs to encode and decode `message`, sealed and checked when it travels between nodes."""
    if not between_nodes:

        def plain() -> None:
            wire.decode_payload(wire.encode(message)[wire.LENGTH_BYTES :])

        return 1e6 / frames_per_second(plain)
    acceptor, connector = connected_pair()

    def sealed() -> None:
        envelope = connector.seal(wire.encode(message))[wire.LENGTH_BYTES :]
        wire.decode_payload(acceptor.receive_data(envelope))

    return 1e6 / frames_per_second(sealed)


# --- Budget ---------------------------------------------------------------------------------


def unavailable() -> str | None:
    """Return why the budget cannot be measured on this machine, or None when it can."""
    if "fork" not in multiprocessing.get_all_start_methods() or not hasattr(os, "sched_setaffinity"):
        return "this platform cannot fork or pin processes to cores, which the hop measurements need"
    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        return f"this process may run on {cores} core only, and the hop measurements need 2"
    return None


def measure(round_trips: int, fsyncs: int) -> dict[str, Any]:
    """Measure every part of the budget and return them with the floors, in the result file's layout."""
    cores = sorted(os.sched_getaffinity(0))
    placements = {"one core": (cores[0], cores[0]), "two cores": (cores[0], cores[1])}
    hop = {
        f"{name}, {placement}": one_way_us(echo, round_trips_of, pair, round_trips)
        for placement, pair in placements.items()
        for name, echo, round_trips_of in (
            ("blocking sockets", _echo_blocking, _blocking_round_trips),
            ("asyncio streams", _echo_asyncio, _asyncio_round_trips),
            (NODE_TRANSPORT, _echo_uvloop, _uvloop_round_trips),
        )
    }
    hop[IDLE_TRANSPORT] = one_way_us(_echo_uvloop, _uvloop_round_trips_after_idle, placements["two cores"],
                                     round_trips)
    with tempfile.TemporaryDirectory(prefix="latency-budget-") as directory:
        store_stage = fsync_stage_us(Path(directory), STORE_WRITERS, fsyncs)
        output_stage = fsync_stage_us(Path(directory), 1, fsyncs)
    frames = {name: frame_us(message, between_nodes) for name, message, between_nodes in path_messages()}
    fixed = store_stage + output_stage + sum(frames.values())
    return {
        "one_way_hop_us": {name: round(value, 1) for name, value in hop.items()},
        "store_fsync_stage_us": round(store_stage, 1),
        "output_fsync_stage_us": round(output_stage, 1),
        "frame_us": {name: round(value, 1) for name, value in frames.items()},
        "floor_ms": {name: round((HOPS * value + fixed) / 1000, 3) for name, value in hop.items()},
        "target_p50_ms": TARGET_P50_MS,
    }


def report_lines(budget: dict[str, Any]) -> list[str]:
    lines = [f"one-way loopback hop, {name}: {value:.1f} µs" for name, value in budget["one_way_hop_us"].items()]
    lines.append(f"store log fsync stage, slowest of {STORE_WRITERS} writers: {budget['store_fsync_stage_us']:.1f} µs")
    lines.append(f"output.txt fsync stage, 1 writer: {budget['output_fsync_stage_us']:.1f} µs")
    lines += [f"frame {name}: {value:.1f} µs" for name, value in budget["frame_us"].items()]
    lines += [f"floor with {name}: {value:.3f} ms ({HOPS} hops, 2 fsync stages, {len(budget['frame_us'])} frames);"
              f" the p50 target is {budget['target_p50_ms']} ms" for name, value in budget["floor_ms"].items()]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=5000, help="round trips per transport (default 5000)")
    parser.add_argument("--fsyncs", type=int, default=1000, help="appends per fsync measurement (default 1000)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latency_budget.json",
                        help="result file (default benchmarks/results/latency_budget.json)")
    args = parser.parse_args()
    reason = unavailable()
    if reason is not None:
        parser.error(reason)
    if not 100 <= args.round_trips <= 1_000_000:
        parser.error(f"--round-trips {args.round_trips} is out of range; use 100 to 1000000")
    if not 100 <= args.fsyncs <= 100_000:
        parser.error(f"--fsyncs {args.fsyncs} is out of range; use 100 to 100000")

    load_before = machine.load_average()
    budget = measure(args.round_trips, args.fsyncs)
    for line in report_lines(budget):
        print(line)

    machine.write_result(args.out, budget, load_before)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
