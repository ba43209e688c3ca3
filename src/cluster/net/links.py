"""Framed TCP connections: outbound links to peers and inbound frame readers.

A node sends to a peer on its own outbound `PeerLink` and receives on the
connections peers open to it, so each direction has one ordered stream.
A link that cannot connect (the peer is down, or its name does not resolve
yet) retries with exponential backoff and drops what is sent meanwhile: the
protocol resends what matters, and a node never crashes because a peer is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable

from cluster.wire import Message, ProtocolError, read_frame

logger = logging.getLogger(__name__)

BACKOFF_MIN_SECONDS = 0.02
BACKOFF_MAX_SECONDS = 1.0
# Frames queued on a connection beyond this many bytes are dropped, so a slow
# peer cannot make the sender use unbounded memory.
MAX_WRITE_BUFFER_BYTES = 64 * 1024 * 1024
# Repeated connection failures to one peer are logged at most this often.
LOG_REPEAT_SECONDS = 5.0


class CloseReason(enum.Enum):
    PEER_CLOSED = "peer closed the connection"
    PROTOCOL_ERROR = "peer broke the protocol"
    NETWORK_ERROR = "network error"
    SHUTDOWN = "shutting down"


class PeerLink:
    """The outbound connection to one peer, reconnected with backoff while the node runs."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        on_state: Callable[[bool], None],
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._on_state = on_state
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.dropped_frames = 0

    @property
    def connected(self) -> bool:
        return self._writer is not None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"link-{self.name}")

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def send(self, frame: bytes) -> None:
        """Queue `frame` on the connection; drop it while the link is down or over its buffer."""
        writer = self._writer
        if writer is None or writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER_BYTES:
            self.dropped_frames += 1
            return
        writer.write(frame)

    async def _run(self) -> None:
        backoff = BACKOFF_MIN_SECONDS
        failures = 0
        last_logged = 0.0
        while not self._closing:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError as error:
                failures += 1
                now = time.monotonic()
                if now - last_logged >= LOG_REPEAT_SECONDS:
                    logger.warning(
                        "cannot reach %s at %s:%d (%s); retrying, %d failures so far",
                        self.name, self.host, self.port, error, failures,
                    )
                    last_logged = now
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
                continue

            if failures:
                logger.info("connected to %s at %s:%d after %d failures", self.name, self.host, self.port, failures)
            failures = 0
            backoff = BACKOFF_MIN_SECONDS
            self._writer = writer
            self._on_state(True)
            # Peers never write on this connection, so reading only detects the close.
            with contextlib.suppress(OSError):
                await reader.read()
            self._writer = None
            writer.close()
            if not self._closing:
                logger.info("connection to %s closed", self.name)
                self._on_state(False)


FrameHandler = Callable[[Message], None]


async def read_frames(
    reader: asyncio.StreamReader,
    handle: FrameHandler,
    describe: str,
    after_each: Callable[[], Awaitable[None]] | None = None,
) -> CloseReason:
    """Read frames from `reader` and hand each to `handle` until the connection ends.

    A frame that breaks the protocol, or a message `handle` rejects with a
    ProtocolError or ValueError, is logged and ends this connection only.
    """
    while True:
        try:
            message = await read_frame(reader)
        except EOFError:
            return CloseReason.PEER_CLOSED
        except ProtocolError as error:
            logger.warning("closing connection from %s: %s", describe, error)
            return CloseReason.PROTOCOL_ERROR
        except OSError as error:
            logger.info("connection from %s failed: %s", describe, error)
            return CloseReason.NETWORK_ERROR
        try:
            handle(message)
        except (ProtocolError, ValueError) as error:
            logger.warning("closing connection from %s: %s", describe, error)
            return CloseReason.PROTOCOL_ERROR
        if after_each is not None:
            await after_each()
