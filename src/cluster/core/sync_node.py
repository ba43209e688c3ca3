"""Sync node: leader election by majority vote, store configurations, write ordering.

A `SyncNode` owns its term, its vote and its role. As leader it also owns the
Lamport clock, the exactly-once client table, the entries waiting to commit,
and the choice of store configuration. It never touches sockets, files,
clocks or global randomness: every handler takes one event and returns the
effects the driver must carry out (see `cluster.core.effects`).

Rules it keeps:
- at most one vote per term, persisted before the vote is sent;
- a vote only for a candidate whose store configuration is at least as
  recent as the voter's, so a new leader always has the latest committed
  configuration;
- a store configuration is installed only after a majority of sync nodes
  stored it;
- only committed entries are appended to the output, in sequence order, and a
  client is answered only after its entry is in the output.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cluster.core.batching import split_batches
from cluster.core.bugs import Bug
from cluster.core.config import config_from_dict, config_to_dict
from cluster.core.effects import AppendOutput, Effect, Event, FenceOutput, PersistState, Reply, Send
from cluster.core.messages import (
    ClientMark,
    ClientReply,
    ClientRequest,
    Entry,
    EpochReady,
    FetchEntries,
    FetchReply,
    Heartbeat,
    HeartbeatReply,
    NewEpoch,
    PreVote,
    PreVoteReply,
    RejectReason,
    ReplyStatus,
    RequestVote,
    StatusReply,
    StoreConfig,
    StorePing,
    StoreStatus,
    VoteReply,
    Write,
    WriteAck,
    WriteReject,
    initial_config,
)
from cluster.core.output import OutputDecision
from cluster.core.spec_names import action
from cluster.core.timers import Timers

logger = logging.getLogger(__name__)

# How many recent requests per client the leader keeps, to reply to retries.
RECENT_REQUESTS = 64
# The maximum number of client messages a leader keeps before it replies RETRY.
MAX_PENDING = 20_000


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class StorePhase(enum.Enum):
    PROPOSING = "proposing"  # waiting for a sync majority to store the new configuration
    INSTALLING = "installing"  # NewEpoch sent, waiting for EpochReady from the primary
    READY = "ready"  # writes flow to the primary


@dataclass(slots=True)
class ClientRecord:
    """The leader's record of one client: its last assigned request and recent marks."""

    last_request_id: int = 0
    recent: dict[int, ClientMark] = field(default_factory=dict)

    def remember(self, mark: ClientMark) -> None:
        self.last_request_id = max(self.last_request_id, mark.request_id)
        self.recent[mark.request_id] = mark
        if len(self.recent) > RECENT_REQUESTS:
            # Request ids arrive in increasing order, so the first key is the oldest.
            del self.recent[next(iter(self.recent))]


@dataclass(slots=True)
class LeaderState:
    """Volatile state of a leader, dropped when it steps down."""

    since: int  # tick at which it became leader
    phase: StorePhase = StorePhase.PROPOSING
    config_acks: dict[int, tuple[int, int]] = field(default_factory=dict)
    follower_heard: dict[int, int] = field(default_factory=dict)
    store_heard: dict[int, int] = field(default_factory=dict)
    store_status: dict[int, StoreStatus] = field(default_factory=dict)
    installed_config: StoreConfig | None = None
    first_ready_seen: bool = False

    # Write ordering.
    clock: int = 0
    next_seq: int = 1
    clients: dict[int, ClientRecord] = field(default_factory=dict)
    pending: dict[int, Entry] = field(default_factory=dict)  # seq -> entry not yet in output
    waiters: dict[int, list[int]] = field(default_factory=dict)  # seq -> client connections
    queued: list[tuple[int, ClientRequest]] = field(default_factory=list)
    sent_upto: int = 0  # highest seq sent to the primary of the installed epoch
    committed: int = 0  # highest seq the store reported committed
    last_progress: int = 0  # tick of the last commit progress or resend

    # Output file.
    fenced: bool = False
    output_seq: int = 0  # last seq known to be in output.txt
    output_in_flight: bool = False
    fetch_sent: int = -1  # tick of the outstanding FetchEntries, -1 when none
    fetched: dict[int, Entry] = field(default_factory=dict)  # seq -> entry fetched from the primary


