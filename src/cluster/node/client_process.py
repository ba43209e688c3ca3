"""A client process: a `ClientSession` with connections to the sync nodes' client ports.

Every message sent and every acknowledgement received is written to
`client_<id>.jsonl` in the data directory, which `cluster verify` reads to
check that each acknowledged message is in the output exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import time
from collections.abc import Callable, Coroutine
from typing import Any, cast

from cluster.core.client import ClientSession
from cluster.core.effects import Effect, Event, Send
from cluster.core.messages import ClientReply
from cluster.core.timers import TICK_SECONDS
from cluster.files import EventLog, client_log_path
from cluster.net.transport import write_unless_closed
from cluster.node.settings import NodeSettings, stop_signals
from cluster.wire import LENGTH_BYTES, Message, ProtocolError, check_length, decode_payload, encode

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 1.0
# The maximum sleep of the tick timer, in ticks, when the session has no timeout running.
MAX_SLEEP_TICKS = 100

_LENGTH = struct.Struct(">I")


class ReplyProtocol(asyncio.Protocol):
    """One connection to a sync node: split the bytes received into frames and hand each reply on.

    A frame that breaks the wire format, or a message other than a
    ClientReply, is logged and closes this connection. `closed` is done when
    the connection ends, for any reason.
    """

    def __init__(self, describe: str, handle: Callable[[Message], None]) -> None:
        self.describe = describe
        self.handle = handle
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a stream connection

    def data_received(self, data: bytes) -> None:
        if self.buffer:
            self.buffer += data
            data = bytes(self.buffer)
            self.buffer.clear()
        try:
            end = self._handle_frames(data)
        except (ProtocolError, ValueError) as error:
            logger.warning("closing connection from %s: %s", self.describe, error)
            assert self.transport is not None
            self.transport.close()
            return
        if end < len(data):
            self.buffer += memoryview(data)[end:]

    def _handle_frames(self, data: bytes) -> int:
        """Handle every whole frame in `data` and return where the first incomplete one starts."""
        start = 0
        size = len(data)
        while size - start >= LENGTH_BYTES:
            (length,) = _LENGTH.unpack_from(data, start)
            check_length(length)  # before the payload is buffered
            end = start + LENGTH_BYTES + length
            if end > size:
                break
            self.handle(decode_payload(data[start + LENGTH_BYTES : end]))
            start = end
        return start

    def eof_received(self) -> bool:
        if self.buffer:
            logger.warning("closing connection from %s: connection closed in the middle of a frame "
                           "(%d bytes received)", self.describe, len(self.buffer))
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            logger.info("connection from %s failed: %s", self.describe, exc)
        if not self.closed.done():
            self.closed.set_result(None)


class ClientRuntime:
    """Drive one client session until every message is acknowledged."""

    def __init__(self, settings: NodeSettings, on_ack: Callable[[int], None] | None = None) -> None:
        self.settings = settings
        self.client_id = settings.node_id
        sync_ids = list(range(1, len(settings.sync_nodes) + 1))
        first = sync_ids[(self.client_id - 1) % len(sync_ids)]
        self.session = ClientSession(self.client_id, sync_ids, settings.texts, first_target=first,
                                     window=settings.window, rate_per_tick=_rate_per_tick(settings.rate))
        self.total = len(settings.texts)
        self.on_ack = on_ack
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = EventLog(client_log_path(settings.data_dir, self.client_id), self.client_id)
        self.transports: dict[int, asyncio.Transport] = {}
        # Frames for open connections, log lines and the count of new
        # acknowledgements wait until the end of the event loop iteration. So
        # the replies read in one iteration cause one write per connection,
        # one write to the log file and one `on_ack` call.
        self.outbox: dict[int, list[bytes]] = {}
        self.new_acks = 0
        self.flush_handle: asyncio.Handle | None = None
        self.connecting: dict[int, list[bytes]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.finished = asyncio.Event()
        # Tick n of the session falls at tick_origin + n * TICK_SECONDS of the
        # loop clock. The timer wakes the process only for a tick that acts.
        self.tick_origin = 0.0
        # The pending timer and its loop time. uvloop returns a plain Handle,
        # without when(), for a time already past, so the time is kept here.
        self.tick_handle: asyncio.Handle | None = None
        self.tick_when = 0.0

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in stop_signals():
            loop.add_signal_handler(signum, self.finished.set)
        started = time.monotonic()
        logger.info("client %d: sending %d messages", self.client_id, self.total)
        self.log.write("started", {"messages": self.total})

        self.tick_origin = loop.time()
        self._apply(self.session.send_request())
        self._schedule_tick()
        await self.finished.wait()
        for task in list(self.tasks):
            task.cancel()
        for transport in self.transports.values():
            transport.close()
        if self.flush_handle is not None:
            self.flush_handle.cancel()
        self._flush()
        if self.tick_handle is not None:
            self.tick_handle.cancel()

        elapsed = time.monotonic() - started
        logger.info("client %d: %d of %d acknowledged in %.2f s", self.client_id, self.session.acked,
                    self.total, elapsed)
        self.log.write("finished", {"acknowledged": self.session.acked, "seconds": round(elapsed, 3)})
        self.log.close()
        with open(client_log_path(self.settings.data_dir, self.client_id), "rb") as file:
            os.fsync(file.fileno())
        return 0 if self.session.done else 1

    def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if type(effect) is Send:
                self._send(effect.node, encode(effect.message))
            elif isinstance(effect, Event):
                self.log.write(effect.name, effect.fields)
                if effect.name == "acked":
                    self.new_acks += 1
        if self.flush_handle is None:
            self.flush_handle = asyncio.get_running_loop().call_soon(self._flush)
        if self.session.done:
            self.finished.set()

    def _send(self, node: int, frame: bytes) -> None:
        transport = self.transports.get(node)
        if transport is not None and not transport.is_closing():
            self.outbox.setdefault(node, []).append(frame)
            return
        if node in self.connecting:
            self.connecting[node].append(frame)
            return
        self.connecting[node] = [frame]
        self._spawn(self._connect(node))

    def _flush(self) -> None:
        """Write the frames queued for each connection, in order, with one write per connection.

        Then write the log lines of this iteration to the file and report the
        new acknowledgements, so readers of the log see each line within one
        event loop iteration. Last, set the tick timer for the session state
        that the events of this iteration left.
        """
        self.flush_handle = None
        outbox, self.outbox = self.outbox, {}
        for node, frames in outbox.items():
            transport = self.transports.get(node)
            # A connection that closed meanwhile drops its frames, as a write to
            # it would; the session resends them after the disconnect.
            if transport is not None:
                write_unless_closed(transport, b"".join(frames))
        self.log.flush()
        if self.new_acks:
            if self.on_ack is not None:
                self.on_ack(self.new_acks)
            self.new_acks = 0
        self._schedule_tick()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _connect(self, node: int) -> None:
        address = self.settings.sync_nodes[node - 1]
        loop = asyncio.get_running_loop()
        protocol = ReplyProtocol(f"sync {node}", lambda message: self._on_reply(node, message))
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: protocol, address.host, address.port), CONNECT_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError) as error:
            logger.info("client %d: cannot reach sync %d at %s:%d (%s)", self.client_id, node, address.host,
                        address.port, error)
            self.connecting.pop(node, None)
            self._catch_up()
            self._apply(self.session.handle_disconnect(node))
            return

        self.transports[node] = transport
        for frame in self.connecting.pop(node, []):
            write_unless_closed(transport, frame)
        try:
            await protocol.closed
        finally:
            if self.transports.get(node) is transport:
                del self.transports[node]
            transport.close()
        if not self.finished.is_set():
            self._catch_up()
            self._apply(self.session.handle_disconnect(node))

    def _on_reply(self, node: int, message: Message) -> None:
        if type(message) is not ClientReply:
            raise ValueError(f"sync {node} sent {type(message).__name__} where a ClientReply was expected")
        self._catch_up()
        self._apply(self.session.handle_client_reply(node, message))

    # --- Ticks -------------------------------------------------------------------------
    #
    # A session counts time in ticks. A wake-up every tick in each of 50
    # clients cost about 20 us of CPU per message in the load benchmark of
    # benchmarks/cluster_bench.py (one run on a busy 2-core machine, so an
    # estimate). So the ticks in which `tick` would only count are skipped.
    # The timer wakes the process for the first tick that acts, which resends
    # after a pause or times a request out.

    def _clock_ticks(self) -> int:
        """Return the number of whole ticks since the start, by the loop clock."""
        elapsed = asyncio.get_running_loop().time() - self.tick_origin
        # A loop may run a timer up to its clock resolution early (1 ms for
        # libuv-based loops), so a tick counts from half a millisecond before.
        return int((elapsed + 0.0005) / TICK_SECONDS)

    def _catch_up(self) -> None:
        """Count the ticks that passed, up to the first that acts, so handlers see the current tick."""
        behind = self._clock_ticks() - self.session.now
        if behind > 0:
            idle = self.session.idle_ticks()
            self.session.skip(behind if idle is None else min(behind, idle))

    def _on_tick(self) -> None:
        self.tick_handle = None
        self._catch_up()
        # At most one acting tick per wake-up: after the loop was starved of
        # CPU, the replies waiting in the socket are read between ticks.
        if self._clock_ticks() > self.session.now:
            self._apply(self.session.tick())
        self._schedule_tick()

    def _schedule_tick(self) -> None:
        """Set the timer for the first tick that acts, unless it is set for that tick or an earlier one."""
        idle = self.session.idle_ticks()
        ticks = MAX_SLEEP_TICKS if idle is None else min(idle + 1, MAX_SLEEP_TICKS)
        when = self.tick_origin + (self.session.now + ticks) * TICK_SECONDS
        if self.tick_handle is not None:
            if self.tick_when <= when:
                return
            self.tick_handle.cancel()
        self.tick_handle = asyncio.get_running_loop().call_at(when, self._on_tick)
        self.tick_when = when


def _rate_per_tick(rate: float | None) -> float | None:
    return None if rate is None else rate * TICK_SECONDS


async def run_client(settings: NodeSettings, on_ack: Callable[[int], None] | None = None) -> int:
    runtime = ClientRuntime(settings, on_ack)
    with contextlib.suppress(asyncio.CancelledError):
        return await runtime.run()
    return 1
