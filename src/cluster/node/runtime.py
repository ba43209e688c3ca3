"""The asyncio driver shared by sync and store node processes.

It feeds the protocol node one event at a time (a frame, a tick, the result
of a disk write) and carries out the effects it returns, in rounds:

1. collect the effects of every event handled since the last round;
2. send the messages marked eager, which promise nothing about this node's
   disk (the entries a primary forwards to its backups);
3. write the durable effects (state file, write-ahead log) with one fsync per
   file: this is the group commit;
4. only then send the other messages and replies of that round;
5. carry out the output-file operations of the sync leader, and extend the
   store node's backup file, whose entries the write-ahead log already holds.

The event log lines of a round are written just before step 4, so each
event is stamped before the messages that follow from it.

The writes run on the event loop's own thread (a sync node's output-file
operation moves to a worker thread only while another process holds the
output lock). On the benchmark machine
(docs/benchmarks.md) an fsync of a small append took 0.1 to 0.3 ms, and a
hand-off to a worker thread and back added about 0.14 ms more. Frames that
arrive meanwhile wait in the socket buffers and make the next round's batch
larger. No step sleeps or polls: the ticker is the only timer.

With `NodeSettings.trace_messages` on, the node also writes a `send` event for
each peer message it sends and a `recv` event for each one it receives. Both
name the connection (`conn`, from the connecting node's handshake nonce) and
the frame's DATA sequence number on it (`link`), so a `send` and a `recv` with
the same sender, receiver, `conn` and `link` are the same message. A message
dropped because the link was down gets a `send` event with `dropped: true`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from cluster.core.dispatch import UnexpectedMessage
from cluster.core.effects import AppendLog, CommitLog, Effect, Event, PersistState, Reply, Send
from cluster.core.messages import StatusReply, StatusRequest
from cluster.core.timers import TICK_SECONDS
from cluster.files import DataFileError, EventLog, events_path
from cluster.net.auth import NONCE_BYTES, Acceptor, Hello, RejectionCounter, RejectionReport, RejectReason
from cluster.net.links import LinkIdentity, PeerLink, accept_peer, read_frames, read_peer_frames
from cluster.net.transport import write_unless_closed
from cluster.node.settings import NodeSettings, stop_signals
from cluster.wire import Message, ProtocolError, encode

logger = logging.getLogger(__name__)

# Authentication failures are logged and written to the event log at most once
# per reason in this many seconds, each time with the count so far.
AUTH_REPORT_SECONDS = 1.0
# Hex digits of the connecting node's nonce that name a connection in `send`
# and `recv` events: 64 random bits, enough to tell the connections of one run apart.
CONNECTION_ID_HEX_DIGITS = 16


class ListenError(OSError):
    """A node could not listen on one of its ports; `port_kind` is "client" or "cluster"."""

    def __init__(self, port_kind: str, host: str, port: int, error: OSError) -> None:
        super().__init__(error.errno, error.strerror)
        self.port_kind = port_kind
        self.host = host
        self.port = port
        self.error = error

    def __str__(self) -> str:
        reason = os.strerror(self.errno) if self.errno else str(self.error)
        return f"cannot listen on {self.host}:{self.port}, the {self.port_kind} port: {reason}"


class NodeRuntime:
    """Run one protocol node: listeners, peer links, ticker and effect rounds."""

    role = "node"

    def __init__(self, settings: NodeSettings) -> None:
        self.settings = settings
        self.node_id = settings.node_id
        self.pending: list[Effect] = []
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self.links: dict[tuple[str, int], PeerLink] = {}
        self.clients: dict[int, asyncio.StreamWriter] = {}
        self.next_conn = 1
        self.tasks: list[asyncio.Task[Any]] = []
        self.servers: list[asyncio.Server] = []
        if settings.keys is None:
            raise ValueError(f"{self.role} node {self.node_id} has no cluster key; set CLUSTER_KEY_FILE or CLUSTER_KEY")
        self.keys = settings.keys
        members = [("sync", len(settings.sync_nodes)), ("store", len(settings.store_nodes))]
        self.peer_ids = frozenset(
            (role, node) for role, count in members for node in range(1, count + 1)
        ) - {(self.role, self.node_id)}
        self.rejections = RejectionCounter(AUTH_REPORT_SECONDS)
        self.trace_messages = settings.trace_messages
        self.events_closed = False
        self.failure: DataFileError | None = None  # the data file error that stopped the node
        self.failed_task: str | None = None  # the task whose exception stopped the node
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.events = EventLog(events_path(settings.data_dir, self.role, self.node_id), self.node_id)

    # --- Hooks for the concrete node -------------------------------------------------

    def on_tick(self, elapsed: int) -> list[Effect]:
        """Advance the node by one tick; `elapsed` tick periods passed since the last call."""
        raise NotImplementedError

    def on_peer_message(self, message: Message) -> list[Effect]:
        raise NotImplementedError

    def on_client_message(self, conn: int, message: Message) -> list[Effect]:
        if isinstance(message, StatusRequest):
            return [Reply(conn, self.status())]
        raise ValueError(f"the client port of a {self.role} node does not accept {type(message).__name__}")

    def status(self) -> StatusReply:
        raise NotImplementedError

    def before_send(self) -> list[Effect]:
        """Effects to add at the end of a round, before it writes (the leader's write batch)."""
        return []

    def write_durable(self, effects: Sequence[Effect]) -> None:
        """Make the `PersistState` and `AppendLog` effects of one round durable."""
        raise NotImplementedError

    def write_after_send(self, effects: Sequence[CommitLog]) -> None:
        """Carry out the `CommitLog` effects of one round, after its messages left."""
        raise NotImplementedError(f"{self.role} node cannot carry out CommitLog")

    def run_other_effect(self, effect: Effect) -> None:
        raise NotImplementedError(f"{self.role} node cannot carry out {type(effect).__name__}")

    # --- Lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in stop_signals():
            loop.add_signal_handler(signum, self.stopping.set)

        try:
            await self._listen()
        except ListenError:
            for server in self.servers:
                server.close()
            self.events.close()
            raise
        for link in self.links.values():
            link.start()
        self.tasks.append(asyncio.create_task(self._ticker(), name="ticker"))
        self.tasks.append(asyncio.create_task(self._rounds(), name="rounds"))
        logger.info(
            "%s %d listening on %s ports %d (clients) and %d (cluster), event loop from %s",
            self.role, self.node_id, self.settings.bind_host, self.settings.port, self.settings.cluster_port,
            type(loop).__module__.partition(".")[0],
        )
        logger.info(
            "%s %d: peer connections authenticated with the keys of %s, key ids %s (the first one signs)",
            self.role, self.node_id, self.keys.source, ", ".join(self.keys.ids()),
        )
        self.events.write("started", {"port": self.settings.port, "cluster_port": self.settings.cluster_port})

        stop = asyncio.create_task(self.stopping.wait())
        await asyncio.wait([stop, *self.tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                logger.error("%s %d: %s failed", self.role, self.node_id, task.get_name(), exc_info=task.exception())
                self.failed_task = task.get_name()
            elif task.done() and not self.stopping.is_set():
                # A task returns only after a stop request, so this one ended by mistake. Exit code 0 would
                # mean that the node was requested to stop.
                logger.error("%s %d: %s ended while the node was running", self.role, self.node_id, task.get_name())
                self.failed_task = task.get_name()
        await self.shutdown()
        if self.failure is not None:
            raise self.failure

    def fail(self, error: DataFileError) -> None:
        """Stop the node because a data file cannot be used, and make `run` raise `error` once it has stopped.

        A node must not go on after a file it relies on turned out to be
        damaged, and the error names the file and the repair, so it is
        logged as one line rather than as a traceback.
        """
        logger.error("%s %d: %s; stopping", self.role, self.node_id, error)
        if self.failure is None:
            self.failure = error
        self.stopping.set()

    async def shutdown(self) -> None:
        logger.info("%s %d stopping", self.role, self.node_id)
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for server in self.servers:
            server.close()
        for link in self.links.values():
            await link.close()
        for writer in self.clients.values():
            writer.close()
        self.events.write("stopped", {})
        self.events_closed = True
        self.events.close()

    async def _listen(self) -> None:
        host = self.settings.bind_host
        for kind, serve, port in (("cluster", self._serve_peer, self.settings.cluster_port),
                                  ("client", self._serve_client, self.settings.port)):
            try:
                self.servers.append(await asyncio.start_server(serve, host, port))
            except OSError as error:
                raise ListenError(kind, host, port, error) from error

    # --- Inbound connections -----------------------------------------------------------

    async def _serve_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        describe = f"from {_describe(writer)}"
        acceptor = Acceptor(self.keys, self.role, self.node_id, self.peer_ids, secrets.token_bytes(NONCE_BYTES))
        try:
            hello = await accept_peer(reader, writer, acceptor, describe, self._auth_rejected)
            if isinstance(hello, Hello):
                describe = f"from {hello.role} {hello.node} at {_describe(writer)}"
                handle: Callable[[Message], None] = self._handle_peer_message
                if self.trace_messages:
                    handle = self._traced_peer_handler(hello, acceptor)
                await read_peer_frames(reader, acceptor, handle, describe, self._auth_rejected)
        except asyncio.CancelledError:
            pass  # the node is shutting down; this handler is the outermost frame of its task
        finally:
            writer.close()

    def _handle_peer_message(self, message: Message) -> None:
        try:
            effects = self.on_peer_message(message)
        except UnexpectedMessage as error:
            raise ProtocolError(str(error)) from None
        self.submit(effects)

    def _traced_peer_handler(self, hello: Hello, acceptor: Acceptor) -> Callable[[Message], None]:
        """Return a handler that writes a `recv` event for each message, then handles it."""
        source = f"{hello.role} {hello.node}"
        conn = connection_id(acceptor.nonce or b"")

        def handle(message: Message) -> None:
            if not self.events_closed:
                # read_peer_frames calls this right after verifying the frame, so
                # last_sequence is the DATA sequence number of this message.
                self.events.write("recv", {
                    "from": source, "type": type(message).__name__, "conn": conn, "link": acceptor.last_sequence,
                })
            self._handle_peer_message(message)

        return handle

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = self.next_conn
        self.next_conn += 1
        self.clients[conn] = writer
        peer = _describe(writer)
        try:
            await read_frames(
                reader,
                lambda message: self.submit(self.on_client_message(conn, message)),
                f"client {peer}",
                after_each=lambda: _drain_if_full(writer),
            )
        except asyncio.CancelledError:
            pass  # the node is shutting down; this handler is the outermost frame of its task
        finally:
            self.clients.pop(conn, None)
            writer.close()

    # --- Authentication failures ----------------------------------------------------------

    def _auth_rejected(self, reason: RejectReason, peer: str, detail: str) -> None:
        for report in self.rejections.record(reason, peer, detail, time.monotonic()):
            self._report_rejection(report)
        if not self.events_closed:
            self.events.flush()

    def _report_rejection(self, report: RejectionReport) -> None:
        if self.events_closed:
            return  # a connection handler still running after shutdown
        logger.warning(
            "%s %d: rejected connection %s: %s (%s); %d rejected for this reason, %d since the last report",
            self.role, self.node_id, report.peer, report.reason.value, report.detail, report.count, report.new,
        )
        self.events.write("auth_rejected", {
            "reason": report.reason.value, "count": report.count, "new": report.new,
            "peer": report.peer, "detail": report.detail,
        })

    # --- Effects ---------------------------------------------------------------------------

    def submit(self, effects: list[Effect]) -> None:
        if effects:
            self.pending.extend(effects)
            self.wake.set()

    async def _ticker(self) -> None:
        # One tick per wake-up, never a burst of missed ones: a node whose loop
        # was starved of CPU must first read the messages waiting for it, or it
        # would time out on a leader whose heartbeats sit unread in its socket.
        # The node still learns how many periods passed, so a busy leader keeps
        # its heartbeats on time.
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.monotonic()
            elapsed = max(1, int((now - last) / TICK_SECONDS))
            last = now
            self.submit(self.on_tick(elapsed))
            if self.rejections.pending:
                for report in self.rejections.due(time.monotonic()):
                    self._report_rejection(report)
                self.events.flush()

    async def _rounds(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            try:
                self._round()
            except DataFileError as error:
                self.fail(error)
                return

    def _round(self) -> None:
        """Carry out the effects submitted since the last round, in the order the module docstring gives."""
        effects = self.pending
        self.pending = []
        effects += self.before_send()
        if not effects:
            return

        eager = [effect for effect in effects if isinstance(effect, Send) and effect.eager]
        if eager:
            self._send_messages(eager)
        durable = [effect for effect in effects if isinstance(effect, PersistState | AppendLog)]
        if durable:
            self.write_durable(durable)
        self._carry_out_round([effect for effect in effects if not (isinstance(effect, Send) and effect.eager)])
        committed = [effect for effect in effects if isinstance(effect, CommitLog)]
        if committed:
            self.write_after_send(committed)
        self.events.flush()

    def _carry_out_round(self, effects: list[Effect]) -> None:
        """Log the events of one round, send its messages and replies, then run its output-file operations.

        An event records what the node decided, so it is stamped before the
        messages that follow from it leave (a `commit` before its replies).
        The messages go before the output-file operations, because none of
        them waits for one: the replies that do are decided after the
        operation, in a later round.
        """
        for effect in effects:
            if isinstance(effect, Event):
                self.events.write(effect.name, effect.fields)
        self._send_messages(effects)
        for effect in effects:
            if not isinstance(effect, Send | Reply | Event):
                self._carry_out(effect)

    def _send_messages(self, effects: Sequence[Effect]) -> None:
        """Send the `Send` and `Reply` effects of `effects`, with one socket write per destination.

        The frames for one peer or one client connection keep their order and
        leave in a single write, so a round that answers hundreds of clients
        costs one system call per connection rather than one per frame.
        """
        to_peers: dict[tuple[str, int], list[bytes]] = {}
        to_clients: dict[int, list[bytes]] = {}
        for effect in effects:
            if isinstance(effect, Send):
                to_peers.setdefault((effect.role, effect.node), []).append(encode(effect.message))
            elif isinstance(effect, Reply):
                to_clients.setdefault(effect.conn, []).append(encode(effect.message))

        peer_types = _message_types_by_peer(effects) if self.trace_messages else {}
        for (role, node), frames in to_peers.items():
            link = self.links.get((role, node))
            if link is None:
                logger.error("%s %d: no link to %s %d", self.role, self.node_id, role, node)
                continue
            if self.trace_messages:
                self._send_traced(link, role, node, frames, peer_types[(role, node)])
            else:
                link.send_many(frames)
        for conn, frames in to_clients.items():
            writer = self.clients.get(conn)
            if writer is not None:
                write_unless_closed(writer, b"".join(frames))

    def _send_traced(self, link: PeerLink, role: str, node: int, frames: list[bytes], types: list[str]) -> None:
        """Send `frames` on `link` and write one `send` event per frame, in order."""
        connector = link.connector
        first = connector.sequence + 1 if connector is not None else 0
        queued = link.send_many(frames)
        target = f"{role} {node}"
        for offset, name in enumerate(types):
            if queued and connector is not None:
                fields: dict[str, Any] = {
                    "to": target, "type": name, "conn": connection_id(connector.nonce), "link": first + offset,
                }
            else:
                fields = {"to": target, "type": name, "dropped": True}
            self.events.write("send", fields)

    def _carry_out(self, effect: Effect) -> None:
        """Carry out one effect that is not a message, an event or a durable write."""
        if not isinstance(effect, PersistState | AppendLog | CommitLog):
            self.run_other_effect(effect)

    def add_link(self, role: str, node: int, host: str, port: int, on_state: Callable[[bool], None]) -> None:
        identity = LinkIdentity(self.keys, self.role, self.node_id, role, node)
        self.links[(role, node)] = PeerLink(f"{role} {node}", host, port, on_state, identity, self._auth_rejected)


def connection_id(nonce: bytes) -> str:
    """Name a peer connection by the nonce its connecting node sent in OPEN, which both ends know."""
    return nonce.hex()[:CONNECTION_ID_HEX_DIGITS]


def _message_types_by_peer(effects: Sequence[Effect]) -> dict[tuple[str, int], list[str]]:
    """Return the message class names of the Send effects for each peer, in send order."""
    types: dict[tuple[str, int], list[str]] = {}
    for effect in effects:
        if isinstance(effect, Send):
            types.setdefault((effect.role, effect.node), []).append(type(effect.message).__name__)
    return types


def _describe(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    if address is None:
        # uvloop looks the address up when asked, and a peer that reset at once has none left.
        return "unknown address"
    return str(address)


async def _drain_if_full(writer: asyncio.StreamWriter) -> None:
    """Stop reading from a client that does not read its replies, until it catches up."""
    if writer.transport.get_write_buffer_size() > 1024 * 1024:
        with contextlib.suppress(ConnectionError):
            await writer.drain()
