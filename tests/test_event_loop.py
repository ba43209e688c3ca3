"""The event loop that the node, client and proxy processes run on."""

from __future__ import annotations

import asyncio

import uvloop

from cluster.event_loop import run_event_loop


def test_run_event_loop_uses_uvloop() -> None:
    async def main() -> tuple[bool, int]:
        await asyncio.sleep(0)
        return isinstance(asyncio.get_running_loop(), uvloop.Loop), 42

    on_uvloop, result = run_event_loop(main())

    assert on_uvloop
    assert result == 42
