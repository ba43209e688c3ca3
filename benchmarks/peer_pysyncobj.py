"""The PySyncObj peer: a 3-node Raft cluster (PySyncObj 0.3.17) replicating the same appends.

Each node is its own process on 127.0.0.1 with a journal file. PySyncObj has
no client protocol of its own, so the load runs inside the leader's process:
`clients` callers, each with up to `window` appends in flight, and every
append's latency is measured from the call to its commit callback. That
spares PySyncObj the client hop and the client processes that the cluster
under test pays for.

NOTE: PySyncObj 0.3.17 writes its journal through mmap and has no option to
fsync each entry, so its figures are for weaker durability than ours.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

READY_SECONDS = 20.0


def available() -> str | None:
    """Return None when PySyncObj can be imported, else why not."""
    try:
        import pysyncobj  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return "pysyncobj is not installed (pip install pysyncobj==0.3.17)"
    return None


def _node(index: int, addresses: list[str], journal: str, conn: Connection) -> None:
    from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated

    class Log(SyncObj):  # type: ignore[misc]
        def __init__(self) -> None:
            others = [address for i, address in enumerate(addresses) if i != index]
            super().__init__(addresses[index], others, SyncObjConf(journalFile=journal, dynamicMembershipChange=False))
            self.length = 0

        @replicated  # type: ignore[untyped-decorator]
        def append(self, text: str) -> int:
            self.length += 1
            return self.length

    log = Log()
    deadline = time.monotonic() + READY_SECONDS
    while log._getLeader() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    conn.send(log._isLeader())
    command = conn.recv()
    if command is None:
        conn.recv()  # a follower serves the leader until it is told to stop
        return
    clients, window, seconds, warmup, size = command

    lock = threading.Lock()
    stopping = threading.Event()
    state: dict[str, Any] = {"count": 0, "latencies": [], "measuring": False, "errors": {}}
    text = "x" * size

    def issue() -> None:
        started = time.perf_counter()

        def done(_result: object, error: int) -> None:
            if error == FAIL_REASON.SUCCESS:
                elapsed = time.perf_counter() - started
                with lock:
                    if state["measuring"]:
                        state["count"] += 1
                        state["latencies"].append(round(elapsed * 1000, 3))
            else:
                with lock:
                    state["errors"][error] = state["errors"].get(error, 0) + 1
            if not stopping.is_set():
                issue()

        log.append(text, callback=done)

    for _slot in range(clients * window):
        issue()
    time.sleep(warmup)
    with lock:
        state["measuring"] = True
    begun = time.perf_counter()
    time.sleep(seconds)
    with lock:
        state["measuring"] = False
        measured = time.perf_counter() - begun
        count, latencies, errors = state["count"], list(state["latencies"]), dict(state["errors"])
    stopping.set()
    conn.send({"count": count, "seconds": measured, "latencies_ms": latencies, "errors": errors})


def load_run(workdir: Path, ports: list[int], clients: int, window: int, seconds: float, warmup: float,
             size: int) -> dict[str, Any]:
    """Start a fresh 3-node cluster, run the load in the leader and return rate and latencies."""
    workdir.mkdir(parents=True, exist_ok=True)
    addresses = [f"127.0.0.1:{port}" for port in ports]
    context = multiprocessing.get_context("spawn")
    pipes = []
    processes = []
    for index in range(3):
        parent, child = context.Pipe()
        journal = workdir / f"journal_{index}"
        journal.unlink(missing_ok=True)
        process = context.Process(target=_node, args=(index, addresses, str(journal), child), daemon=True)
        process.start()
        pipes.append(parent)
        processes.append(process)
    try:
        leaders = [pipe.recv() if pipe.poll(READY_SECONDS + 10) else False for pipe in pipes]
        if leaders.count(True) != 1:
            raise RuntimeError(f"PySyncObj elected no single leader: {leaders}")
        leader = leaders.index(True)
        for index, pipe in enumerate(pipes):
            pipe.send((clients, window, seconds, warmup, size) if index == leader else None)
        if not pipes[leader].poll(seconds + warmup + 30):
            raise RuntimeError("PySyncObj leader did not report its load run in time")
        result: dict[str, Any] = pipes[leader].recv()
        for index, pipe in enumerate(pipes):
            if index != leader:
                pipe.send("stop")
    finally:
        for process in processes:
            process.join(2)
            if process.is_alive():
                process.kill()
                process.join()
    return result
