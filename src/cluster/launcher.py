"""`cluster run`: a whole cluster on this machine, one operating-system process per node.

The launcher picks free loopback ports, starts N sync nodes and M store nodes,
then K clients, prints progress while the clients send, optionally kills and
restarts the sync leader and the store primary (`--chaos`), waits for the
store to settle, stops every node with SIGTERM and verifies the data
directory. Each run writes a new random cluster key to `cluster.key` in the
data directory (mode 0600) and gives it to every sync and store node.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import multiprocessing
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from cluster.core.bugs import Bug
from cluster.core.messages import MAX_TEXT_BYTES
from cluster.error_text import describe_os_error
from cluster.exits import crashes, flock_holders, is_paused, outside_stops
from cluster.files import DataFileError, layout_path, output_lock_path
from cluster.i18n import _
from cluster.net.auth import KeyRing, generate_key, load_key_file, write_key_file
from cluster.node.settings import KEY_FILE_NAME, NodeAddress, NodeSettings
from cluster.status import STATUS_TIMEOUT_SECONDS, NodeStatus, query_all
from cluster.verify import Report

HOST = "127.0.0.1"
STOP_SECONDS = 5.0
# Exit status of a node process stopped by a damaged data file.
EXIT_DATA_FILE_ERROR = 2
# Files a run creates; `--fresh` removes exactly these.
RUN_FILE_PATTERNS = (
    "output.txt", "output.lock", "output.fence", "backup_*.txt", "store_*.wal", "store_*.state.json",
    "sync_*.state.json", "events_*.jsonl", "client_*.jsonl", "cluster.json", KEY_FILE_NAME, "logs/*.log",
)
# The lock file of `lock_data_dir`. `--fresh` leaves it in place, because
# removing a lock file that another process may hold breaks the lock.
RUN_LOCK_NAME = "run.lock"


class RunError(ValueError):
    """Bad input to `cluster run`; the message names the value and the fix."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    sync: int = 5
    store: int = 3
    clients: int = 5
    messages: int = 50
    data_dir: Path = Path("shared_data")
    input_file: Path | None = None
    seed: int | None = None
    chaos: bool = False
    fresh: bool = False
    bugs: frozenset[Bug] = frozenset()
    window: int = 32
    rate: float | None = None  # new messages per second per client; None for as fast as possible
    trace_messages: bool = False  # sync and store nodes log every peer message they send and receive


# With --chaos and no --rate, clients spread their messages over about this
# many seconds, so the kills land while they are still sending.
CHAOS_SEND_SECONDS = 3.0


def client_rate(options: RunOptions, texts: list[list[str]]) -> float | None:
    """Return the per-client send rate: `--rate`, or a pace that makes a chaos run last."""
    if options.rate is not None or not options.chaos:
        return options.rate
    longest = max((len(client_texts) for client_texts in texts), default=0)
    return max(1.0, longest / CHAOS_SEND_SECONDS)


@dataclass(slots=True)
class RunSummary:
    report: Report
    committed: int
    seconds: float
    leader: NodeStatus | None
    primary: NodeStatus | None
    kills: list[str] = field(default_factory=list)
    elections: int = 0
    epochs: int = 0
    exited: list[tuple[str, int, int | None]] = field(default_factory=list)  # see LocalCluster.unexpected_exits
    paused_outside: list[tuple[str, int]] = field(default_factory=list)  # see LocalCluster.paused_outside
    paused_lock_holder: tuple[str, int] | None = None  # the process of `paused_outside` that holds output.lock
    clients_finished: bool = True
    settled: bool = True  # the store caught up with the leader before the nodes stopped

    @property
    def crashed(self) -> list[tuple[str, int, int | None]]:
        """The nodes in `exited` that crashed, which fails the run (see cluster.exits)."""
        return crashes(self.exited)

    @property
    def stopped_outside(self) -> list[tuple[str, int, int | None]]:
        """The nodes in `exited` that a signal from outside the run stopped."""
        return outside_stops(self.exited)


# --- Input ---------------------------------------------------------------------------


