"""Measure frames per second for encoding plus decoding of typical frames.

Run from the repository root with the package installed:

    python benchmarks/wire_bench.py

The numbers depend on the machine and the Python build, so compare runs on
one machine only.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cluster import wire
from cluster.core.messages import ClientReply, ClientRequest, Entry, Replicate, ReplyStatus

MEASURE_SECONDS = 1.0


def measure(label: str, message: wire.Message) -> None:
    """Print how many encode + decode round trips of `message` run per second."""
    frame = wire.encode(message)
    assert wire.decode_payload(frame[wire.LENGTH_BYTES :]) == message

    def round_trip() -> None:
        wire.decode_payload(wire.encode(message)[wire.LENGTH_BYTES :])

    rate = frames_per_second(round_trip)
    print(f"{label:<32} {len(frame):>8} bytes  {rate:>10,.0f} frames/s")


def frames_per_second(step: Callable[[], None]) -> float:
    """Run `step` in batches for about MEASURE_SECONDS and return calls per second."""
    count = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < MEASURE_SECONDS:
        for _ in range(100):
            step()
        count += 100
        elapsed = time.perf_counter() - start
    return count / elapsed


def main() -> None:
    entries = tuple(
        Entry(
            seq=1000 + i,
            term=7,
            lamport=50_000 + i,
            client_id=1 + i % 5,
            request_id=200 + i,
            text=f"client message number {i}, with some text",
        )
        for i in range(256)
    )
    measure("Replicate, 256 entries", Replicate(3, 1, 999, entries, 998))
    measure("ClientRequest", ClientRequest(3, 17, 4242, "hello, cluster"))
    measure("ClientReply", ClientReply(ReplyStatus.OK, 3, 17, 123_456, 7, 4243, 1, 0))


if __name__ == "__main__":
    main()
