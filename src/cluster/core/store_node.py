"""Store node: the primary-backup remote-write protocol with epochs.

A `StoreNode` owns its replica of the log, its commit index and the epoch it
installed. As primary of an epoch it forwards writes to every backup and
acknowledges them to the sync leader only once all backups hold them on disk
(steps W2 to W5). It never touches sockets, files or clocks: handlers return
effects, and the driver writes the log before it sends any message that
follows the write.

Rules it keeps:
- it rejects writes, replication and configurations from an older epoch, and
  configurations from an older leader term;
- within an epoch its log is a prefix of the primary's log;
- an entry is committed only when every member of the configuration has it,
  and only committed entries reach `backup_<id>.txt`;
- a node outside the configuration fetches the committed log from the primary
  before the leader adds it back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cluster.core.batching import split_batches
from cluster.core.bugs import Bug
from cluster.core.config import config_from_dict, config_to_dict
from cluster.core.effects import AppendLog, CommitLog, Effect, Event, PersistState, Send
from cluster.core.messages import (
    CatchUp,
    CatchUpReply,
    ClientMark,
    Commit,
    Entry,
    EpochReady,
    EpochSync,
    EpochSyncReply,
    FetchEntries,
    FetchReply,
    NewEpoch,
    RejectReason,
    Replicate,
    ReplicateReply,
    StatusReply,
    StoreConfig,
    StorePing,
    StoreStatus,
    Write,
    WriteAck,
    WriteReject,
    initial_config,
)
from cluster.core.spec_names import action
from cluster.core.timers import Timers

logger = logging.getLogger(__name__)

# Recent requests per client reported to a new leader in EpochReady.
RECENT_MARKS = 64
# Bounds of the entries in one EpochSync, CatchUpReply or FetchReply. Like
# `cluster.core.batching`, the text bound counts 4 bytes per character (the
# most UTF-8 needs), and JSON escaping can make that at most 1.5 times larger.
# With at most about 105 bytes of numbers and punctuation per entry, a batch
# encodes to less than 3.5 MiB, below `cluster.wire.MAX_FRAME_BYTES` (4 MiB).
CATCH_UP_BATCH = 4096
CATCH_UP_BATCH_TEXT_BYTES = 2 * 1024 * 1024


@dataclass(slots=True)
class PrimaryState:
    """Volatile state of the primary of the installed epoch."""

    match: dict[int, int]  # backup -> log length it confirmed on disk
    sent: dict[int, int]  # backup -> log length sent to it
    progress: dict[int, int]  # backup -> tick of its last reply
    synced: set[int] = field(default_factory=set)  # backups that took the epoch sync
    ready: bool = False  # EpochReady sent


class StoreNode:
    """One store node's protocol state machine."""

    def __init__(
        self,
        node_id: int,
        store_ids: Sequence[int],
        timers: Timers | None = None,
        bugs: frozenset[Bug] = frozenset(),
        persisted: dict[str, Any] | None = None,
        log: Sequence[Entry] = (),
        commit: int = 0,
    ) -> None:
        if node_id not in store_ids:
            raise ValueError(f"store node id {node_id} is not among the store ids {list(store_ids)}")
        if commit > len(log):
            raise ValueError(f"store node {node_id}: commit index {commit} exceeds log length {len(log)}")
        self.node_id = node_id
        self.store_ids = tuple(store_ids)
        self.timers = timers or Timers()
        self.bugs = bugs

        # Durable state: the installed epoch, its configuration and leader term,
        # the write-ahead log and (through the backup file) the commit index.
        self.config = initial_config(len(self.store_ids))
        self.leader_term = 0
        self.log: list[Entry] = list(log)
        self.commit = commit
        # The last epoch in which this log was made equal to the primary's, so it
        # contains every entry committed before that epoch.
        self.synced_epoch = 0
        if persisted is not None:
            self.config = config_from_dict(persisted["config"])
            self.leader_term = int(persisted["leader_term"])
            self.synced_epoch = int(persisted.get("synced_epoch", 0))

        # Volatile state.
        self.now = 0
        self.leader_id = 0
        self.primary: PrimaryState | None = None
        self.known_config: StoreConfig | None = None  # installed config learned from pings
        self.catch_up_sent = -1  # tick of the last CatchUp, -1 when none is out
        self.caught_up = False
        self.stale_accepts = 0  # ghost counter for EpochFencingInv: accepts from older epochs
        self.marks: dict[int, dict[int, ClientMark]] = {}
        self._rebuild_marks()

    @property
    def epoch(self) -> int:
        return self.config.epoch

    def persisted_state(self) -> dict[str, Any]:
        return {
            "config": config_to_dict(self.config),
            "leader_term": self.leader_term,
            "synced_epoch": self.synced_epoch,
        }

    def _persist(self) -> PersistState:
        return PersistState(self.persisted_state())

    # --- Timers ------------------------------------------------------------------

    def tick(self) -> list[Effect]:
        """Advance time: resend stalled replication or catch-up requests."""
        self.now += 1
        effects: list[Effect] = []
        if self.primary is not None:
            effects += self._resend_stalled()
        if self.catch_up_sent >= 0 and self.now - self.catch_up_sent >= self.timers.write_retry:
            self.catch_up_sent = -1
            effects += self._request_catch_up()
        return effects

    def _resend_stalled(self) -> list[Effect]:
        primary = self._primary()
        effects: list[Effect] = []
        for backup in self.config.backups:
            synced = backup in primary.synced
            behind = not synced or primary.match[backup] < len(self.log)
            if not behind or self.now - primary.progress[backup] < self.timers.write_retry:
                continue
            primary.progress[backup] = self.now
            if synced:
                primary.sent[backup] = primary.match[backup]
                effects += self._send_to_backup(backup)
            else:
                effects.append(self._epoch_sync_message(backup, self.commit))
        return effects

    def handle_peer_connected(self, role: str, node: int) -> list[Effect]:
        """Resend to a backup whose connection opened again what it may have missed."""
        primary = self.primary
        if primary is None or role != "store" or node not in primary.match:
            return []
        primary.progress[node] = self.now
        if node not in primary.synced:
            return [self._epoch_sync_message(node, self.commit)]
        primary.sent[node] = primary.match[node]
        return self._send_to_backup(node)

    # --- Epochs ------------------------------------------------------------------

    def _older(self, epoch: int, term: int) -> bool:
        """Return True when a message from (`epoch`, `term`) must be rejected."""
        if Bug.SKIP_EPOCH_CHECK in self.bugs:
            return False
        return epoch < self.epoch or term < self.leader_term

    def _note_accept(self, epoch: int) -> None:
        """Count an accepted message from an older epoch (only the skip_epoch_check bug allows one)."""
        if epoch < self.epoch:
            self.stale_accepts += 1

    @action("HandleNewEpoch")
    def handle_new_epoch(self, message: NewEpoch) -> list[Effect]:
        """Install a configuration committed by the sync leader; the primary starts the epoch sync."""
        config = message.config
        if self._older(config.epoch, message.term):
            reject = self._reject(RejectReason.STALE_EPOCH)
            return [Send("sync", message.leader, reject)]

        self._note_accept(config.epoch)
        self.leader_id = message.leader
        if config == self.config and message.term == self.leader_term:
            # A resent NewEpoch: the primary replies again once it is ready.
            if self.primary is not None and self.primary.ready:
                return [self._epoch_ready()]
            if self.primary is not None or config.primary != self.node_id:
                return []

        effects = self._adopt(config, message.term)
        if config.primary == self.node_id:
            effects += self._start_epoch_sync()
        return effects

    def _adopt(self, config: StoreConfig, term: int) -> list[Effect]:
        self.config = config
        self.leader_term = term
        self.primary = None
        self.known_config = None
        self.catch_up_sent = -1
        self.caught_up = False
        role = "primary" if config.primary == self.node_id else "backup"
        logger.info("store %d: epoch %d installed as %s (leader term %d)", self.node_id, config.epoch, role, term)
        return [
            self._persist(),
            Event("epoch_installed", {"epoch": config.epoch, "role": role, "leader_term": term,
                                      "primary": config.primary, "backups": list(config.backups)}),
        ]

    def _start_epoch_sync(self) -> list[Effect]:
        backups = self.config.backups
        self.primary = PrimaryState(
            match=dict.fromkeys(backups, 0),
            sent=dict.fromkeys(backups, 0),
            progress=dict.fromkeys(backups, self.now),
        )
        effects: list[Effect] = [self._epoch_sync_message(backup, self.commit) for backup in backups]
        return effects + self._advance_commit()

    def _epoch_sync_message(self, backup: int, base_seq: int) -> Send:
        primary = self._primary()
        batch = self._log_batch(base_seq, len(self.log))
        primary.sent[backup] = base_seq + len(batch)
        message = EpochSync(self.leader_term, self.leader_id, self.config, base_seq, batch)
        return Send("store", backup, message)

    @action("HandleEpochSync")
    def handle_epoch_sync(self, message: EpochSync) -> list[Effect]:
        """Make this backup's log equal to the primary's: keep `base_seq` entries, take the rest."""
        config = message.config
        if self._older(config.epoch, message.term):
            return [Send("store", config.primary, EpochSyncReply(self.epoch, self.node_id, False, self.commit))]

        self._note_accept(config.epoch)
        effects: list[Effect] = []
        if config != self.config or message.term != self.leader_term:
            effects += self._adopt(config, message.term)
        self.leader_id = message.leader

        if message.base_seq > len(self.log) or message.base_seq + len(message.entries) < self.commit:
            reply = EpochSyncReply(self.epoch, self.node_id, False, min(self.commit, len(self.log)))
            return [*effects, Send("store", config.primary, reply)]

        # After the first sync of this epoch the log only grows by the primary's
        # entries, so a repeated EpochSync may add entries but never truncate.
        repeated = self.synced_epoch == self.epoch
        effects += self._replace_suffix(message.base_seq, message.entries, only_conflicts=repeated)
        if self.synced_epoch != self.epoch:
            self.synced_epoch = self.epoch
            effects.append(self._persist())
        reply = EpochSyncReply(self.epoch, self.node_id, True, len(self.log))
        return [*effects, Send("store", config.primary, reply)]

    @action("HandleEpochSyncReply")
    def handle_epoch_sync_reply(self, message: EpochSyncReply) -> list[Effect]:
        """Record a synced backup, and report the epoch ready once every backup is synced."""
        primary = self.primary
        if primary is None or message.epoch != self.epoch or message.node not in primary.match:
            if message.epoch > self.epoch:
                logger.warning("store %d: backup %d is in newer epoch %d", self.node_id, message.node, message.epoch)
            return []

        primary.progress[message.node] = self.now
        if not message.success:
            return [self._epoch_sync_message(message.node, message.match)]

        primary.synced.add(message.node)
        primary.match[message.node] = max(primary.match[message.node], message.match)
        effects = self._send_to_backup(message.node)
        return effects + self._advance_commit()

    def _epoch_ready(self) -> Send:
        # Only the committed prefix: when the message is sent again for a
        # repeated NewEpoch, the log may already hold newer, uncommitted writes.
        last = self.log[self.commit - 1] if self.commit else None
        marks = tuple(
            mark
            for client in sorted(self.marks)
            for mark in self.marks[client].values()
            if mark.seq <= self.commit
        )
        message = EpochReady(
            term=self.leader_term,
            epoch=self.epoch,
            primary=self.node_id,
            last_seq=self.commit,
            last_lamport=last.lamport if last else 0,
            clients=marks,
        )
        return Send("sync", self.leader_id, message)

    # --- Remote write --------------------------------------------------------------

    @action("HandleWrite")
    def handle_write(self, message: Write) -> list[Effect]:
        """Append the leader's entries and forward them to every backup (remote write W2, W3)."""
        if self._older(message.epoch, message.term):
            reject = self._reject(RejectReason.STALE_EPOCH)
            return [Send("sync", message.leader, reject)]
        primary = self.primary
        stale_ok = Bug.SKIP_EPOCH_CHECK in self.bugs and message.epoch < self.epoch
        if primary is None or not primary.ready or (message.epoch != self.epoch and not stale_ok):
            reject = self._reject(RejectReason.NOT_PRIMARY)
            return [Send("sync", message.leader, reject)]

        self._note_accept(message.epoch)
        first_new, reason = self._match_entries(message.entries)
        effects: list[Effect] = []
        new = message.entries[first_new:] if reason is None else ()
        if reason is not None:
            reject = self._reject(reason)
            effects.append(Send("sync", message.leader, reject))
        if new:
            keep = len(self.log)
            self._append(new)
            effects.append(AppendLog(keep, new))
            for backup in self.config.backups:
                effects += self._send_to_backup(backup)
        if not new and reason is None:
            # Every entry was a repeat: acknowledge again what is committed.
            effects.append(Send("sync", self.leader_id, WriteAck(self.leader_term, self.epoch, self.commit)))
        return effects + self._advance_commit()

    def _match_entries(self, entries: Sequence[Entry]) -> tuple[int, RejectReason | None]:
        """Return how many leading entries the log already holds, or why the batch does not fit."""
        for index, entry in enumerate(entries):
            if entry.seq > len(self.log):
                if entry.seq != len(self.log) + 1:
                    return index, RejectReason.GAP
                return index, None
            if not self.log[entry.seq - 1].same_slot(entry):
                return index, RejectReason.CONFLICT
        return len(entries), None

    def _send_to_backup(self, backup: int) -> list[Effect]:
        primary = self._primary()
        if backup not in primary.synced or primary.sent[backup] >= len(self.log):
            return []
        start = primary.sent[backup]
        primary.sent[backup] = len(self.log)
        effects: list[Effect] = []
        prev = start
        for batch in split_batches(self.log[start:]):
            # Eager: a backup may store the entries while this node is still
            # writing them. Their confirmations reply to this send, so they
            # arrive after the batch that holds the write, and no commit index
            # this node sends covers an entry that is not on its own disk.
            replicate = Replicate(self.epoch, self.node_id, prev, batch, self.commit)
            effects.append(Send("store", backup, replicate, eager=True))
            prev += len(batch)
        return effects

    @action("HandleReplicate")
    def handle_replicate(self, message: Replicate) -> list[Effect]:
        """W3 to W4: a backup appends entries that follow its log and confirms them."""
        if self._older(message.epoch, self.leader_term):
            return [Send("store", message.primary, ReplicateReply(self.epoch, self.node_id, False, len(self.log)))]
        if message.epoch > self.epoch or message.prev_seq > len(self.log):
            return [Send("store", message.primary, ReplicateReply(self.epoch, self.node_id, False, len(self.log)))]

        self._note_accept(message.epoch)
        effects = self._replace_suffix(message.prev_seq, message.entries, only_conflicts=True)
        effects += self._learn_commit(message.commit)
        reply = ReplicateReply(self.epoch, self.node_id, True, len(self.log))
        return [*effects, Send("store", message.primary, reply)]

    @action("HandleReplicateReply")
    def handle_replicate_reply(self, message: ReplicateReply) -> list[Effect]:
        """W4 to W5: the primary counts confirmations and commits what every backup holds."""
        primary = self.primary
        if primary is None or message.epoch != self.epoch or message.node not in primary.match:
            return []
        primary.progress[message.node] = self.now
        if not message.success:
            primary.sent[message.node] = min(primary.sent[message.node], message.match)
            return self._send_to_backup(message.node)
        primary.match[message.node] = max(primary.match[message.node], message.match)
        return self._advance_commit()

    def _advance_commit(self) -> list[Effect]:
        primary = self._primary()
        if Bug.EARLY_ACK in self.bugs and primary.ready:
            new_commit = len(self.log)
        else:
            new_commit = min([len(self.log), *primary.match.values()])
        if new_commit <= self.commit and primary.ready:
            return []

        effects: list[Effect] = []
        advanced = new_commit > self.commit
        if advanced:
            effects += self._commit_to(new_commit)
        if not primary.ready and (self.commit < len(self.log) or len(primary.synced) < len(self.config.backups)):
            return [*effects, *self._send_commit()] if advanced else effects
        if advanced or not primary.ready:
            # A backup that joined by epoch sync got the whole log but not the
            # commit index, so the primary sends it when the epoch becomes ready
            # even if its own commit index did not move.
            effects += self._send_commit()
        if not primary.ready:
            primary.ready = True
            self.synced_epoch = self.epoch
            logger.info("store %d: epoch %d ready, log length %d", self.node_id, self.epoch, len(self.log))
            return [*effects, self._persist(), self._epoch_ready()]
        # The leader's acknowledgement goes first: a client waits on it, while
        # the backups need the commit index only for their backup files.
        return [Send("sync", self.leader_id, WriteAck(self.leader_term, self.epoch, self.commit)), *effects]

    def _send_commit(self) -> list[Effect]:
        return [Send("store", backup, Commit(self.epoch, self.commit)) for backup in self.config.backups]

    @action("HandleCommit")
    def handle_commit(self, message: Commit) -> list[Effect]:
        """Learn how far the log is committed and extend the backup file."""
        if message.epoch != self.epoch:
            return []
        return self._learn_commit(message.commit)

    def _learn_commit(self, commit: int) -> list[Effect]:
        new_commit = min(commit, len(self.log))
        if new_commit <= self.commit:
            return []
        return self._commit_to(new_commit)

    def _commit_to(self, new_commit: int) -> list[Effect]:
        entries = tuple(self.log[self.commit : new_commit])
        self.commit = new_commit
        return [CommitLog(entries)]

    # --- Catch-up of a node outside the configuration ---------------------------------

    def handle_store_ping(self, message: StorePing) -> list[Effect]:
        """Reply to the leader's ping, and start catching up when left out of the configuration."""
        effects: list[Effect] = []
        config = message.config
        if config is not None and message.term >= self.leader_term and self.node_id not in config.members:
            if self.known_config != config:
                self.known_config = config
                self.caught_up = False
                self.catch_up_sent = -1
            if self.catch_up_sent < 0 and not self.caught_up:
                effects += self._request_catch_up()
        status = StoreStatus(
            self.node_id, self.epoch, len(self.log), self.commit, self.caught_up, self.synced_epoch
        )
        return [*effects, Send("sync", message.leader, status)]

    def _request_catch_up(self) -> list[Effect]:
        config = self.known_config
        if config is None:
            return []
        self.catch_up_sent = self.now
        return [Send("store", config.primary, CatchUp(self.node_id, config.epoch, self.commit + 1))]

    @action("HandleCatchUp")
    def handle_catch_up(self, message: CatchUp) -> list[Effect]:
        """Send a node outside the configuration the next committed entries."""
        primary = self.primary
        if primary is None or not primary.ready or message.epoch != self.epoch:
            return []
        first = max(1, message.first_seq)
        entries = self._log_batch(first - 1, self.commit)
        return [Send("store", message.node, CatchUpReply(self.epoch, first, entries, self.commit))]

    @action("HandleCatchUpReply")
    def handle_catch_up_reply(self, message: CatchUpReply) -> list[Effect]:
        """Drop the uncommitted tail and take the primary's committed entries."""
        config = self.known_config
        if config is None or message.epoch != config.epoch or self.node_id in config.members:
            return []
        if message.first_seq != self.commit + 1:
            return []

        self.catch_up_sent = -1
        effects = self._replace_suffix(self.commit, message.entries)
        effects += self._commit_to(self.commit + len(message.entries))
        if self.commit >= message.commit:
            if not self.caught_up:
                logger.info("store %d: caught up to %d from primary %d", self.node_id, self.commit, config.primary)
                effects.append(Event("caught_up", {"commit": self.commit, "epoch": config.epoch}))
            self.caught_up = True
        else:
            effects += self._request_catch_up()
        return effects

    # --- Leader requests for output.txt --------------------------------------------

    def handle_fetch_entries(self, message: FetchEntries) -> list[Effect]:
        """Send the leader committed entries it needs for the output file."""
        if message.term < self.leader_term:
            return []
        last = min(message.last_seq, self.commit)
        entries = self._log_batch(message.first_seq - 1, last) if message.first_seq >= 1 else ()
        return [Send("sync", message.leader, FetchReply(message.term, entries))]

    # --- Log helpers ----------------------------------------------------------------

    def _log_batch(self, start: int, stop: int) -> tuple[Entry, ...]:
        """Return the entries `log[start:stop]`, cut to the bounds of one catch-up batch.

        The batch contains at least one entry when `start < stop`, because one
        entry of `MAX_TEXT_BYTES` always fits.
        """
        stop = min(stop, len(self.log), start + CATCH_UP_BATCH)
        size = 0
        for index in range(start, stop):
            size += len(self.log[index].text) * 4
            if size > CATCH_UP_BATCH_TEXT_BYTES and index > start:
                return tuple(self.log[start:index])
        return tuple(self.log[start:stop])

    def _append(self, entries: Sequence[Entry]) -> None:
        self.log.extend(entries)
        for entry in entries:
            self._mark(entry)

    def _replace_suffix(self, base: int, entries: Sequence[Entry], only_conflicts: bool = False) -> list[Effect]:
        """Make the log `log[:base] + entries`; with `only_conflicts`, keep a longer matching tail."""
        keep = base
        index = 0
        while index < len(entries) and keep < len(self.log) and self.log[keep].same_slot(entries[index]):
            keep += 1
            index += 1
        new = tuple(entries[index:])
        if only_conflicts and not new:
            return []
        if keep < self.commit:
            # Only a protocol mistake (a bug variant) can ask for this; refuse it.
            logger.error("store %d: refused to drop committed entries after %d (commit %d)",
                         self.node_id, keep, self.commit)
            return [Event("refused_truncate", {"keep": keep, "commit": self.commit})]

        truncated = keep < len(self.log)
        del self.log[keep:]
        if truncated:
            self._rebuild_marks()
        self._append(new)
        if not new and not truncated:
            return []
        return [AppendLog(keep, new)]

    def _mark(self, entry: Entry) -> None:
        marks = self.marks.setdefault(entry.client_id, {})
        marks[entry.request_id] = ClientMark(entry.client_id, entry.request_id, entry.seq, entry.term, entry.lamport)
        if len(marks) > RECENT_MARKS:
            # A client's entries follow its request order, so the first key is the oldest.
            del marks[next(iter(marks))]

    def _rebuild_marks(self) -> None:
        """Rebuild the marks of each client's last `RECENT_MARKS` requests from the log.

        A restarted node can hold millions of entries, so the log is read from
        the end and a mark is built only for the requests that are kept.
        """
        latest: dict[int, dict[int, Entry]] = {}  # client -> request id -> entry, newest first
        for entry in reversed(self.log):
            recent = latest.get(entry.client_id)
            if recent is None:
                recent = latest[entry.client_id] = {}
            if len(recent) < RECENT_MARKS and entry.request_id not in recent:
                recent[entry.request_id] = entry
        self.marks = {}
        for entry in sorted(
            (entry for recent in latest.values() for entry in recent.values()), key=lambda entry: entry.seq
        ):
            self._mark(entry)

    def _reject(self, reason: RejectReason) -> WriteReject:
        return WriteReject(self.leader_term, self.epoch, self.node_id, reason, len(self.log) + 1)

    def _primary(self) -> PrimaryState:
        if self.primary is None:
            raise RuntimeError(f"store {self.node_id}: primary-only step called on a non-primary")
        return self.primary

    def status(self) -> StatusReply:
        role = "primary" if self.primary is not None else (
            "backup" if self.node_id in self.config.members else "outside"
        )
        return StatusReply(
            role=role,
            node=self.node_id,
            term=self.leader_term,
            leader=self.leader_id,
            epoch=self.epoch,
            primary=self.config.primary,
            commit=self.commit,
            log_len=len(self.log),
        )