def load_texts(options: RunOptions) -> list[list[str]]:
    """Return each client's messages: generated, or the lines of `--input` split among clients."""
    if options.input_file is None:
        return [
            [f"client {client} message {index}" for index in range(1, options.messages + 1)]
            for client in range(1, options.clients + 1)
        ]

    path = options.input_file
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RunError(_("cannot read --input {path}: {reason}; pass a UTF-8 text file with one message per "
                         "line").format(path=path, reason=describe_os_error(error))) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        bad_line = data[: error.start].count(b"\n") + 1
        raise RunError(
            _("--input {path} line {line} is not valid UTF-8; convert the file to UTF-8").format(
                path=path, line=bad_line)
        ) from None

    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    texts: list[list[str]] = [[] for _client in range(options.clients)]
    for number, raw_line in enumerate(lines, start=1):
        line = raw_line.removesuffix("\r")
        size = len(line.encode("utf-8"))
        if size > MAX_TEXT_BYTES:
            raise RunError(
                _("--input {path} line {line} is {size} bytes; the limit is {limit} bytes per message, "
                  "so split that line").format(path=path, line=number, size=size, limit=MAX_TEXT_BYTES)
            )
        texts[(number - 1) % options.clients].append(line)
    return texts


def check_options(options: RunOptions) -> None:
    limits = {"--sync": (options.sync, 1, 9), "--store": (options.store, 1, 9),
              "--clients": (options.clients, 1, 200), "--messages": (options.messages, 0, 1_000_000)}
    for flag, (value, low, high) in limits.items():
        if not low <= value <= high:
            raise RunError(_("{flag} must be from {low} to {high}, got {value}").format(
                flag=flag, low=low, high=high, value=value))
    if options.rate is not None and not 0 < options.rate <= 1_000_000:
        raise RunError(_("--rate must be above 0 and at most 1000000 messages per second, got {rate}").format(
            rate=options.rate))
    if options.chaos and options.sync < 3:
        raise RunError(_("--chaos needs at least 3 sync nodes to survive killing the leader, got --sync {n}").format(
            n=options.sync))
    if options.chaos and options.store < 2:
        raise RunError(_("--chaos needs at least 2 store nodes to survive killing the primary, got --store {n}").format(
            n=options.store))


@contextlib.contextmanager
def lock_data_dir(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on DATA_DIR/run.lock, creating the directory, or raise RunError when it is held.

    A run holds the lock from before `prepare_data_dir` until it has verified
    the directory, so a second run on the same directory stops before it
    removes or writes anything. Node processes started with fork share the
    lock, so it stays held until the last of them exits.
    """
    _check_is_directory(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        # A parent that is a file, or a read-only or missing mount, would otherwise end in a traceback.
        raise RunError(_("cannot create --data-dir {path}: {reason}; pass a directory you can write to").format(
            path=data_dir, reason=describe_os_error(error))) from None
    try:
        fd = os.open(data_dir / RUN_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise RunError(_("cannot create {path}: {reason}; pass a --data-dir you can write to").format(
            path=data_dir / RUN_LOCK_NAME, reason=describe_os_error(error))) from None
    busy = _("--data-dir {path} is in use by another `cluster run`; wait for that run to finish, "
             "or pass another --data-dir").format(path=data_dir)
    with _flocked(fd, fcntl.LOCK_EX, busy):
        yield


@contextlib.contextmanager
def lock_data_dir_shared(data_dir: Path) -> Iterator[None]:
    """Hold a shared `flock` on DATA_DIR/run.lock while a finished run's files are read, or raise RunError.

    A run, or node processes it left behind, hold the lock exclusively, and
    their files change while they run, so a check of them could report a
    violation that the finished run would not have. Holding the lock shared
    also keeps a new run from starting on the directory meanwhile. A
    directory without `run.lock` was never locked by a run, and is read as it is.
    """
    try:
        fd = os.open(data_dir / RUN_LOCK_NAME, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        yield
        return
    except OSError as error:
        raise RunError(_("cannot open {path}: {reason}; check the permissions of the data directory").format(
            path=data_dir / RUN_LOCK_NAME, reason=describe_os_error(error))) from None
    busy = _("{path} is in use by a running cluster, whose files are still changing; wait for "
             "`cluster run` to finish, or stop its node processes, then verify again").format(path=data_dir)
    with _flocked(fd, fcntl.LOCK_SH, busy):
        yield


@contextlib.contextmanager
def _flocked(fd: int, operation: int, busy: str) -> Iterator[None]:
    """Hold the `flock` `operation` (LOCK_EX or LOCK_SH) on `fd`, then close `fd`; raise RunError(busy) if it is taken.

    Closing the last descriptor of the file releases the lock.
    """
    try:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(busy) from None
        yield
    finally:
        os.close(fd)


def _check_is_directory(data_dir: Path) -> None:
    if data_dir.exists() and not data_dir.is_dir():
        raise RunError(_("--data-dir {path} exists and is not a directory").format(path=data_dir))


def prepare_data_dir(options: RunOptions) -> None:
    """Create the data directory, or remove an earlier run's files with `--fresh`. Call it under `lock_data_dir`."""
    data_dir = options.data_dir
    _check_is_directory(data_dir)
    leftovers = [path for pattern in RUN_FILE_PATTERNS for path in data_dir.glob(pattern)]
    if leftovers and not options.fresh:
        raise RunError(
            _("--data-dir {path} holds files of an earlier run ({example}); pass --fresh to remove them, "
              "or choose another directory").format(path=data_dir, example=leftovers[0].name)
        )
    for path in leftovers:
        path.unlink()
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)


