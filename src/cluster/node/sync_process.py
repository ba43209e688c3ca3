"""A sync node process: a `SyncNode` with its state file and the shared output file."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence

from cluster.core.dispatch import dispatch_sync
from cluster.core.effects import AppendOutput, Effect, FenceOutput, PersistState
from cluster.core.messages import ClientRequest, StatusReply
from cluster.core.output import OutputDecision
from cluster.core.sync_node import SyncNode
from cluster.files import DataFileError, OutputFile, StateFile, check_state, sync_state_path
from cluster.node.runtime import NodeRuntime
from cluster.node.settings import NodeSettings
from cluster.wire import Message

logger = logging.getLogger(__name__)

# A leader that has waited this long for output.lock logs a warning. An append holds the lock for a
# fraction of a millisecond, so a wait this long usually means that the holder is paused or stuck.
OUTPUT_LOCK_WARNING_SECONDS = 2.0


class SyncRuntime(NodeRuntime):
    role = "sync"

    def __init__(self, settings: NodeSettings) -> None:
        super().__init__(settings)
        self.state_file = StateFile(sync_state_path(settings.data_dir, self.node_id))
        self.output = OutputFile(settings.data_dir)
        # Output operations that wait for another process to release the lock.
        self.output_lock = asyncio.Lock()
        self.output_tasks: set[asyncio.Task[None]] = set()
        self.output_waiting = 0
        # The warning that the operations have waited long for the lock, logged once per stretch of waiting.
        self.lock_warning: asyncio.TimerHandle | None = None
        sync_ids = list(range(1, len(settings.sync_nodes) + 1))
        store_ids = list(range(1, len(settings.store_nodes) + 1))
        rng = random.Random(settings.seed if settings.seed is not None else None)
        persisted = self.state_file.load()
        if persisted is not None:
            check_state(self.state_file.path, persisted, "sync", len(settings.sync_nodes), len(settings.store_nodes))
        try:
            self.node = SyncNode(self.node_id, sync_ids, store_ids, rng, bugs=settings.bugs, persisted=persisted)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            if persisted is None:
                raise
            raise self.state_file.invalid(error, "sync") from None
        self._check_output_files()
        if self.node.term:
            logger.info("sync %d: recovered term %d, epoch %d", self.node_id, self.node.term, self.node.config.epoch)

        for peer, address in enumerate(settings.sync_nodes, start=1):
            if peer != self.node_id:
                self.add_link("sync", peer, address.host, address.cluster_port, self._sync_link_state(peer))
        for store, address in enumerate(settings.store_nodes, start=1):
            self.add_link("store", store, address.host, address.cluster_port, self._store_link_state(store))

    def _check_output_files(self) -> None:
        """Raise DataFileError now, before the node starts, if output.fence or output.txt cannot be read.

        Otherwise the damage would show only once this node became leader,
        and every node elected after it would stop on the same file. While
        another process holds the output lock the check is skipped, because
        a leader paused in the middle of an append would block the start.
        """
        try:
            self.output.read_state(wait=False)
        except BlockingIOError:
            logger.info("sync %d: output.lock is held by another process; output files not checked at start",
                        self.node_id)

    def _sync_link_state(self, peer: int) -> Callable[[bool], None]:
        def changed(up: bool) -> None:
            if not up:
                self.submit(self.node.handle_peer_down(peer))

        return changed

    def _store_link_state(self, store: int) -> Callable[[bool], None]:
        def changed(up: bool) -> None:
            if up:
                self.submit(self.node.handle_peer_connected("store", store))
            else:
                self.submit(self.node.handle_store_down(store))

        return changed

    def on_tick(self, elapsed: int) -> list[Effect]:
        return self.node.tick(elapsed)

    def on_peer_message(self, message: Message) -> list[Effect]:
        return dispatch_sync(self.node, message)

    def on_client_message(self, conn: int, message: Message) -> list[Effect]:
        if isinstance(message, ClientRequest):
            effects = self.node.handle_client_request(conn, message)
            # An accepted request yields no effect until `before_send` batches it
            # into a Write, so start a round now: otherwise it waits for the next
            # tick that has work, which is often the next heartbeat (50 ms).
            self.wake.set()
            return effects
        return super().on_client_message(conn, message)

    def status(self) -> StatusReply:
        return self.node.status()

    def before_send(self) -> list[Effect]:
        return self.node.flush()

    def write_durable(self, effects: Sequence[Effect]) -> None:
        states = [effect.state for effect in effects if isinstance(effect, PersistState)]
        if states:
            self.state_file.save(states[-1])

    def run_other_effect(self, effect: Effect) -> None:
        """Carry out one fenced output operation and report its result to the node.

        It runs on the event loop, like the other disk writes: the lock, the
        fence check, the append and its fsync take a fraction of a
        millisecond. The node's replies to the clients whose entries are now
        in the file go out in the next round, right after this one. While
        another process holds the lock (a deposed leader paused in the middle
        of an append), the operation waits in a worker thread instead, so the
        node keeps serving its peers and clients.
        """
        if not isinstance(effect, FenceOutput | AppendOutput):
            super().run_other_effect(effect)
            return
        if self.output_waiting == 0:
            try:
                self._report_output(effect, self._apply_output(effect, wait=False))
                return
            except BlockingIOError:
                pass
        self.output_waiting += 1
        task = asyncio.create_task(self._output_in_thread(effect), name="output")
        self.output_tasks.add(task)
        task.add_done_callback(self.output_tasks.discard)

    async def _output_in_thread(self, effect: FenceOutput | AppendOutput) -> None:
        """Wait for the output lock in a worker thread; operations keep the order they were decided in."""
        if self.lock_warning is None:
            self.lock_warning = asyncio.get_running_loop().call_later(OUTPUT_LOCK_WARNING_SECONDS,
                                                                      self._warn_output_lock)
        try:
            async with self.output_lock:
                decision = await asyncio.to_thread(self._apply_output, effect, True)
                self._report_output(effect, decision)
        except DataFileError as error:
            self.fail(error)
        finally:
            self.output_waiting -= 1
            if self.output_waiting == 0 and self.lock_warning is not None:
                self.lock_warning.cancel()
                self.lock_warning = None

    def _warn_output_lock(self) -> None:
        logger.warning("sync %d: waited %.0f s for output.lock, locked by another process; output.txt cannot "
                       "advance until that process releases the lock, and a paused leader releases it only when "
                       "it resumes", self.node_id, OUTPUT_LOCK_WARNING_SECONDS)

    def _apply_output(self, effect: FenceOutput | AppendOutput, wait: bool) -> OutputDecision:
        if isinstance(effect, FenceOutput):
            return self.output.raise_fence(effect.term, wait)
        return self.output.append(effect.term, effect.entries, self.settings.bugs, wait)

    def _report_output(self, effect: FenceOutput | AppendOutput, decision: OutputDecision) -> None:
        if isinstance(effect, FenceOutput):
            self.submit(self.node.handle_fence_result(effect.term, decision))
        else:
            self.submit(self.node.handle_output_result(effect.term, decision))
