"""The order in which a node process carries out the effects of one round.

The effects contract (`cluster.core.effects`) lets an eager `Send` leave before
the round's durable writes, and a `CommitLog` be written after the round's
messages. These tests run one round of a real store node process object, with
its real write-ahead log and backup file, and record the order of the writes
and of the frames handed to the peer links.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import os
import time
from pathlib import Path
from typing import Any

import pytest

from cluster.core.effects import AppendLog, AppendOutput, CommitLog, PersistState, Send
from cluster.core.messages import Commit, Entry, Replicate, Write, WriteAck
from cluster.files import read_entries
from cluster.net.auth import KeyRing
from cluster.node.runtime import NodeRuntime
from cluster.node.settings import NodeAddress, NodeSettings
from cluster.node.store_process import BACKUP_SYNC_SECONDS, StoreRuntime
from cluster.node.sync_process import SyncRuntime
from cluster.wire import decode_payload


class RecordingLink:
    """A peer link stand-in that records the messages handed to it."""

    def __init__(self, name: str, journal: list[str]) -> None:
        self.name = name
        self.journal = journal

    def send_many(self, frames: list[bytes]) -> bool:
        for frame in frames:
            message = decode_payload(frame[4:])
            self.journal.append(f"send {type(message).__name__} to {self.name}")
        return True

    async def close(self) -> None:
        return None


def _settings(role: str, tmp_path: Path) -> NodeSettings:
    addresses = tuple(NodeAddress("127.0.0.1", 7000 + 2 * node, 7001 + 2 * node) for node in range(3))
    keys = KeyRing((b"0123456789abcdef0123456789abcdef",), "test key")
    return NodeSettings(role, 1, addresses, addresses, tmp_path, keys=keys)


def _record_links(runtime: NodeRuntime, journal: list[str]) -> None:
    runtime.links = {key: RecordingLink(f"{key[0]} {key[1]}", journal) for key in runtime.links}  # type: ignore[misc]


def _store_runtime(tmp_path: Path, journal: list[str]) -> StoreRuntime:
    runtime = StoreRuntime(_settings("store", tmp_path))
    _record_links(runtime, journal)

    write_durable, write_after_send = runtime.write_durable, runtime.write_after_send

    def durable(effects: Any) -> None:
        write_durable(effects)
        journal.append("write log " + ",".join(type(effect).__name__ for effect in effects))

    def after_send(effects: Any) -> None:
        write_after_send(effects)
        journal.append("write backup file")

    runtime.write_durable = durable  # type: ignore[method-assign]
    runtime.write_after_send = after_send  # type: ignore[method-assign]
    return runtime


async def _one_round(runtime: NodeRuntime, effects: list[Any], journal: list[str], expected: int) -> None:
    rounds = asyncio.create_task(runtime._rounds())
    runtime.submit(effects)
    for _ in range(100):
        if len(journal) >= expected:
            break
        await asyncio.sleep(0.01)
    rounds.cancel()
    await asyncio.gather(rounds, return_exceptions=True)


def test_round_order_eager_first_backup_last(tmp_path: Path) -> None:
    journal: list[str] = []
    runtime = _store_runtime(tmp_path, journal)
    entry = Entry(1, 1, 1, 7, 1, "hello")
    effects = [
        AppendLog(0, (entry,)),
        Send("store", 2, Replicate(1, 1, 0, (entry,), 0), eager=True),
        Send("store", 2, Commit(1, 1)),
        Send("sync", 1, WriteAck(1, 1, 1)),
        CommitLog((entry,)),
        PersistState({"epoch": 1}),
    ]

    asyncio.run(_one_round(runtime, effects, journal, expected=5))
    runtime.events.close()

    assert journal == [
        "send Replicate to store 2",
        "write log AppendLog,PersistState",
        "send Commit to store 2",
        "send WriteAck to sync 1",
        "write backup file",
    ]
    assert read_entries(tmp_path / "store_1.wal") == [entry]
    assert read_entries(tmp_path / "backup_1.txt") == [entry]


def test_plain_send_waits_for_log_write(tmp_path: Path) -> None:
    journal: list[str] = []
    runtime = _store_runtime(tmp_path, journal)
    entry = Entry(1, 1, 1, 7, 1, "hello")
    effects = [AppendLog(0, (entry,)), Send("store", 2, Replicate(1, 1, 0, (entry,), 0))]

    asyncio.run(_one_round(runtime, effects, journal, expected=2))
    runtime.events.close()

    assert journal == ["write log AppendLog", "send Replicate to store 2"]


def test_leader_sends_before_output_append(tmp_path: Path) -> None:
    journal: list[str] = []
    runtime = SyncRuntime(_settings("sync", tmp_path))
    _record_links(runtime, journal)
    append = runtime.output.append

    def recorded_append(*args: Any) -> Any:
        journal.append("append output")
        return append(*args)

    runtime.output.append = recorded_append  # type: ignore[method-assign]
    entry = Entry(1, 1, 1, 7, 1, "hello")
    effects = [AppendOutput(1, (entry,)), Send("store", 1, Write(1, 1, 1, (entry,)))]

    asyncio.run(_one_round(runtime, effects, journal, expected=2))
    runtime.events.close()

    assert journal == ["send Write to store 1", "append output"]
    assert read_entries(tmp_path / "output.txt") == [entry]


def test_ticker_reports_elapsed_periods(tmp_path: Path) -> None:
    """A tick that comes late after a busy stretch carries the number of periods that passed."""
    runtime = StoreRuntime(_settings("store", tmp_path))
    seen: list[int] = []

    def on_tick(elapsed: int) -> list[Any]:
        seen.append(elapsed)
        if len(seen) == 2:
            time.sleep(0.1)  # the event loop is busy for ten tick periods
        return []

    runtime.on_tick = on_tick  # type: ignore[method-assign]

    async def run_ticker() -> None:
        ticker = asyncio.create_task(runtime._ticker())
        while len(seen) < 4:
            await asyncio.sleep(0.01)
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)

    asyncio.run(run_ticker())
    runtime.events.close()

    assert seen[0] >= 1
    assert seen[2] >= 9


@pytest.mark.timeout(30)  # without the thread fallback the event loop blocks in flock for good
def test_held_output_lock_keeps_loop_running(tmp_path: Path) -> None:
    """While another process holds output.lock, the append waits in a thread and the round's messages still leave."""
    journal: list[str] = []
    runtime = SyncRuntime(_settings("sync", tmp_path))
    _record_links(runtime, journal)
    results: list[Any] = []
    runtime.node.handle_output_result = lambda term, decision: results.append(decision) or []  # type: ignore[method-assign]
    entry = Entry(1, 1, 1, 7, 1, "hello")
    holder = os.open(tmp_path / "output.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(holder, fcntl.LOCK_EX)

    async def run() -> None:
        rounds = asyncio.create_task(runtime._rounds())
        runtime.submit([AppendOutput(1, (entry,)), Send("store", 1, Write(1, 1, 1, (entry,)))])
        while not journal:
            await asyncio.sleep(0.01)
        assert results == []
        os.close(holder)  # releases the flock
        while not results:
            await asyncio.sleep(0.01)
        rounds.cancel()
        await asyncio.gather(rounds, *runtime.output_tasks, return_exceptions=True)

    asyncio.run(asyncio.wait_for(run(), 10))
    runtime.events.close()

    assert journal == ["send Write to store 1"]
    assert [decision.last_seq for decision in results] == [1]
    assert read_entries(tmp_path / "output.txt") == [entry]


def test_backup_file_fsync_waits_for_a_tick(tmp_path: Path) -> None:
    """The round writes the backup file without an fsync; a tick BACKUP_SYNC_SECONDS later fsyncs it."""
    journal: list[str] = []
    runtime = _store_runtime(tmp_path, journal)
    entry = Entry(1, 1, 1, 7, 1, "hello")
    effects = [AppendLog(0, (entry,)), Send("sync", 1, WriteAck(1, 1, 1)), CommitLog((entry,))]

    asyncio.run(_one_round(runtime, effects, journal, expected=3))

    assert read_entries(tmp_path / "backup_1.txt") == [entry]
    assert runtime.backup.unsynced
    runtime.on_tick(1)
    assert runtime.backup.unsynced  # too soon after the last fsync
    runtime.backup_synced_at -= BACKUP_SYNC_SECONDS
    runtime.on_tick(1)
    assert not runtime.backup.unsynced
    runtime.events.close()


def test_shutdown_fsyncs_backup_file(tmp_path: Path) -> None:
    journal: list[str] = []
    runtime = _store_runtime(tmp_path, journal)
    entry = Entry(1, 1, 1, 7, 1, "hello")
    effects = [AppendLog(0, (entry,)), CommitLog((entry,))]

    async def run() -> None:
        await _one_round(runtime, effects, journal, expected=2)
        await runtime.shutdown()

    asyncio.run(run())

    assert not runtime.backup.unsynced
    assert read_entries(tmp_path / "backup_1.txt") == [entry]


def test_failed_task_gives_exit_status_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node whose task raises stops, and its process exits with status 1 instead of 0."""
    from cluster.node import main

    settings = dataclasses.replace(_settings("sync", tmp_path), port=0, cluster_port=0)

    def broken_tick(self: SyncRuntime, elapsed: int) -> list[Any]:
        raise RuntimeError("tick failed")

    monkeypatch.setattr(SyncRuntime, "on_tick", broken_tick)

    assert main._run(settings, None) == main.EXIT_NODE_FAILED


def test_returned_task_gives_exit_status_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task that returns while the node runs stops it with status 1, since status 0 means it was asked to stop."""
    from cluster.node import main

    settings = dataclasses.replace(_settings("sync", tmp_path), port=0, cluster_port=0)

    async def ticker_that_returns(self: SyncRuntime) -> None:
        return None

    monkeypatch.setattr(SyncRuntime, "_ticker", ticker_that_returns)

    assert main._run(settings, None) == main.EXIT_NODE_FAILED
