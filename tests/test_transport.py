"""Writes to connections that the peer closed, on the event loop the nodes run on."""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from cluster.core.messages import Heartbeat, initial_config
from cluster.event_loop import run_event_loop
from cluster.net.auth import NONCE_BYTES, Acceptor, KeyRing
from cluster.net.links import LinkIdentity, PeerLink, accept_peer
from cluster.net.transport import write_unless_closed
from cluster.wire import encode

RING = KeyRing((secrets.token_bytes(32),), "test key")
T = TypeVar("T")


def _run_on(loop_name: str, main: Coroutine[Any, Any, T]) -> T:
    return run_event_loop(main) if loop_name == "uvloop" else asyncio.run(main)


@pytest.mark.parametrize("loop_name", ["uvloop", "asyncio"])
def test_write_after_close_returns_false(loop_name: str) -> None:
    """A write to a connection closed on this side is dropped with False, on either event loop."""

    async def main() -> tuple[bool, bool, bytes]:
        received = asyncio.get_running_loop().create_future()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.set_result(await reader.read())
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        open_write = write_unless_closed(writer, b"before close")
        writer.close()
        await writer.wait_closed()
        closed_write = write_unless_closed(writer, b"after close")
        data = await asyncio.wait_for(received, 5)
        server.close()
        return open_write, closed_write, data

    open_write, closed_write, data = _run_on(loop_name, main())

    assert open_write
    assert not closed_write
    assert data == b"before close"


def test_link_send_survives_peer_reset() -> None:
    """Frames sent while the peer resets the connection are dropped and counted, and the link never raises."""

    async def main() -> tuple[int, int, bool]:
        accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()
        finished = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            acceptor = Acceptor(RING, "store", 1, frozenset({("sync", 1)}), secrets.token_bytes(NONCE_BYTES))
            await accept_peer(reader, writer, acceptor, "test peer", lambda *_: None)
            await accepted.put(writer)
            await finished.wait()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = PeerLink("store 1", "127.0.0.1", port, lambda _up: None,
                        LinkIdentity(RING, "sync", 1, "store", 1), lambda *_: None)
        link.start()
        peer = await asyncio.wait_for(accepted.get(), 5)
        frame = encode(Heartbeat(1, 1, initial_config(2)))

        # Reset the connection from the peer's side, as a killed process does,
        # and keep sending until the link notices.
        sock = peer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.transport.abort()
        sends = 0
        while link.connected and sends < 10_000:
            link.send_many([frame])
            sends += 1
            await asyncio.sleep(0)
        connected = link.connected
        await link.close()
        finished.set()
        server.close()
        return sends, link.dropped_frames, connected

    sends, dropped, connected = run_event_loop(main())

    assert not connected
    assert sends >= 1
    assert dropped >= 1