def free_ports(count: int) -> list[int]:
    """Return `count` distinct free TCP ports on the loopback address."""
    sockets = []
    try:
        for _index in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# --- Processes -------------------------------------------------------------------------


def _node_main(settings: NodeSettings, log_path: Path, acked: Any = None) -> None:
    from cluster.node.main import EXIT_NODE_FAILED, run_node
    from cluster.node.runtime import ListenError

    # The launcher handles Ctrl-C and stops every node with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    on_ack: Callable[[int], None] | None = None
    if acked is not None:
        def on_ack(count: int) -> None:
            acked[settings.node_id - 1] += count
    try:
        status = run_node(settings, log_path, on_ack)
    except DataFileError as error:
        # The run's summary sends the reader to the node's log, so the reason goes there too.
        # Without the print, multiprocessing would print a traceback around it.
        logging.getLogger(__name__).error("%s %d: %s", settings.role, settings.node_id, error)
        print(f"{settings.role} {settings.node_id}: {error}", file=sys.stderr)
        status = EXIT_DATA_FILE_ERROR
    except ListenError as error:
        # Another process took the free port this run picked before the node bound it.
        logging.getLogger(__name__).error("%s %d: %s", settings.role, settings.node_id, error)
        print(f"{settings.role} {settings.node_id}: {error}", file=sys.stderr)
        status = EXIT_NODE_FAILED
    sys.exit(status)


