"""Framed TCP connections: outbound links to peers and inbound frame readers.

A node sends to a peer on its own outbound `PeerLink` and receives on the
connections peers open to it, so each direction has one ordered stream.
Every peer connection starts with the handshake of `cluster.net.auth`, and
every message on it travels in a tagged DATA frame. Client connections carry
plain message frames.
A link that cannot connect (the peer is down, its name does not resolve yet,
or the handshake fails) retries with exponential backoff and drops what is
sent meanwhile: the protocol resends what matters, and a node never crashes
because a peer is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cluster.net.auth import (
    MAX_HANDSHAKE_FRAME_BYTES,
    MAX_PEER_FRAME_BYTES,
    NONCE_BYTES,
    Acceptor,
    AuthError,
    Connector,
    Hello,
    KeyRing,
    RejectReason,
)
from cluster.net.transport import write_unless_closed
from cluster.wire import LENGTH_BYTES, MalformedFrame, Message, ProtocolError, decode_payload, read_frame

logger = logging.getLogger(__name__)

BACKOFF_MIN_SECONDS = 0.02
BACKOFF_MAX_SECONDS = 1.0
# Frames queued on a connection beyond this many bytes are dropped, so a slow
# peer cannot make the sender use unbounded memory.
MAX_WRITE_BUFFER_BYTES = 64 * 1024 * 1024
# Repeated connection failures to one peer are logged at most this often.
LOG_REPEAT_SECONDS = 5.0
# Time for the whole handshake, on either side, before the connection is closed.
HANDSHAKE_SECONDS = 5.0
# A link whose connection closes sooner than this after the handshake waits
# out its backoff before it reconnects, so a peer that rejects every HELLO
# sees a few connections per second, not one per event loop turn.
STABLE_SECONDS = 1.0

_LENGTH = struct.Struct(">I")


class CloseReason(enum.Enum):
    PEER_CLOSED = "peer closed the connection"
    PROTOCOL_ERROR = "peer broke the protocol"
    AUTH_REJECTED = "peer failed authentication"
    NETWORK_ERROR = "network error"
    SHUTDOWN = "shutting down"


# Called with the reason, a description of the connection and the detail of
# one rejected handshake or frame.
RejectHandler = Callable[[RejectReason, str, str], None]


@dataclass(frozen=True, slots=True)
class LinkIdentity:
    """The two ends of a link (the opening node and the node it means to reach) and the keys it tags with."""

    ring: KeyRing
    role: str
    node: int
    to_role: str
    to_node: int


class PeerLink:
    """The outbound connection to one peer, reconnected with backoff while the node runs."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        on_state: Callable[[bool], None],
        identity: LinkIdentity,
        on_reject: RejectHandler,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._on_state = on_state
        self._identity = identity
        self._on_reject = on_reject
        self._writer: asyncio.StreamWriter | None = None
        self._connector: Connector | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._backoff = BACKOFF_MIN_SECONDS
        self._failures = 0
        self._last_logged = 0.0
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

    @property
    def connector(self) -> Connector | None:
        """The handshake state of the open connection, or None while the link is down."""
        return self._connector

    def send_many(self, frames: list[bytes]) -> bool:
        """Tag each of `frames` in order and queue them with one write; drop them all while the link is down or closing.

        Return True when the frames were queued, False when they were dropped.
        """
        writer = self._writer
        connector = self._connector
        if (
            writer is None
            or connector is None
            or writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER_BYTES
            or not write_unless_closed(writer, b"".join([connector.seal(frame) for frame in frames]))
        ):
            self.dropped_frames += len(frames)
            return False
        return True

    async def _run(self) -> None:
        while not self._closing:
            connection = await self._connect()
            if connection is None:
                await self._back_off()
                continue

            reader, writer, connector = connection
            if self._failures:
                logger.info(
                    "connected to %s at %s:%d after %d failures", self.name, self.host, self.port, self._failures
                )
            self._failures = 0
            opened = time.monotonic()
            self._writer = writer
            self._connector = connector
            self._on_state(True)
            await _wait_closed(reader, self.name)
            self._writer = None
            self._connector = None
            writer.close()
            if self._closing:
                return
            logger.info("connection to %s closed", self.name)
            self._on_state(False)
            if time.monotonic() - opened < STABLE_SECONDS:
                await self._back_off()
            else:
                self._backoff = BACKOFF_MIN_SECONDS

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Connector] | None:
        """Open a connection and run the handshake; return None after logging why it failed."""
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as error:
            self._log_failure(f"cannot reach {self.name} at {self.host}:{self.port} ({error})")
            return None

        identity = self._identity
        connector = Connector(
            identity.ring, identity.role, identity.node, identity.to_role, identity.to_node,
            nonce=secrets.token_bytes(NONCE_BYTES),
        )
        describe = f"to {self.name} at {self.host}:{self.port}"
        try:
            async with asyncio.timeout(HANDSHAKE_SECONDS):
                _handshake_write(writer, connector.open_frame())
                challenge = await read_raw_frame(reader, MAX_HANDSHAKE_FRAME_BYTES)
                _handshake_write(writer, connector.receive_challenge(challenge))
                await writer.drain()
        except AuthError as error:
            writer.close()
            self._on_reject(error.reason, describe, error.detail)
            return None
        except TimeoutError:
            writer.close()
            self._on_reject(RejectReason.HANDSHAKE_TIMEOUT, describe, f"no challenge within {HANDSHAKE_SECONDS} s")
            return None
        except (ProtocolError, EOFError, OSError) as error:
            writer.close()
            self._log_failure(
                f"handshake with {self.name} at {self.host}:{self.port} failed ({error or type(error).__name__})"
            )
            return None
        return reader, writer, connector

    def _log_failure(self, text: str) -> None:
        self._failures += 1
        now = time.monotonic()
        if now - self._last_logged >= LOG_REPEAT_SECONDS:
            logger.warning("%s; retrying, %d failures so far", text, self._failures)
            self._last_logged = now

    async def _back_off(self) -> None:
        await asyncio.sleep(self._backoff)
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_SECONDS)