class SyncNode:
    """One sync node's protocol state machine."""

    def __init__(
        self,
        node_id: int,
        sync_ids: Sequence[int],
        store_ids: Sequence[int],
        rng: random.Random,
        timers: Timers | None = None,
        bugs: frozenset[Bug] = frozenset(),
        persisted: dict[str, Any] | None = None,
    ) -> None:
        if node_id not in sync_ids:
            raise ValueError(f"sync node id {node_id} is not among the sync ids {list(sync_ids)}")
        self.node_id = node_id
        self.sync_ids = tuple(sync_ids)
        self.peers = tuple(peer for peer in sync_ids if peer != node_id)
        self.store_ids = tuple(store_ids)
        self.majority = len(self.sync_ids) // 2 + 1
        self.rng = rng
        self.timers = timers or Timers()
        self.bugs = bugs

        # Durable state.
        self.term = 0
        self.voted_for: int | None = None
        self.config = initial_config(len(self.store_ids))
        if persisted is not None:
            self._load(persisted)

        # Volatile state.
        self.now = 0
        self.role = Role.FOLLOWER
        self.leader_id: int | None = None
        # True from the moment the connection to the leader closed until this
        # node hears of a leader again: its elections then retry quickly.
        self.leader_lost = False
        self.votes: set[int] = set()
        self.election_elapsed = 0
        self.election_timeout = self._random_election_timeout()
        self.heartbeat_elapsed = 0
        self.leader: LeaderState | None = None

    # --- Durable state ---------------------------------------------------------

    def persisted_state(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "voted_for": self.voted_for,
            "config": config_to_dict(self.config),
        }

    def _load(self, state: dict[str, Any]) -> None:
        self.term = int(state["term"])
        voted_for = state.get("voted_for")
        self.voted_for = None if voted_for is None else int(voted_for)
        self.config = config_from_dict(state["config"])

    def _persist(self) -> PersistState:
        return PersistState(self.persisted_state())

    # --- Timers ----------------------------------------------------------------

    def tick(self, elapsed: int = 1) -> list[Effect]:
        """Advance time by one tick and fire whatever timer expired.

        `elapsed` is the number of tick periods that passed since the last
        call, as the driver measured them. Only the leader's heartbeat timer
        counts it, because a leader busy with client traffic is called less
        often than once per period, and counting calls alone spaced its
        heartbeats beyond the followers' election timeout. Every other timer
        advances one tick per call, so a node starved of CPU handles the
        messages waiting for it before it times out.
        """
        self.now += 1
        if self.role is Role.LEADER:
            return self._tick_leader(max(1, elapsed))

        self.election_elapsed += 1
        if self.election_elapsed >= self.election_timeout:
            return self.election_timeout_expired()
        return []

    def _tick_leader(self, elapsed: int) -> list[Effect]:
        effects: list[Effect] = []
        self.heartbeat_elapsed += elapsed
        if self.heartbeat_elapsed >= self.timers.heartbeat_interval:
            effects += self.send_heartbeats()
            effects += self.check_quorum()
        if self.role is Role.LEADER:
            effects += self.detect_store_failure()
        if self.role is Role.LEADER:
            effects += self._maybe_resend_writes()
        return effects

    def _random_election_timeout(self) -> int:
        if self.leader_lost:
            # The leader crashed, so no live leader can be disrupted: an
            # election that split the vote is retried after a short random
            # delay instead of a whole election timeout.
            return self.rng.randint(self.timers.leader_lost_delay, self.timers.election_retry_max)
        return self.rng.randint(self.timers.election_timeout_min, self.timers.election_timeout_max)

    @action("ElectionTimeout")
    def election_timeout_expired(self) -> list[Effect]:
        """Start a pre-vote, because this node heard from no leader for an election timeout."""
        return self.become_pre_candidate()

    # --- Role changes ----------------------------------------------------------

    def become_follower(self, term: int, leader_id: int | None) -> list[Effect]:
        effects: list[Effect] = []
        if term > self.term:
            self.term = term
            self.voted_for = None
            effects.append(self._persist())

        was_leader = self.leader
        if self.role is not Role.FOLLOWER or self.leader_id != leader_id:
            logger.info("sync %d term %d: follower of %s", self.node_id, self.term, leader_id)
            effects.append(Event("became_follower", {"term": self.term, "leader": leader_id}))
        self.role = Role.FOLLOWER
        self.leader_id = leader_id
        if leader_id is not None:
            self.leader_lost = False
        self.leader = None
        self.votes = set()
        self._reset_election_timer()

        if was_leader is not None:
            effects += self._release_clients(was_leader)
        return effects

    def become_pre_candidate(self) -> list[Effect]:
        self.role = Role.PRE_CANDIDATE
        self.leader_id = None
        self.votes = {self.node_id}
        self._reset_election_timer()
        logger.info("sync %d term %d: pre-candidate for term %d", self.node_id, self.term, self.term + 1)

        request = PreVote(self.term + 1, self.node_id, self.config)
        effects: list[Effect] = [Send("sync", peer, request) for peer in self.peers]
        if len(self.votes) >= self.majority:
            effects += self.become_candidate()
        return effects

    @action("HandlePreVote")
    def handle_pre_vote(self, message: PreVote) -> list[Effect]:
        """Say whether this node would vote for the candidate; change no term and no vote."""
        leader_alive = self.role is Role.LEADER or (
            self.leader_id is not None and self.election_elapsed < self.timers.election_timeout_min
        )
        granted = (
            not leader_alive
            and message.term > self.term
            and message.config.key >= self.config.key
        )
        return [Send("sync", message.candidate, PreVoteReply(message.term, self.node_id, granted))]

    @action("HandlePreVoteReply")
    def handle_pre_vote_reply(self, message: PreVoteReply) -> list[Effect]:
        """Count a pre-vote; a majority lets this node stand for election for real."""
        if self.role is not Role.PRE_CANDIDATE or message.term != self.term + 1 or not message.granted:
            return []
        self.votes.add(message.voter)
        if len(self.votes) >= self.majority:
            return self.become_candidate()
        return []

    def become_candidate(self) -> list[Effect]:
        self.term += 1
        self.role = Role.CANDIDATE
        self.voted_for = self.node_id
        self.leader_id = None
        self.votes = {self.node_id}
        self._reset_election_timer()
        logger.info("sync %d term %d: candidate", self.node_id, self.term)

        effects: list[Effect] = [
            self._persist(),
            Event("became_candidate", {"term": self.term}),
        ]
        request = RequestVote(self.term, self.node_id, self.config)
        effects += [Send("sync", peer, request) for peer in self.peers]
        if len(self.votes) >= self.majority:
            effects += self.become_leader()
        return effects

    @action("BecomeLeader")
    def become_leader(self) -> list[Effect]:
        """Lead after a majority of votes: fence the output and open a new epoch."""
        self.role = Role.LEADER
        self.leader_id = self.node_id
        self.leader_lost = False
        self.leader = LeaderState(since=self.now)
        self.leader.last_progress = self.now
        logger.info("sync %d term %d: leader", self.node_id, self.term)

        effects: list[Effect] = [
            Event("became_leader", {"term": self.term, "epoch": self.config.epoch}),
            FenceOutput(self.term),
        ]
        # Every leader opens its own epoch with the latest members, which fences
        # the store against the leaders before it.
        effects += self.propose_config(self.config.primary, self.config.backups)
        return effects

    def _reset_election_timer(self) -> None:
        self.election_elapsed = 0
        self.election_timeout = self._random_election_timeout()

    def _release_clients(self, leader: LeaderState) -> list[Effect]:
        """Tell every waiting client to retry elsewhere when this node stops leading."""
        effects: list[Effect] = []
        hint = self.leader_id or 0
        conns = {conn for conns in leader.waiters.values() for conn in conns}
        conns |= {conn for conn, _ in leader.queued}
        for conn in sorted(conns):
            effects.append(Reply(conn, _retry_reply(0, 0, hint)))
        return effects

    # --- Election messages -----------------------------------------------------

    @action("HandleRequestVote")
    def handle_request_vote(self, message: RequestVote) -> list[Effect]:
        """Grant at most one vote per term, to a candidate with a recent enough configuration."""
        effects: list[Effect] = []
        if message.term > self.term:
            effects += self.become_follower(message.term, None)

        free_to_vote = self.voted_for in (None, message.candidate) or Bug.DOUBLE_VOTE in self.bugs
        granted = (
            message.term == self.term
            and self.role is not Role.LEADER
            and free_to_vote
            and message.config.key >= self.config.key
        )
        if granted:
            self.voted_for = message.candidate
            self._reset_election_timer()
            effects.append(self._persist())
            effects.append(Event("vote_granted", {"term": self.term, "candidate": message.candidate}))

        reply = VoteReply(self.term, self.node_id, granted, self.config)
        effects.append(Send("sync", message.candidate, reply))
        return effects

    @action("HandleVoteReply")
    def handle_vote_reply(self, message: VoteReply) -> list[Effect]:
        """Count a vote; a majority makes this candidate the leader."""
        if message.term > self.term:
            return self.become_follower(message.term, None)
        if self.role is not Role.CANDIDATE or message.term != self.term or not message.granted:
            return []

        # The vote rule makes the candidate's configuration at least as recent as
        # any granting voter's; adopting a newer one here only guards that rule.
        if message.config.key > self.config.key:
            self.config = message.config
        self.votes.add(message.voter)
        if len(self.votes) >= self.majority:
            return self.become_leader()
        return []

    @action("SendHeartbeats")
    def send_heartbeats(self) -> list[Effect]:
        """Send a heartbeat to every follower and a ping to every store node."""
        leader = self._leader()
        self.heartbeat_elapsed = 0
        heartbeat = Heartbeat(self.term, self.node_id, self.config)
        effects: list[Effect] = [Send("sync", peer, heartbeat) for peer in self.peers]

        installed = leader.installed_config if leader.phase is StorePhase.READY else None
        ping = StorePing(self.term, self.node_id, installed)
        effects += [Send("store", store, ping) for store in self.store_ids]

        if leader.phase is StorePhase.INSTALLING:
            # NewEpoch is idempotent; resending covers a message lost on a broken connection.
            effects += self._send_new_epoch()
        return effects

    @action("HandleHeartbeat")
    def handle_heartbeat(self, message: Heartbeat) -> list[Effect]:
        """Accept the leader of this term and store its configuration if newer."""
        if message.term < self.term:
            reply = HeartbeatReply(self.term, self.node_id, False, *self.config.key)
            return [Send("sync", message.leader, reply)]

        effects: list[Effect] = []
        if message.term > self.term or self.role is not Role.FOLLOWER or self.leader_id != message.leader:
            effects += self.become_follower(message.term, message.leader)
        self.election_elapsed = 0

        if message.config.key > self.config.key:
            self.config = message.config
            effects.append(self._persist())
        effects.append(Send("sync", message.leader, HeartbeatReply(self.term, self.node_id, True, *self.config.key)))
        return effects

    @action("HandleHeartbeatReply")
    def handle_heartbeat_reply(self, message: HeartbeatReply) -> list[Effect]:
        """Count which followers stored the proposed configuration."""
        if message.term > self.term:
            return self.become_follower(message.term, None)
        if self.leader is None or message.term != self.term:
            return []

        self.leader.follower_heard[message.follower] = self.now
        if message.success:
            self.leader.config_acks[message.follower] = (message.config_term, message.config_epoch)
        return self._maybe_commit_config()

    @action("CheckQuorum")
    def check_quorum(self) -> list[Effect]:
        """Step down when no majority replied within an election timeout."""
        leader = self._leader()
        if self.now - leader.since <= self.timers.election_timeout_max:
            return []
        horizon = self.now - self.timers.election_timeout_max
        heard = 1 + sum(1 for tick in leader.follower_heard.values() if tick >= horizon)
        if heard >= self.majority:
            return []
        logger.warning("sync %d term %d: lost contact with a majority, stepping down", self.node_id, self.term)
        effects: list[Effect] = [Event("lost_quorum", {"term": self.term, "heard": heard})]
        return effects + self.become_follower(self.term, None)

    def handle_peer_down(self, peer: int) -> list[Effect]:
        """Stand for election soon when the closed connection to `peer` was the leader's."""
        if self.role is Role.LEADER or peer != self.leader_id:
            return []
        # A closed connection is strong evidence of a crash, so the follower does
        # not wait for the full election timeout, only a short random delay. It
        # also clears the leader id, so it grants the pre-votes of its peers.
        self.leader_id = None
        self.leader_lost = True
        delay = self.rng.randint(1, self.timers.leader_lost_delay)
        self.election_elapsed = max(self.election_elapsed, self.election_timeout - delay)
        return []

    # --- Store configurations ----------------------------------------------------

    @action("ProposeConfig")
    def propose_config(
        self, primary: int, backups: Sequence[int], joining: Sequence[int] | None = None
    ) -> list[Effect]:
        """Choose the next store configuration and replicate it to the sync nodes."""
        leader = self._leader()
        if joining is None:
            joining = [node for node in self.config.joining if node in backups]
        self.config = StoreConfig(
            self.config.epoch + 1, self.term, primary, tuple(sorted(backups)), tuple(sorted(joining))
        )
        leader.phase = StorePhase.PROPOSING
        leader.config_acks = {self.node_id: self.config.key}
        logger.info(
            "sync %d term %d: proposing epoch %d, primary %d, backups %s",
            self.node_id, self.term, self.config.epoch, primary, list(self.config.backups),
        )
        effects: list[Effect] = [
            self._persist(),
            Event("config_proposed", {"term": self.term, **config_to_dict(self.config)}),
        ]
        effects += self.send_heartbeats()
        return effects + self._maybe_commit_config()

    def _maybe_commit_config(self) -> list[Effect]:
        leader = self._leader()
        if leader.phase is not StorePhase.PROPOSING:
            return []
        stored = sum(1 for key in leader.config_acks.values() if key == self.config.key)
        if stored < self.majority:
            return []
        return self.install_epoch()

    @action("InstallEpoch")
    def install_epoch(self) -> list[Effect]:
        """Send the committed configuration to its store members."""
        leader = self._leader()
        leader.phase = StorePhase.INSTALLING
        leader.installed_config = self.config
        effects: list[Effect] = [Event("epoch_installing", {"term": self.term, "epoch": self.config.epoch})]
        return effects + self._send_new_epoch()

    def _send_new_epoch(self) -> list[Effect]:
        message = NewEpoch(self.term, self.node_id, self.config)
        return [Send("store", member, message) for member in self.config.members]

    @action("HandleEpochReady")
    def handle_epoch_ready(self, message: EpochReady) -> list[Effect]:
        """Learn the log's tail from the primary that synced its backups, then send writes."""
        leader = self.leader
        if (
            leader is None
            or message.term != self.term
            or message.epoch != self.config.epoch
            or leader.phase is not StorePhase.INSTALLING
        ):
            return []
        if leader.fenced and message.last_seq < leader.output_seq:
            return self._store_lost_entries(message.primary, message.last_seq)

        leader.phase = StorePhase.READY
        leader.committed = max(leader.committed, message.last_seq)
        leader.clock = max(leader.clock, message.last_lamport)
        leader.last_progress = self.now
        if not leader.first_ready_seen:
            leader.first_ready_seen = True
            leader.next_seq = message.last_seq + 1
            for mark in message.clients:
                leader.clients.setdefault(mark.client_id, ClientRecord()).remember(mark)
        leader.next_seq = max(leader.next_seq, message.last_seq + 1)
        leader.sent_upto = message.last_seq
        logger.info(
            "sync %d term %d: epoch %d ready, primary %d, log length %d",
            self.node_id, self.term, message.epoch, message.primary, message.last_seq,
        )

        effects: list[Effect] = [
            Event("epoch_ready", {"term": self.term, "epoch": message.epoch, "primary": message.primary,
                                  "last_seq": message.last_seq}),
        ]
        queued, leader.queued = leader.queued, []
        for conn, request in queued:
            effects += self._accept_request(conn, request)
        effects += self._advance_output()
        return effects

    @action("DetectStoreFailure")
    def detect_store_failure(self) -> list[Effect]:
        """Replace failed members of the configuration, and add back caught-up nodes."""
        leader = self._leader()
        if leader.phase is StorePhase.PROPOSING:
            return []

        horizon = self.now - self.timers.store_failure_timeout
        members = self.config.members
        live = [m for m in members if leader.store_heard.get(m, leader.since) >= horizon]
        if len(live) < len(members):
            return self._replace_failed(live)

        if leader.phase is not StorePhase.READY:
            return []
        joiners = [
            node
            for node in self.store_ids
            if node not in members
            and node in leader.store_status
            and leader.store_heard[node] >= horizon
            and leader.store_status[node].caught_up
        ]
        if joiners:
            logger.info("sync %d term %d: store nodes %s caught up, adding them", self.node_id, self.term, joiners)
            return self.propose_config(
                self.config.primary, [*self.config.backups, *joiners], [*self.config.joining, *joiners]
            )
        return []

    def _replace_failed(self, live: list[int]) -> list[Effect]:
        leader = self._leader()
        holders = [node for node in live if self._holds_committed(node)]
        if not holders:
            # Only members known to hold every committed entry may become
            # primary, so the leader waits for one of them to return.
            return []

        failed = [m for m in self.config.members if m not in live]
        if self.config.primary in holders:
            primary = self.config.primary
        else:
            primary = max(holders, key=lambda node: (self._log_len(leader, node), -node))
        backups = [node for node in live if node != primary]
        joining = [node for node in backups if not self._holds_committed(node)]
        logger.warning(
            "sync %d term %d: store nodes %s failed, new primary %d",
            self.node_id, self.term, failed, primary,
        )
        effects: list[Effect] = [Event("store_failed", {"term": self.term, "failed": failed, "primary": primary})]
        return effects + self.propose_config(primary, backups, joining)

    def _holds_committed(self, node: int) -> bool:
        """Return True when store member `node` is known to hold every committed entry.

        A member that joined in the latest configuration holds them only once its
        epoch sync completed, which it reports as its synced epoch.
        """
        if node not in self.config.joining:
            return True
        status = self._leader().store_status.get(node)
        return status is not None and status.synced_epoch >= self.config.epoch

    @staticmethod
    def _log_len(leader: LeaderState, node: int) -> int:
        status = leader.store_status.get(node)
        return -1 if status is None else status.log_len

    def handle_store_status(self, message: StoreStatus) -> list[Effect]:
        if self.leader is None:
            return []
        self.leader.store_heard[message.node] = self.now
        self.leader.store_status[message.node] = message
        return []

    def handle_store_down(self, node: int) -> list[Effect]:
        """Treat store node `node` as failed at once, because its connection closed.

        The replacement is proposed in this step rather than at the next tick,
        which a leader busy with client traffic reaches only tens of
        milliseconds later. During a proposal, the next tick after the
        configuration is installed replaces the node.
        """
        if self.leader is None:
            return []
        self.leader.store_heard[node] = -(10**9)
        return self.detect_store_failure()

    # --- Client messages and writes -------------------------------------------

    @action("HandleClientRequest")
    def handle_client_request(self, conn: int, request: ClientRequest) -> list[Effect]:
        """W1: order a client message, or point the client at the leader."""
        leader = self.leader
        if leader is None:
            hint = self.leader_id or 0
            status = ReplyStatus.REDIRECT if hint else ReplyStatus.RETRY
            reply = ClientReply(status, request.client_id, request.request_id, 0, self.term, 0, hint, 0)
            return [Reply(conn, reply)]

        if len(leader.pending) + len(leader.queued) >= MAX_PENDING:
            return [Reply(conn, _retry_reply(request.client_id, request.request_id, self.node_id))]
        if leader.phase is not StorePhase.READY:
            leader.queued.append((conn, request))
            return []
        return self._accept_request(conn, request)

    def _accept_request(self, conn: int, request: ClientRequest) -> list[Effect]:
        leader = self._leader()
        record = leader.clients.setdefault(request.client_id, ClientRecord())

        if request.request_id <= record.last_request_id:
            return self._answer_duplicate(conn, request, record)
        if request.request_id != record.last_request_id + 1:
            expected = record.last_request_id + 1
            reply = ClientReply(
                ReplyStatus.OUT_OF_ORDER, request.client_id, request.request_id, 0, self.term, 0,
                self.node_id, expected,
            )
            return [Reply(conn, reply)]

        # Lamport rule: the stamp exceeds every timestamp seen, the client's included.
        leader.clock = max(leader.clock, request.lamport) + 1
        seq = leader.next_seq
        leader.next_seq += 1
        entry = _entry(seq, self.term, leader.clock, request)
        leader.pending[seq] = entry
        leader.waiters[seq] = [conn]
        record.remember(ClientMark(request.client_id, request.request_id, seq, self.term, leader.clock))
        return []

    def _answer_duplicate(self, conn: int, request: ClientRequest, record: ClientRecord) -> list[Effect]:
        leader = self._leader()
        mark = record.recent.get(request.request_id)
        if mark is None:
            # Older than the remembered window, so committed long ago; the
            # sequence number is no longer known here.
            reply = ClientReply(ReplyStatus.OK, request.client_id, request.request_id, 0, 0, 0, self.node_id, 0)
            return [Reply(conn, reply)]
        if mark.seq <= leader.output_seq:
            return [Reply(conn, _ok_reply(mark, self.node_id))]
        leader.waiters.setdefault(mark.seq, []).append(conn)
        return []

    def flush(self) -> list[Effect]:
        """Send the entries ordered since the last flush to the primary, in batches.

        The driver calls this once after each burst of events, so many client
        messages share one `Write`.
        """
        leader = self.leader
        if leader is None or leader.phase is not StorePhase.READY:
            return []
        last = leader.next_seq - 1
        if leader.sent_upto >= last:
            return []
        entries = [leader.pending[seq] for seq in range(leader.sent_upto + 1, last + 1) if seq in leader.pending]
        leader.sent_upto = last
        epoch = self.config.epoch
        return [
            Send("store", self.config.primary, Write(self.term, self.node_id, epoch, batch))
            for batch in split_batches(entries)
        ]

    def _maybe_resend_writes(self) -> list[Effect]:
        """Resend writes, or a fetch for the output file, that got no answer in time."""
        leader = self._leader()
        if leader.phase is not StorePhase.READY:
            return []
        effects: list[Effect] = []
        if leader.fetch_sent >= 0 and self.now - leader.fetch_sent >= self.timers.write_retry:
            leader.fetch_sent = -1
            effects += self._advance_output()
        if leader.committed >= leader.next_seq - 1:
            return effects
        if self.now - leader.last_progress < self.timers.write_retry:
            return effects
        leader.last_progress = self.now
        leader.sent_upto = leader.committed
        return effects + self.flush()

    def handle_peer_connected(self, role: str, node: int) -> list[Effect]:
        """A connection to a peer opened (again): resend what it may have missed."""
        leader = self.leader
        if leader is None or role != "store" or node != self.config.primary:
            return []
        if leader.phase is StorePhase.READY:
            leader.sent_upto = leader.committed
            return self.flush()
        if leader.phase is StorePhase.INSTALLING:
            return [Send("store", node, NewEpoch(self.term, self.node_id, self.config))]
        return []

    @action("HandleWriteAck")
    def handle_write_ack(self, message: WriteAck) -> list[Effect]:
        """W5: the store committed up to `commit`; append those entries to the output."""
        leader = self.leader
        if (
            leader is None
            or message.term != self.term
            or message.epoch != self.config.epoch
            or leader.phase is not StorePhase.READY
        ):
            return []
        if message.commit > leader.committed:
            leader.committed = message.commit
            leader.last_progress = self.now
        return self._advance_output()

    def handle_write_reject(self, message: WriteReject) -> list[Effect]:
        if message.term > self.term:
            return self.become_follower(message.term, None)
        leader = self.leader
        if leader is None or message.epoch != self.config.epoch:
            return []

        if message.reason is RejectReason.GAP and leader.phase is StorePhase.READY:
            leader.sent_upto = min(leader.sent_upto, message.expected_seq - 1)
            return self.flush()
        if message.reason is RejectReason.NOT_PRIMARY and leader.phase is StorePhase.READY:
            # The primary restarted and lost its epoch state: install a fresh epoch.
            return self.propose_config(self.config.primary, self.config.backups)
        return []

    # --- Output file -------------------------------------------------------------

    def handle_fence_result(self, term: int, decision: OutputDecision) -> list[Effect]:
        """The driver raised (or failed to raise) the output fence for `term`."""
        leader = self.leader
        if leader is None or term != self.term:
            return []
        if not decision.accepted:
            logger.warning(
                "sync %d term %d: output fenced by term %d, stepping down",
                self.node_id, self.term, decision.fence_term,
            )
            return self.become_follower(decision.fence_term, None)
        leader.fenced = True
        leader.output_seq = decision.last_seq
        if leader.phase is StorePhase.READY and leader.committed < leader.output_seq:
            leader.phase = StorePhase.INSTALLING
            return self._store_lost_entries(self.config.primary, leader.committed)
        return self._advance_output()

    def _store_lost_entries(self, primary: int, committed: int) -> list[Effect]:
        """Stop accepting writes, because the primary's log lacks entries that output.txt already contains.

        Every committed entry is on every store member's disk, so this happens
        only when a member's files were removed or replaced by hand, or when
        the early_ack bug switch broke the commit rule. Ordering
        new entries after it would number them as entries already in the file,
        and the clients would receive acknowledgements for entries missing from it.
        """
        leader = self._leader()
        logger.error(
            "sync %d term %d: store primary %d has %d committed entries but output.txt contains %d;"
            " its files lost committed entries, so no write is accepted. Restore the store nodes'"
            " store_<id>.wal and backup_<id>.txt from a copy, or start a fresh cluster",
            self.node_id, self.term, primary, committed, leader.output_seq,
        )
        return [Event("store_lost_entries", {"term": self.term, "epoch": self.config.epoch, "primary": primary,
                                             "committed": committed, "output_seq": leader.output_seq})]

    def _advance_output(self) -> list[Effect]:
        """Append the next committed entries to the output, fetching any this leader lacks."""
        leader = self._leader()
        if not leader.fenced or leader.output_in_flight or leader.output_seq >= leader.committed:
            return []

        entries = []
        for seq in range(leader.output_seq + 1, leader.committed + 1):
            entry = leader.pending.get(seq) or leader.fetched.get(seq)
            if entry is None:
                break
            entries.append(entry)

        if entries:
            leader.output_in_flight = True
            return [AppendOutput(self.term, tuple(entries))]
        if leader.fetch_sent >= 0:
            return []
        leader.fetch_sent = self.now
        first = leader.output_seq + 1
        request = FetchEntries(self.term, self.node_id, first, leader.committed)
        return [Send("store", self.config.primary, request)]

    def handle_fetch_reply(self, message: FetchReply) -> list[Effect]:
        leader = self.leader
        if leader is None or message.term != self.term:
            return []
        leader.fetch_sent = -1
        for entry in message.entries:
            if entry.seq <= leader.committed:
                leader.fetched[entry.seq] = entry
        return self._advance_output()

    def handle_output_result(self, term: int, decision: OutputDecision) -> list[Effect]:
        """The driver applied an `AppendOutput`: answer the clients whose entries are in."""
        leader = self.leader
        if leader is None or term != self.term:
            return []
        leader.output_in_flight = False
        if not decision.accepted:
            logger.warning(
                "sync %d term %d: output append refused by fence term %d",
                self.node_id, self.term, decision.fence_term,
            )
            return self.become_follower(decision.fence_term, None)

        effects: list[Effect] = []
        first = leader.output_seq + 1
        leader.output_seq = max(leader.output_seq, decision.last_seq)
        for seq in range(first, leader.output_seq + 1):
            # A retried request of an earlier term waits on an entry this leader
            # fetched for the output rather than ordered itself.
            pending = leader.pending.pop(seq, None)
            fetched = leader.fetched.pop(seq, None)
            entry = pending or fetched
            conns = leader.waiters.pop(seq, [])
            if entry is None:
                continue
            mark = ClientMark(entry.client_id, entry.request_id, entry.seq, entry.term, entry.lamport)
            effects += [Reply(conn, _ok_reply(mark, self.node_id)) for conn in conns]
        if decision.entries:
            effects.append(Event("commit", {"term": self.term, "first_seq": first, "last_seq": leader.output_seq}))
        return effects + self._advance_output()

    # --- Status ------------------------------------------------------------------

    def status(self) -> StatusReply:
        leader = self.leader
        return StatusReply(
            role=self.role.value,
            node=self.node_id,
            term=self.term,
            leader=self.leader_id or 0,
            epoch=self.config.epoch,
            primary=self.config.primary,
            commit=leader.output_seq if leader else 0,
            log_len=(leader.next_seq - 1) if leader else 0,
        )

    def _leader(self) -> LeaderState:
        if self.leader is None:
            raise RuntimeError(f"sync {self.node_id}: leader-only step called while {self.role.value}")
        return self.leader


def _entry(seq: int, term: int, lamport: int, request: ClientRequest) -> Entry:
    return Entry(seq, term, lamport, request.client_id, request.request_id, request.text)


def _ok_reply(mark: ClientMark, leader: int) -> ClientReply:
    return ClientReply(
        ReplyStatus.OK, mark.client_id, mark.request_id, mark.seq, mark.term, mark.lamport, leader, 0
    )


def _retry_reply(client_id: int, request_id: int, hint: int) -> ClientReply:
    return ClientReply(ReplyStatus.RETRY, client_id, request_id, 0, 0, 0, hint, 0)
