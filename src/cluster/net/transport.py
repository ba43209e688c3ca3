"""Writes to a connection that the peer may have closed."""

from __future__ import annotations

import asyncio


def write_unless_closed(target: asyncio.WriteTransport | asyncio.StreamWriter, data: bytes) -> bool:
    """Queue `data` on an open connection and return True, or return False once the connection is closing.

    The standard asyncio loop drops a write to a closed transport, while
    uvloop raises RuntimeError. A peer can close its end at any moment, so
    every write to a connection goes through here and treats a closed one
    as down.
    """
    if target.is_closing():
        return False
    try:
        target.write(data)
    except RuntimeError:
        # uvloop marks a transport closing before it closes the handle, so the check
        # above catches a closed one. A raise here would stop the node, so guard anyway.
        return False
    return True
