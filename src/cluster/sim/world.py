"""An in-memory cluster that drives the real protocol state machines.

`World` holds every sync node, store node and client session, a network of
messages in flight, the disks the nodes persist to, and the shared output
file. It carries out effects exactly as the node processes do (durable
effects before messages, the fenced output append under one rule) but in
memory and one event at a time, so a scheduler can choose every delivery,
timer and fault, and replay them exactly.

It also keeps ghost state for the invariants: every leader ever elected, the
log that primaries declared committed, and every acknowledgement a client
received.

Every packet carries a per-link sequence number (the n-th message sent from
`source` to `target`) and every output operation a per-node one, so a
schedule can name them without Python object ids and replay exactly. A
partition cuts every link between a group of nodes and the rest: messages
sent across it are lost, as are those in flight when it starts. A paused node
(SIGSTOP) keeps its state; the scheduler gives it no events until it resumes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cluster.core.bugs import Bug
from cluster.core.client import ClientSession
from cluster.core.dispatch import dispatch_store, dispatch_sync
from cluster.core.effects import (
    AppendLog,
    AppendOutput,
    CommitLog,
    Effect,
    Event,
    FenceOutput,
    PersistState,
    Reply,
    Send,
)
from cluster.core.messages import ClientReply, ClientRequest, Entry, EpochReady, ReplyStatus, StoreConfig, WriteAck
from cluster.core.output import OutputState, append_output, raise_fence
from cluster.core.spec_names import action
from cluster.core.store_node import StoreNode
from cluster.core.sync_node import SyncNode
from cluster.core.timers import Timers
from cluster.i18n import _
from cluster.invariants import (
    Ack,
    acked_committed,
    client_order,
    committed_on_all,
    election_safety,
    epoch_fencing,
    lamport_order,
    log_matching,
    output_prefix,
)

Address = tuple[str, int]  # ("sync" | "store" | "client", node id)


@dataclass(frozen=True, slots=True)
class Packet:
    """A message in flight from `source` to `target`."""

    id: int
    source: Address
    target: Address
    message: Any
    conn: int = 0  # client connection id, for client requests and replies
    seq: int = 0  # the n-th packet sent from `source` to `target`, counted from 1


@dataclass(frozen=True, slots=True)
class PendingOutput:
    """An output-file operation a sync node started and the disk has not finished."""

    id: int
    node: int
    effect: FenceOutput | AppendOutput
    seq: int = 0  # the n-th output operation sync node `node` started, counted from 1


@dataclass(slots=True)
class StoreDisk:
    state: dict[str, Any] | None = None
    wal: list[Entry] = field(default_factory=list)
    backup: list[Entry] = field(default_factory=list)


class World:
    """A whole cluster in one process, advanced one event at a time."""

    def __init__(
        self,
        sync_count: int = 3,
        store_count: int = 2,
        client_count: int = 1,
        messages_per_client: int = 3,
        seed: int = 0,
        bugs: frozenset[Bug] = frozenset(),
        timers: Timers | None = None,
        window: int = 4,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.bugs = bugs
        self.timers = timers or Timers()
        self.sync_ids = tuple(range(1, sync_count + 1))
        self.store_ids = tuple(range(1, store_count + 1))
        self.client_ids = tuple(range(1, client_count + 1))

        self.sync_disk: dict[int, dict[str, Any] | None] = dict.fromkeys(self.sync_ids)
        self.store_disk: dict[int, StoreDisk] = {node: StoreDisk() for node in self.store_ids}
        self.sync: dict[int, SyncNode | None] = {node: self._new_sync(node) for node in self.sync_ids}
        self.store: dict[int, StoreNode | None] = {node: self._new_store(node) for node in self.store_ids}
        self.clients: dict[int, ClientSession] = {
            client: ClientSession(
                client,
                self.sync_ids,
                [f"c{client}-m{index}" for index in range(1, messages_per_client + 1)],
                first_target=self.sync_ids[(client - 1) % len(self.sync_ids)],
                window=window,
                timers=self.timers,
            )
            for client in self.client_ids
        }

        self.network: list[Packet] = []
        self.next_packet_id = 1
        self.link_sent: dict[tuple[Address, Address], int] = {}
        self.output: list[Entry] = []
        self.output_writes: list[tuple[int, int]] = []  # ghost: (writer's term, fence before) per line
        self.fence = 0
        self.pending_output: list[PendingOutput] = []
        self.next_output_id = 1
        self.output_started: dict[int, int] = dict.fromkeys(self.sync_ids, 0)

        # Faults that last a while: the nodes cut off from the rest, and paused nodes.
        self.partition: frozenset[Address] = frozenset()
        self.paused: set[Address] = set()
        self.lost_to_partition = 0

        # Ghost state for the invariants.
        self.leaders: set[tuple[int, int]] = set()
        self.committed: list[Entry] = []
        self.commit_conflicts: list[str] = []
        self.acks: list[Ack] = []
        self.epoch_history: dict[int, list[int]] = {node: [0] for node in self.store_ids}
        self.current_config: StoreConfig | None = None  # newest configuration whose primary got ready
        self.events: list[tuple[Address, Event]] = []
        self.keep_events = True

        # The invariants read only the ghost state, the disks and the output file.
        # `_version` counts changes to those, so `check_invariants` recomputes the
        # checks only after a step that changed their input.
        self._version = 0
        self._checked_version = -1
        self._cached: dict[str, list[str]] = {}

        for client in self.client_ids:
            self._apply(("client", client), self.clients[client].send_request())

    # --- Construction and restart -------------------------------------------------

    def _new_sync(self, node: int) -> SyncNode:
        rng = random.Random(self.rng.getrandbits(32))
        return SyncNode(node, self.sync_ids, self.store_ids, rng, self.timers, self.bugs, self.sync_disk[node])

    def _new_store(self, node: int) -> StoreNode:
        disk = self.store_disk[node]
        return StoreNode(
            node, self.store_ids, self.timers, self.bugs, disk.state, list(disk.wal), len(disk.backup)
        )

    # --- Events a scheduler can choose -------------------------------------------------

    def deliver(self, packet_id: int) -> None:
        """Deliver the packet `packet_id` and remove it from the network."""
        packet = self._take(packet_id)
        role, node = packet.target
        if role == "sync":
            sync = self.sync[node]
            if sync is not None:
                effects = self._dispatch_sync(sync, packet)
                self._apply(packet.target, effects + sync.flush())
        elif role == "store":
            store = self.store[node]
            if store is not None:
                self._apply(packet.target, dispatch_store(store, packet.message))
        else:
            session = self.clients[node]
            self._apply(packet.target, session.handle_client_reply(packet.source[1], packet.message))

    def tick(self, address: Address) -> None:
        """Advance the clock of one node or client by one tick."""
        role, node = address
        if role == "sync":
            sync = self.sync[node]
            if sync is not None:
                self._apply(address, sync.tick() + sync.flush())
        elif role == "store":
            store = self.store[node]
            if store is not None:
                self._apply(address, store.tick())
        else:
            self._apply(address, self.clients[node].tick())

    def tick_all(self) -> None:
        """Advance every live node and client by one tick, in a fixed order."""
        for node in self.sync_ids:
            self.tick(("sync", node))
        for node in self.store_ids:
            self.tick(("store", node))
        for client in self.client_ids:
            self.tick(("client", client))

    @action("DropMessage")
    def drop_message(self, packet_id: int) -> None:
        """Lose a message in the network."""
        self._take(packet_id)

    @action("DuplicateMessage")
    def duplicate_message(self, packet_id: int) -> None:
        """Queue a second copy of a message in flight."""
        packet = next(p for p in self.network if p.id == packet_id)
        self._send(packet.source, packet.target, packet.message, packet.conn)

    @action("CrashSync")
    def crash_sync(self, node: int) -> None:
        """Stop a sync node: its disk survives and its connections close.

        An output operation it started may still finish, as a write already
        handed to the kernel does.
        """
        self.sync[node] = None
        self.paused.discard(("sync", node))
        self._close_connections(("sync", node))

    @action("RestartSync")
    def restart_sync(self, node: int) -> None:
        """Start a crashed sync node again from its disk."""
        if self.sync[node] is None:
            self.sync[node] = self._new_sync(node)

    @action("CrashStore")
    def crash_store(self, node: int) -> None:
        """Stop a store node: its write-ahead log and backup file survive."""
        self.store[node] = None
        self.paused.discard(("store", node))
        self._close_connections(("store", node))

    @action("RestartStore")
    def restart_store(self, node: int) -> None:
        """Start a crashed store node again from its disk."""
        if self.store[node] is None:
            self.store[node] = self._new_store(node)

    def start_partition(self, group: frozenset[Address]) -> None:
        """Cut every link between `group` and the other nodes, both ways, until `heal`.

        Partitions and pauses carry no spec action name: in the spec a partition
        is a run of DropMessage steps, and a paused node is one that takes no step.

        Messages in flight across the cut are lost; connections stay open, as
        when a switch drops packets rather than resetting them.
        """
        self.partition = group
        kept = [packet for packet in self.network if not self.is_cut(packet.source, packet.target)]
        self.lost_to_partition += len(self.network) - len(kept)
        self.network = kept

    def heal(self) -> None:
        """End the partition."""
        self.partition = frozenset()

    def is_cut(self, source: Address, target: Address) -> bool:
        """Return True when the partition separates `source` from `target`."""
        group = self.partition
        return bool(group) and ((source in group) != (target in group))

    def pause(self, address: Address) -> None:
        """Stop a live node as SIGSTOP does: it keeps its state and gets no events."""
        self.paused.add(address)

    def resume(self, address: Address) -> None:
        self.paused.discard(address)

    def is_live(self, address: Address) -> bool:
        """Return True when `address` is a client or a running node."""
        role, node = address
        if role == "sync":
            return self.sync[node] is not None
        if role == "store":
            return self.store[node] is not None
        return True

    def _close_connections(self, address: Address) -> None:
        """Tell the peers of a crashed node that their connections to it closed."""
        role, node = address
        for sync in self.sync.values():
            if sync is None:
                continue
            effects = sync.handle_peer_down(node) if role == "sync" else sync.handle_store_down(node)
            self._apply(("sync", sync.node_id), effects)
        if role == "sync":
            for client in self.clients.values():
                self._apply(("client", client.client_id), client.handle_disconnect(node))

    # --- Effects ------------------------------------------------------------------------

    def _apply(self, address: Address, effects: Sequence[Effect]) -> None:
        role, node = address
        for effect in effects:
            if isinstance(effect, Send):
                conn = _conn(node, effect.node) if role == "client" else 0
                self._send(address, (effect.role, effect.node), effect.message, conn)
            elif isinstance(effect, Reply):
                client, _ = _split_conn(effect.conn)
                self._send(address, ("client", client), effect.message, effect.conn)
                self._note_reply(effect.message)
            elif isinstance(effect, PersistState):
                self._persist(address, effect.state)
            elif isinstance(effect, AppendLog):
                wal = self.store_disk[node].wal
                del wal[effect.keep :]
                wal.extend(effect.entries)
                self._version += 1
            elif isinstance(effect, CommitLog):
                self.store_disk[node].backup.extend(effect.entries)
                self._version += 1
            elif isinstance(effect, FenceOutput | AppendOutput):
                # The node process runs these in a thread, so they finish later.
                started = self.output_started[node] + 1
                self.output_started[node] = started
                self.pending_output.append(PendingOutput(self.next_output_id, node, effect, started))
                self.next_output_id += 1
            else:
                if self.keep_events:
                    self.events.append((address, effect))
                if effect.name == "became_leader":
                    self.leaders.add((int(effect.fields["term"]), node))
                    self._version += 1
            if role == "store":
                self._note_commit(address, effect)

    def _persist(self, address: Address, state: dict[str, Any]) -> None:
        role, node = address
        if role == "sync":
            self.sync_disk[node] = state
            return
        self.store_disk[node].state = state
        epoch = int(state["config"]["epoch"])
        if epoch != self.epoch_history[node][-1]:
            self.epoch_history[node].append(epoch)
            self._version += 1

    def complete_output(self, output_id: int) -> None:
        """Finish the output-file operation `output_id` and report the result to its node."""
        for index, pending in enumerate(self.pending_output):
            if pending.id == output_id:
                del self.pending_output[index]
                break
        else:
            raise KeyError(f"no output operation {output_id} pending")
        if isinstance(pending.effect, FenceOutput):
            self._fence(pending.node, pending.effect)
        else:
            self._append_output(pending.node, pending.effect)

    def _fence(self, node: int, effect: FenceOutput) -> None:
        decision = raise_fence(OutputState(self.fence, len(self.output)), effect.term)
        self.fence = decision.fence_term
        sync = self.sync[node]
        if sync is not None:
            self._apply(("sync", node), sync.handle_fence_result(effect.term, decision) + sync.flush())

    def _append_output(self, node: int, effect: AppendOutput) -> None:
        fence_before = self.fence
        decision = append_output(OutputState(self.fence, len(self.output)), effect.term, effect.entries, self.bugs)
        self.fence = decision.fence_term
        if decision.entries:
            self.output.extend(decision.entries)
            self.output_writes.extend([(effect.term, fence_before)] * len(decision.entries))
            self._version += 1
        sync = self.sync[node]
        if sync is not None:
            self._apply(("sync", node), sync.handle_output_result(effect.term, decision) + sync.flush())

    def _send(self, source: Address, target: Address, message: Any, conn: int) -> None:
        link = (source, target)
        seq = self.link_sent.get(link, 0) + 1
        self.link_sent[link] = seq
        self.next_packet_id += 1
        if self.partition and self.is_cut(source, target):
            self.lost_to_partition += 1
            return
        self.network.append(Packet(self.next_packet_id - 1, source, target, message, conn, seq))

    def find_packet(self, source: Address, target: Address, seq: int) -> Packet | None:
        """Return the packet in flight that is the `seq`-th sent from `source` to `target`."""
        for packet in self.network:
            if packet.seq == seq and packet.source == source and packet.target == target:
                return packet
        return None

    def find_output(self, node: int, seq: int) -> PendingOutput | None:
        """Return the pending output operation that sync node `node` started as its `seq`-th."""
        for pending in self.pending_output:
            if pending.node == node and pending.seq == seq:
                return pending
        return None

    def _take(self, packet_id: int) -> Packet:
        for index, packet in enumerate(self.network):
            if packet.id == packet_id:
                return self.network.pop(index)
        raise KeyError(f"no packet {packet_id} in flight")

    def _dispatch_sync(self, sync: SyncNode, packet: Packet) -> list[Effect]:
        message = packet.message
        if isinstance(message, ClientRequest):
            return sync.handle_client_request(packet.conn, message)
        return dispatch_sync(sync, message)

    # --- Ghost state -----------------------------------------------------------------------

    def _note_commit(self, address: Address, effect: Effect) -> None:
        """Extend the ghost committed log when a primary declares entries committed."""
        if address[0] != "store" or not isinstance(effect, Send):
            return
        message = effect.message
        if isinstance(message, WriteAck):
            upto = message.commit
        elif isinstance(message, EpochReady):
            upto = message.last_seq
        else:
            return
        store = self.store[address[1]]
        if store is None:
            return
        self._version += 1
        if self.current_config is None or store.config.epoch > self.current_config.epoch:
            self.current_config = store.config
        log = store.log
        for seq in range(1, min(upto, len(log)) + 1):
            entry = log[seq - 1]
            if seq <= len(self.committed):
                if self.committed[seq - 1] != entry:
                    self.commit_conflicts.append(
                        _("store node {node} declared a different entry committed at seq {seq}").format(
                            node=address[1], seq=seq)
                    )
            else:
                self.committed.append(entry)

    def _note_reply(self, message: Any) -> None:
        if isinstance(message, ClientReply) and message.status is ReplyStatus.OK:
            self.acks.append(Ack(message.client_id, message.request_id, message.seq))
            self._version += 1

    # --- Invariants ---------------------------------------------------------------------------

    def current_members(self) -> dict[int, list[Entry]]:
        """On-disk logs of the members of the newest epoch whose primary finished its epoch sync."""
        if self.current_config is None:
            return {}
        return {member: self.store_disk[member].wal for member in self.current_config.members}

    def check_invariants(self) -> dict[str, list[str]]:
        """Return each invariant's violations (an empty dict when all hold).

        The checks are pure functions of the ghost state, the disks, the output
        file and the stores' stale-accept counters. The first five are recomputed
        only when a step changed them, so a call after a step that only moved
        timers or messages costs a few comparisons.
        """
        if self._checked_version != self._version:
            self._cached = self._check_all()
            self._checked_version = self._version
        stale = 0
        for store in self.store.values():
            if store is not None:
                stale += store.stale_accepts
        if not stale:
            return self._cached
        results = dict(self._cached)
        results["EpochFencingInv"] = self._check_all()["EpochFencingInv"]
        return results

    def _check_all(self) -> dict[str, list[str]]:
        logs = {node: disk.wal for node, disk in self.store_disk.items()}
        commits = {node: len(disk.backup) for node, disk in self.store_disk.items()}
        stale = {node: store.stale_accepts for node, store in self.store.items() if store is not None}
        results = {
            "ElectionSafetyInv": election_safety(self.leaders),
            "EpochFencingInv": epoch_fencing(stale, self.epoch_history, self.output_writes),
            "CommittedOnAllInv": self.commit_conflicts + committed_on_all(self.committed, self.current_members()),
            "LogMatchingInv": log_matching(self.current_members(), logs, commits, self.committed),
            "OutputPrefixInv": output_prefix(self.output, self.committed),
            "LamportOrderInv": lamport_order(self.committed),
            "ClientOrderInv": client_order(self.committed),
            "AckedCommittedInv": acked_committed(self.acks, self.committed, self.output),
        }
        return {name: found for name, found in results.items() if found}

    def all_acknowledged(self) -> bool:
        return all(client.done for client in self.clients.values())


def _conn(client: int, sync_node: int) -> int:
    """Encode the connection of `client` to `sync_node` as one integer."""
    return client << 8 | sync_node


def _split_conn(conn: int) -> tuple[int, int]:
    return conn >> 8, conn & 0xFF
