"""A store node process: a `StoreNode` with its write-ahead log, backup file and state file."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from cluster.core.dispatch import dispatch_store
from cluster.core.effects import AppendLog, CommitLog, Effect, PersistState
from cluster.core.messages import StatusReply
from cluster.core.store_node import StoreNode
from cluster.files import (
    BackupFile,
    StateFile,
    WriteAheadLog,
    backup_path,
    check_state,
    store_state_path,
    wal_path,
)
from cluster.node.runtime import NodeRuntime
from cluster.node.settings import NodeSettings
from cluster.wire import Message

logger = logging.getLogger(__name__)

# A full garbage collection that takes longer than this is followed by gc.freeze().
SLOW_COLLECTION_SECONDS = 0.02
# The backup file is fsynced at most this long after an append, on a tick.
BACKUP_SYNC_SECONDS = 0.1


def freeze_after_slow_collections() -> Callable[[str, dict[str, Any]], None]:
    """Freeze the survivors of every slow full collection, and return the installed gc callback.

    A store node's log is one object per entry that lives as long as the
    process, and every full collection walks all of them again. In the
    primary failover run of benchmarks/cluster_bench.py on a 2-core machine,
    full collections of stores holding over a million entries took up to
    1.1 s, longer than the leader waits before it declares a store failed.
    Frozen objects are skipped, so a later collection walks only the objects
    created since.

    NOTE: an object that is alive when frozen and later becomes part of a
    garbage reference cycle is never freed. Slow collections are rare, so
    few transient objects get frozen this way.
    """
    global _freeze_callback
    if _freeze_callback is not None:
        return _freeze_callback
    started = 0.0

    def callback(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if info["generation"] != 2:
            return
        if phase == "start":
            started = time.perf_counter()
        elif time.perf_counter() - started > SLOW_COLLECTION_SECONDS:
            gc.freeze()

    gc.callbacks.append(callback)
    _freeze_callback = callback
    return callback


_freeze_callback: Callable[[str, dict[str, Any]], None] | None = None


class StoreRuntime(NodeRuntime):
    role = "store"

    def __init__(self, settings: NodeSettings) -> None:
        super().__init__(settings)
        data_dir = settings.data_dir
        self.state_file = StateFile(store_state_path(data_dir, self.node_id))
        self.wal = WriteAheadLog(wal_path(data_dir, self.node_id))
        self.backup = BackupFile(backup_path(data_dir, self.node_id))
        self.backup_synced_at = time.monotonic()
        log = self.wal.load()
        committed = self.backup.load_prefix_of(self.wal, log)

        store_ids = list(range(1, len(settings.store_nodes) + 1))
        persisted = self.state_file.load()
        if persisted is not None:
            check_state(self.state_file.path, persisted, "store", len(settings.sync_nodes), len(settings.store_nodes))
        try:
            self.node = StoreNode(
                self.node_id, store_ids, bugs=settings.bugs, persisted=persisted, log=log, commit=committed,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            if persisted is None:
                raise
            raise self.state_file.invalid(error, "store") from None
        gc.freeze()  # the replayed log, which lives as long as the process
        freeze_after_slow_collections()
        if log:
            logger.info(
                "store %d: recovered epoch %d, %d entries, %d committed",
                self.node_id, self.node.epoch, len(log), committed,
            )

        for peer, address in enumerate(settings.sync_nodes, start=1):
            self.add_link("sync", peer, address.host, address.cluster_port, _ignore)
        for peer, address in enumerate(settings.store_nodes, start=1):
            if peer != self.node_id:
                self.add_link("store", peer, address.host, address.cluster_port, self._store_link_state(peer))

    def _store_link_state(self, peer: int) -> Callable[[bool], None]:
        def changed(up: bool) -> None:
            if up:
                self.submit(self.node.handle_peer_connected("store", peer))

        return changed

    def on_tick(self, elapsed: int) -> list[Effect]:
        if self.backup.unsynced and time.monotonic() - self.backup_synced_at >= BACKUP_SYNC_SECONDS:
            self._sync_backup()
        return self.node.tick()

    def _sync_backup(self) -> None:
        self.backup.sync()
        self.backup_synced_at = time.monotonic()

    async def shutdown(self) -> None:
        await super().shutdown()
        self._sync_backup()

    def on_peer_message(self, message: Message) -> list[Effect]:
        return dispatch_store(self.node, message)

    def status(self) -> StatusReply:
        return self.node.status()

    def write_durable(self, effects: Sequence[Effect]) -> None:
        states = [effect.state for effect in effects if isinstance(effect, PersistState)]
        if states:
            self.state_file.save(states[-1])
        batches = [(effect.keep, effect.entries) for effect in effects if isinstance(effect, AppendLog)]
        if batches:
            self.wal.apply_many(batches)

    def write_after_send(self, effects: Sequence[CommitLog]) -> None:
        """Extend the backup file, and leave its fsync to a later tick.

        An fsync here would run while the leader fsyncs `output.txt` for the
        same entries, and the two would compete for the disk. On the
        benchmark machine (docs/benchmarks.md), this deferral lowered the
        sequential latency p50 by 0.1 to 0.2 ms.
        """
        committed = [entry for effect in effects if isinstance(effect, CommitLog) for entry in effect.entries]
        if committed:
            self.backup.append(committed, durable=False)


def _ignore(up: bool) -> None:
    return None
