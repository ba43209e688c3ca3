"""The etcd peer: a 3-member etcd cluster on 127.0.0.1 taking the same appends as key puts.

Each client is its own process with `window` keep-alive HTTP/1.1 connections
to the members' JSON gateway (`POST /v3/kv/put`), one request in flight per
connection, spread over the three members. etcd fsyncs its write-ahead log
before it acknowledges a put, as the cluster under test does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

READY_SECONDS = 30.0


def available() -> str | None:
    """Return None when the etcd binary is on PATH, else why not."""
    if shutil.which("etcd") is None:
        return "no etcd binary on PATH (Debian package etcd-server)"
    return None


def version() -> str:
    result = subprocess.run(["etcd", "--version"], capture_output=True, text=True, timeout=10)
    return result.stdout.splitlines()[0] if result.stdout else "unknown"


class EtcdCluster:
    """Three etcd members, each with its own data directory, listening on 127.0.0.1 only."""

    def __init__(self, workdir: Path, ports: list[int]) -> None:
        self.client_ports = ports[:3]
        peer_ports = ports[3:6]
        initial = ",".join(f"m{i}=http://127.0.0.1:{peer_ports[i]}" for i in range(3))
        self.processes: list[subprocess.Popen[bytes]] = []
        for i in range(3):
            data_dir = workdir / f"etcd_m{i}"
            shutil.rmtree(data_dir, ignore_errors=True)
            client_url = f"http://127.0.0.1:{self.client_ports[i]}"
            peer_url = f"http://127.0.0.1:{peer_ports[i]}"
            command = [
                "etcd", "--name", f"m{i}", "--data-dir", str(data_dir),
                "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", "bench", "--logger", "zap", "--log-level", "error",
            ]
            log = open(workdir / f"etcd_m{i}.log", "wb")  # noqa: SIM115 (handed to the child)
            self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
            log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            try:
                if all(self._healthy(port) for port in self.client_ports):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"etcd did not become healthy within {READY_SECONDS} s")

    @staticmethod
    def _healthy(port: int) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return bool(json.loads(response.read()).get("health") == "true")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _connection(port: int, client: int, slot: int, size: int, warmup_end: float, end: float,
                      latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    value = base64.b64encode(b"x" * size).decode()
    count = 0
    index = 0
    try:
        while time.perf_counter() < end:
            index += 1
            key = base64.b64encode(f"c{client:03d}s{slot:02d}m{index:08d}".encode()).decode()
            body = json.dumps({"key": key, "value": value}).encode()
            request = (f"POST /v3/kv/put HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            started = time.perf_counter()
            writer.write(request)
            header = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in header.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            payload = await reader.readexactly(length)
            if not header.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"etcd put failed: {header[:40]!r} {payload[:100]!r}")
            finished = time.perf_counter()
            if warmup_end <= started and finished <= end:
                count += 1
                latencies.append(round((finished - started) * 1000, 3))
    finally:
        writer.close()
    return count


def _client(ports: list[int], client: int, window: int, size: int, start_at: float, warmup: float, seconds: float,
            queue: Any) -> None:
    async def main() -> tuple[int, list[float]]:
        now = time.perf_counter()
        # start_at is on the wall clock; convert it to this process's perf_counter.
        begin = now + max(0.0, start_at - time.time())
        latencies: list[float] = []
        counts = await asyncio.gather(*[
            _connection(ports[(client + slot) % len(ports)], client, slot, size, begin + warmup,
                        begin + warmup + seconds, latencies)
            for slot in range(window)
        ])
        return sum(counts), latencies

    count, latencies = asyncio.run(main())
    queue.put((count, latencies))


def load_run(workdir: Path, ports: list[int], clients: int, window: int, seconds: float, warmup: float,
             size: int) -> dict[str, Any]:
    """Start a fresh 3-member cluster, run `clients` client processes and return rate and latencies."""
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = workdir / f"c{clients}_w{window}"
    run_dir.mkdir(parents=True, exist_ok=True)
    cluster = EtcdCluster(run_dir, ports)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    try:
        start_at = time.time() + 0.5 + clients * 0.01
        processes = [
            context.Process(target=_client, args=(cluster.client_ports, client, window, size, start_at, warmup,
                                                   seconds, queue))
            for client in range(1, clients + 1)
        ]
        for process in processes:
            process.start()
        results = [queue.get(timeout=warmup + seconds + 60) for _process in processes]
        for process in processes:
            process.join(10)
    finally:
        cluster.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    latencies = [value for _count, values in results for value in values]
    return {"count": sum(count for count, _values in results), "seconds": seconds, "latencies_ms": latencies}
