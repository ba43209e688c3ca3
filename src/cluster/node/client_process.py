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
import signal
import time
from collections.abc import Callable, Coroutine
from typing import Any

from cluster.core.client import ClientSession
from cluster.core.effects import Effect, Event, Send
from cluster.core.messages import ClientReply
from cluster.core.timers import TICK_SECONDS
from cluster.files import EventLog, client_log_path
from cluster.net.links import read_frames
from cluster.node.settings import NodeSettings
from cluster.wire import Message, encode

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 1.0


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
        self.writers: dict[int, asyncio.StreamWriter] = {}
        # Frames for open connections wait here until the end of the event
        # loop iteration, so the replies read in one iteration cause one write.
        self.outbox: dict[int, list[bytes]] = {}
        self.flush_scheduled = False
        self.connecting: dict[int, list[bytes]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.finished = asyncio.Event()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.finished.set)
        started = time.monotonic()
        logger.info("client %d: sending %d messages", self.client_id, self.total)
        self.log.write("started", {"messages": self.total})

        self._apply(self.session.send_request())
        ticker = asyncio.create_task(self._ticker())
        await self.finished.wait()
        ticker.cancel()
        for task in list(self.tasks):
            task.cancel()
        for writer in self.writers.values():
            writer.close()

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
            if isinstance(effect, Send):
                self._send(effect.node, encode(effect.message))
            elif isinstance(effect, Event):
                self.log.write(effect.name, effect.fields)
                if effect.name == "acked" and self.on_ack is not None:
                    self.on_ack(1)
        if self.session.done:
            self.finished.set()

    def _send(self, node: int, frame: bytes) -> None:
        writer = self.writers.get(node)
        if writer is not None and not writer.is_closing():
            self.outbox.setdefault(node, []).append(frame)
            if not self.flush_scheduled:
                self.flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)
            return
        if node in self.connecting:
            self.connecting[node].append(frame)
            return
        self.connecting[node] = [frame]
        self._spawn(self._connect(node))

    def _flush(self) -> None:
        """Write the frames queued for each connection, in order, with one write per connection."""
        self.flush_scheduled = False
        outbox, self.outbox = self.outbox, {}
        for node, frames in outbox.items():
            writer = self.writers.get(node)
            # A connection that closed meanwhile drops its frames, as a write to
            # it would; the session resends them after the disconnect.
            if writer is not None and not writer.is_closing():
                writer.write(b"".join(frames))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _connect(self, node: int) -> None:
        address = self.settings.sync_nodes[node - 1]
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address.host, address.port), CONNECT_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError) as error:
            logger.info("client %d: cannot reach sync %d at %s:%d (%s)", self.client_id, node, address.host,
                        address.port, error)
            self.connecting.pop(node, None)
            self._apply(self.session.handle_disconnect(node))
            return

        self.writers[node] = writer
        for frame in self.connecting.pop(node, []):
            writer.write(frame)
        await read_frames(reader, lambda message: self._on_reply(node, message), f"sync {node}")
        self.writers.pop(node, None)
        writer.close()
        if not self.finished.is_set():
            self._apply(self.session.handle_disconnect(node))

    def _on_reply(self, node: int, message: Message) -> None:
        if not isinstance(message, ClientReply):
            raise ValueError(f"sync {node} sent {type(message).__name__} where a ClientReply was expected")
        self._apply(self.session.handle_client_reply(node, message))

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self._apply(self.session.tick())


def _rate_per_tick(rate: float | None) -> float | None:
    return None if rate is None else rate * TICK_SECONDS


async def run_client(settings: NodeSettings, on_ack: Callable[[int], None] | None = None) -> int:
    runtime = ClientRuntime(settings, on_ack)
    with contextlib.suppress(asyncio.CancelledError):
        return await runtime.run()
    return 1