def _handshake_write(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write one handshake frame, or raise ConnectionResetError when the peer already closed the connection."""
    if not write_unless_closed(writer, data):
        raise ConnectionResetError("connection closed during the handshake")


async def _wait_closed(reader: asyncio.StreamReader, name: str) -> None:
    """Return once the peer closes; peers never write after the handshake, so any byte ends it too."""
    try:
        data = await reader.read(1)
    except OSError as error:
        logger.info("connection to %s failed: %s", name, error)
        return
    if data:
        logger.warning("closing connection to %s: it sent data after the handshake", name)


async def read_raw_frame(reader: asyncio.StreamReader, limit: int) -> bytes:
    """Read one frame and return the bytes after its length prefix, checking the prefix against `limit`.

    Raises EOFError when the peer closed the connection between frames and
    MalformedFrame when it closed in the middle of one or the length exceeds
    `limit`. The prefix is checked before any of the frame is read.
    """
    try:
        prefix = await reader.readexactly(LENGTH_BYTES)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise EOFError("connection closed by the peer") from None
        raise MalformedFrame(
            f"connection closed after {len(exc.partial)} of {LENGTH_BYTES} length prefix bytes"
        ) from None

    (length,) = _LENGTH.unpack(prefix)
    if length > limit:
        raise MalformedFrame(f"frame length {length} bytes exceeds the limit of {limit} bytes")
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise MalformedFrame(f"connection closed after {len(exc.partial)} of {length} frame bytes") from None


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
    return await _handle_messages(lambda: read_frame(reader), handle, f"from {describe}", after_each=after_each)


async def accept_peer(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    acceptor: Acceptor,
    describe: str,
    on_reject: RejectHandler,
) -> Hello | CloseReason:
    """Run the accepting side of the handshake; return the verified HELLO, or why the connection ends.

    A rejected or timed-out handshake is reported to `on_reject` and not logged here.
    """
    try:
        async with asyncio.timeout(HANDSHAKE_SECONDS):
            opening = await read_raw_frame(reader, MAX_HANDSHAKE_FRAME_BYTES)
            _handshake_write(writer, acceptor.receive_open(opening))
            return acceptor.receive_hello(await read_raw_frame(reader, MAX_HANDSHAKE_FRAME_BYTES))
    except AuthError as error:
        on_reject(error.reason, describe, error.detail)
        return CloseReason.AUTH_REJECTED
    except TimeoutError:
        on_reject(RejectReason.HANDSHAKE_TIMEOUT, describe, f"no hello within {HANDSHAKE_SECONDS} s")
        return CloseReason.AUTH_REJECTED
    except EOFError:
        return CloseReason.PEER_CLOSED
    except ProtocolError as error:
        logger.warning("closing connection %s: %s", describe, error)
        return CloseReason.PROTOCOL_ERROR
    except OSError as error:
        logger.info("connection %s failed: %s", describe, error)
        return CloseReason.NETWORK_ERROR


async def read_peer_frames(
    reader: asyncio.StreamReader,
    acceptor: Acceptor,
    handle: FrameHandler,
    describe: str,
    on_reject: RejectHandler,
) -> CloseReason:
    """Verify and decode the DATA frames of an accepted peer connection and hand each message to `handle`.

    A frame that fails verification is reported to `on_reject`; one that breaks
    the message format, or a message `handle` rejects with a ProtocolError or
    ValueError, is logged. Either ends this connection only.
    """
    async def next_message() -> Message:
        envelope = await read_raw_frame(reader, MAX_PEER_FRAME_BYTES)
        return decode_payload(acceptor.receive_data(envelope))

    return await _handle_messages(next_message, handle, describe, on_reject=on_reject)


async def _handle_messages(
    next_message: Callable[[], Awaitable[Message]],
    handle: FrameHandler,
    describe: str,
    on_reject: RejectHandler | None = None,
    after_each: Callable[[], Awaitable[None]] | None = None,
) -> CloseReason:
    """Hand each message that `next_message` reads to `handle` until the connection ends; return why it ended."""
    while True:
        try:
            message = await next_message()
        except EOFError:
            return CloseReason.PEER_CLOSED
        except ProtocolError as error:
            if isinstance(error, AuthError) and on_reject is not None:
                on_reject(error.reason, describe, error.detail)
                return CloseReason.AUTH_REJECTED
            logger.warning("closing connection %s: %s", describe, error)
            return CloseReason.PROTOCOL_ERROR
        except OSError as error:
            logger.info("connection %s failed: %s", describe, error)
            return CloseReason.NETWORK_ERROR
        try:
            handle(message)
        except (ProtocolError, ValueError) as error:
            logger.warning("closing connection %s: %s", describe, error)
            return CloseReason.PROTOCOL_ERROR
        if after_each is not None:
            await after_each()