class LocalCluster:
    """The node processes of one local run."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        # fork starts a node in milliseconds; spawn, where fork is missing, re-imports the package.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self.context: Any = multiprocessing.get_context(method)
        ports = free_ports(2 * (options.sync + options.store))
        self.sync_nodes = tuple(NodeAddress(HOST, ports.pop(), ports.pop()) for _index in range(options.sync))
        self.store_nodes = tuple(NodeAddress(HOST, ports.pop(), ports.pop()) for _index in range(options.store))
        self.processes: dict[tuple[str, int], BaseProcess] = {}
        self.killed: set[tuple[str, int]] = set()  # nodes this run killed and has not restarted
        self.acked = self.context.Array("q", options.clients, lock=False)
        self.seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**31)
        # The key ring every node started from now on gets; a test may replace it between starts.
        self.keys = create_run_key(options.data_dir)

    def settings(
        self, role: str, node_id: int, texts: tuple[str, ...] = (), rate: float | None = None
    ) -> NodeSettings:
        nodes = self.sync_nodes if role == "sync" else self.store_nodes
        address = nodes[node_id - 1] if role != "client" else NodeAddress(HOST, 1, 1)
        return NodeSettings(
            role=role, node_id=node_id, sync_nodes=self.sync_nodes, store_nodes=self.store_nodes,
            data_dir=self.options.data_dir, bind_host=HOST, port=address.port, cluster_port=address.cluster_port,
            bugs=self.options.bugs, seed=self.seed * 1000 + node_id if role == "sync" else None,
            keys=self.keys if role != "client" else None, texts=texts, window=self.options.window,
            rate=rate, trace_messages=self.options.trace_messages and role != "client",
        )

    def write_layout(self) -> None:
        layout = {
            "sync_nodes": [str(address) for address in self.sync_nodes],
            "store_nodes": [str(address) for address in self.store_nodes],
        }
        layout_path(self.options.data_dir).write_text(json.dumps(layout, indent=2) + "\n", encoding="utf-8")

    def start(self, role: str, node_id: int, texts: tuple[str, ...] = (), rate: float | None = None) -> None:
        settings = self.settings(role, node_id, texts, rate)
        log_path = self.options.data_dir / "logs" / f"{role}_{node_id}.log"
        acked = self.acked if role == "client" else None
        process = self.context.Process(target=_node_main, args=(settings, log_path, acked),
                                       name=f"{role}-{node_id}", daemon=False)
        process.start()
        self.processes[(role, node_id)] = process
        self.killed.discard((role, node_id))

    def kill(self, role: str, node_id: int) -> None:
        process = self.processes[(role, node_id)]
        if process.pid is not None and process.is_alive():
            os.kill(process.pid, signal.SIGKILL)
        process.join()
        self.killed.add((role, node_id))

    def unexpected_exits(self) -> list[tuple[str, int, int | None]]:
        """Return (role, id, exit code) of each sync or store node that stopped although this run did not kill it.

        Call it before `stop_nodes`. A node stops on its own when a data file
        is damaged (exit code 2) or when one of its tasks raised (exit code 1).
        It also stops when another process sends it a signal. `cluster.exits`
        tells the two apart.
        """
        return [
            (role, node, process.exitcode)
            for (role, node), process in sorted(self.processes.items())
            if role != "client" and (role, node) not in self.killed and not process.is_alive()
        ]

    def paused_outside(self) -> list[tuple[str, int]]:
        """Return (role, id) of each node or client process that is stopped although this run did not pause it.

        Call it after the run resumed the nodes it paused, and before
        `stop_nodes`, which resumes every process so that it can handle SIGTERM.
        """
        return [
            (role, node)
            for (role, node), process in sorted(self.processes.items())
            if process.pid is not None and process.is_alive() and is_paused(process.pid)
        ]

    def paused_lock_holder(self, paused: list[tuple[str, int]]) -> tuple[str, int] | None:
        """Return the process of `paused` that holds the lock on output.lock, if one does."""
        holders = flock_holders(output_lock_path(self.options.data_dir))
        for role, node in paused:
            if self.processes[(role, node)].pid in holders:
                return role, node
        return None

    def pause(self, role: str, node_id: int) -> None:
        """Stop a node with SIGSTOP, as a long garbage-collection pause or a frozen VM would."""
        process = self.processes[(role, node_id)]
        if process.pid is not None and process.is_alive():
            os.kill(process.pid, signal.SIGSTOP)

    def resume(self, role: str, node_id: int) -> None:
        """Let a node stopped by `pause` run again (SIGCONT)."""
        process = self.processes[(role, node_id)]
        if process.pid is not None and process.is_alive():
            os.kill(process.pid, signal.SIGCONT)

    def stop_nodes(self) -> None:
        """SIGTERM the clients and sync nodes, then the store nodes; SIGKILL any that has not exited in time.

        The store nodes stop last: a leader that saw them go first would
        record them as failed and leave a configuration with fewer members
        for the next start.
        """
        first = [process for (role, _node), process in self.processes.items() if role != "store"]
        stores = [process for (role, _node), process in self.processes.items() if role == "store"]
        for group in (first, stores):
            for process in group:
                if process.is_alive() and process.pid is not None:
                    os.kill(process.pid, signal.SIGCONT)  # a paused node could not handle SIGTERM
                    os.kill(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_SECONDS
            for process in group:
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive() and process.pid is not None:
                    os.kill(process.pid, signal.SIGKILL)
                    process.join()

    def client_processes(self) -> list[BaseProcess]:
        return [process for (role, _node), process in self.processes.items() if role == "client"]

    def wait_ready(self, timeout: float) -> bool:
        """Wait until a leader's store epoch has a primary that answers; return False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            statuses = self.statuses()
            leader, primary = find_leader(statuses), find_primary(statuses)
            if leader and primary and leader.reply and primary.reply and leader.reply.epoch == primary.reply.epoch:
                return True
            time.sleep(0.05)
        return False

    def acknowledged(self) -> int:
        return int(sum(self.acked))

    def statuses(self, timeout: float = STATUS_TIMEOUT_SECONDS) -> list[NodeStatus]:
        """Query every node at once; a node that does not reply within `timeout` seconds is reported down."""
        nodes = [("sync", index, address.host, address.port) for index, address in enumerate(self.sync_nodes, 1)]
        nodes += [("store", index, address.host, address.port) for index, address in enumerate(self.store_nodes, 1)]
        return asyncio.run(query_all(nodes, timeout))


def create_run_key(data_dir: Path) -> KeyRing:
    """Write a new random key to DATA_DIR/cluster.key, replacing an earlier run's, and return its ring."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / KEY_FILE_NAME
    write_key_file(path, generate_key())
    return load_key_file(path, "the run's key file")


def find_leader(statuses: list[NodeStatus]) -> NodeStatus | None:
    leaders = [s for s in statuses if s.role == "sync" and s.reply is not None and s.reply.role == "leader"]
    return max(leaders, key=lambda s: s.reply.term if s.reply else 0, default=None)


def find_primary(statuses: list[NodeStatus]) -> NodeStatus | None:
    primaries = [s for s in statuses if s.role == "store" and s.reply is not None and s.reply.role == "primary"]
    return max(primaries, key=lambda s: s.reply.epoch if s.reply else 0, default=None)
