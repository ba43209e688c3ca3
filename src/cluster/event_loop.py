"""The event loop that node and client processes run on.

They run on uvloop, a libuv-based drop-in for the asyncio loop. A message
that crosses the cluster wakes up six processes in turn, and each wake-up
runs the loop's socket and callback code. uvloop spends less time there,
as measured in docs/benchmarks.md. The protocol code does not depend on
the loop, because the simulator and the unit tests drive it without one.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a new uvloop event loop and return its result."""
    return uvloop.run(main)

