"""A TCP proxy that delays every byte by a fixed time, for kernels without netem.

    python -m cluster.faultnet.proxy --listen HOST:PORT --target HOST:PORT --delay-ms 20 [--listen ... --target ...]

Each accepted connection opens one to its target. Bytes read in either
direction are held for the delay, then written in the order they were read,
so the stream stays intact and only its timing changes. The proxy stops on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time

logger = logging.getLogger(__name__)

READ_BYTES = 64 * 1024


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy `reader` to `writer`, each chunk `delay` seconds after it was read."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    delivery = asyncio.create_task(deliver())
    try:
        while True:
            chunk = await reader.read(READ_BYTES)
            queue.put_nowait((time.monotonic() + delay, chunk))
            if not chunk:
                break
        await delivery
    except (ConnectionError, OSError) as error:
        logger.info("proxied connection ended: %s", error)
    finally:
        delivery.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await delivery
        writer.close()


async def serve(routes: list[tuple[str, int, str, int]], delay: float, stop: asyncio.Event) -> None:
    """Listen on every (host, port) of `routes` and forward to its target with `delay` seconds added."""

    def handler(target_host: str, target_port: int):  # type: ignore[no-untyped-def]
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                target_reader, target_writer = await asyncio.open_connection(target_host, target_port)
            except OSError as error:
                logger.info("cannot reach %s:%d: %s", target_host, target_port, error)
                writer.close()
                return
            await asyncio.gather(_pump(reader, target_writer, delay), _pump(target_reader, writer, delay))

        return handle

    servers = [await asyncio.start_server(handler(target_host, target_port), host, port)
               for host, port, target_host, target_port in routes]
    logger.info("delaying %d routes by %.0f ms", len(routes), delay * 1000)
    await stop.wait()
    for server in servers:
        server.close()


def _address(text: str) -> tuple[str, int]:
    host, _sep, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Forward TCP connections with a fixed delay in each direction.")
    parser.add_argument("--listen", type=_address, action="append", required=True, help="address to listen on")
    parser.add_argument("--target", type=_address, action="append", required=True,
                        help="address to forward to, one per --listen, in the same order")
    parser.add_argument("--delay-ms", type=float, required=True, help="delay added in each direction, in ms")
    args = parser.parse_args(argv)
    if len(args.listen) != len(args.target):
        parser.error(f"give one --target per --listen, got {len(args.listen)} and {len(args.target)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    routes = [(*listen, *target) for listen, target in zip(args.listen, args.target, strict=True)]

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(routes, args.delay_ms / 1000, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
