"""Helpers for end-to-end tests: real node processes on loopback ports."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from cluster.launcher import LocalCluster, RunOptions, find_leader, find_primary
from cluster.run import wait_settled
from cluster.status import NodeStatus

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Return the first truthy value of `condition()`, or fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Cluster:
    """A local cluster for one test, stopped by `close()`."""

    def __init__(self, data_dir: Path, sync: int = 3, store: int = 3, seed: int = 7) -> None:
        self.options = RunOptions(sync=sync, store=store, clients=4, data_dir=data_dir, seed=seed)
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.local = LocalCluster(self.options)
        self.local.write_layout()
        for node in range(1, sync + 1):
            self.local.start("sync", node)
        for node in range(1, store + 1):
            self.local.start("store", node)

    def start_client(self, client: int, texts: list[str]) -> None:
        self.local.start("client", client, tuple(texts))

    def statuses(self) -> list[NodeStatus]:
        return self.local.statuses()

    def leader(self) -> NodeStatus | None:
        return find_leader(self.statuses())

    def primary(self) -> NodeStatus | None:
        return find_primary(self.statuses())

    def ready_leader(self) -> NodeStatus:
        """Wait for a leader whose store epoch has a primary that answers."""

        def ready() -> NodeStatus | None:
            statuses = self.statuses()
            leader, primary = find_leader(statuses), find_primary(statuses)
            if leader and primary and leader.reply and primary.reply and leader.reply.epoch == primary.reply.epoch:
                return leader
            return None

        return wait_for(ready, 20, "a leader with a ready store primary")

    def wait_clients(self, timeout: float = 60) -> None:
        wait_for(lambda: not any(p.is_alive() for p in self.local.client_processes()), timeout, "clients to finish")
        codes = [p.exitcode for p in self.local.client_processes()]
        assert codes == [0] * len(codes), f"client exit codes {codes}"

    def settle(self) -> None:
        assert wait_settled(self.local).settled, "the store did not catch up with the leader"

    def close(self) -> None:
        self.local.stop_nodes()
