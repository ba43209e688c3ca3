"""Unit tests of the sync node: election, store configurations and write ordering.

Each test builds `SyncNode` objects, feeds them messages and ticks directly,
and checks the returned effects and the node's state. Vote and term rules
cite the Raft paper (Ongaro and Ousterhout, "In Search of an Understandable
Consensus Algorithm", 2014); the other rules cite docs/protocol.md.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.core import sync_node
from cluster.core.batching import MAX_BATCH_ENTRIES
from cluster.core.bugs import Bug
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
    StoreConfig,
    StoreStatus,
    VoteReply,
    Write,
    WriteAck,
    WriteReject,
)
from cluster.core.output import OutputDecision
from cluster.core.sync_node import Role, StorePhase, SyncNode
from cluster.core.timers import Timers
from cluster.invariants import client_order, lamport_order

SYNC_IDS = (1, 2, 3, 4, 5)
STORE_IDS = (1, 2, 3)
TIMERS = Timers()


# --- Helpers -------------------------------------------------------------------


def make_node(
    node_id: int = 1,
    seed: int = 0,
    bugs: frozenset[Bug] = frozenset(),
    persisted: dict[str, Any] | None = None,
    timers: Timers = TIMERS,
) -> SyncNode:
    return SyncNode(node_id, SYNC_IDS, STORE_IDS, random.Random(seed), timers, bugs, persisted)


def persisted_config(epoch: int, primary: int, backups: Sequence[int], joining: Sequence[int] = ()) -> dict[str, Any]:
    """Durable state of a node that stored the configuration `epoch` in term 1."""
    config = {"epoch": epoch, "term": 1, "primary": primary, "backups": list(backups), "joining": list(joining)}
    return {"term": 1, "voted_for": None, "config": config}


def sent(effects: Sequence[Effect], kind: type) -> list[Send]:
    """Return the `Send` effects whose message is of type `kind`, in order."""
    return [effect for effect in effects if isinstance(effect, Send) and isinstance(effect.message, kind)]


def client_replies(effects: Sequence[Effect]) -> list[Reply]:
    return [effect for effect in effects if isinstance(effect, Reply)]


def events(effects: Sequence[Effect], name: str) -> list[Event]:
    return [effect for effect in effects if isinstance(effect, Event) and effect.name == name]


def stand(node: SyncNode) -> list[Effect]:
    """Make `node` time out and win the pre-vote with the first two peers (a majority of five)."""
    effects = node.election_timeout_expired()
    for voter in node.peers[:2]:
        effects += node.handle_pre_vote_reply(PreVoteReply(node.term + 1, voter, True))
    return effects


def elect(node: SyncNode) -> list[Effect]:
    """Make `node` stand and win with votes from the first two peers."""
    effects = stand(node)
    for voter in node.peers[:2]:
        effects += node.handle_vote_reply(VoteReply(node.term, voter, True, node.config))
    return effects


def ack_config(node: SyncNode, followers: Sequence[int]) -> list[Effect]:
    """Deliver heartbeat replies from `followers` that stored the leader's configuration."""
    effects: list[Effect] = []
    for follower in followers:
        effects += node.handle_heartbeat_reply(HeartbeatReply(node.term, follower, True, *node.config.key))
    return effects


def epoch_ready(
    node: SyncNode, last_seq: int = 0, last_lamport: int = 0, clients: tuple[ClientMark, ...] = ()
) -> EpochReady:
    return EpochReady(node.term, node.config.epoch, node.config.primary, last_seq, last_lamport, clients)


def ready_leader(
    node: SyncNode | None = None,
    last_seq: int = 0,
    last_lamport: int = 0,
    clients: tuple[ClientMark, ...] = (),
    output_seq: int | None = None,
) -> SyncNode:
    """Elect a leader, commit and install its configuration, raise the fence and reach READY.

    The output file contains `output_seq` entries (default: all `last_seq` of them).
    """
    node = node or make_node()
    elect(node)
    ack_config(node, node.peers[:2])
    node.handle_epoch_ready(epoch_ready(node, last_seq, last_lamport, clients))
    last = last_seq if output_seq is None else output_seq
    node.handle_fence_result(node.term, OutputDecision(True, node.term, (), last))
    return node


def request(client: int, request_id: int, lamport: int = 0) -> ClientRequest:
    return ClientRequest(client, request_id, lamport, f"client {client} message {request_id}")


def submit(node: SyncNode, requests: Sequence[ClientRequest], conn: int = 7) -> list[Effect]:
    effects: list[Effect] = []
    for item in requests:
        effects += node.handle_client_request(conn, item)
    return effects


def appended(node: SyncNode, effects: Sequence[Effect]) -> list[Effect]:
    """Apply every `AppendOutput` in `effects` to an output file that accepts it whole."""
    more: list[Effect] = []
    for effect in effects:
        if isinstance(effect, AppendOutput):
            last = effect.entries[-1].seq
            more += node.handle_output_result(effect.term, OutputDecision(True, effect.term, effect.entries, last))
    return more


def keep_alive_tick(node: SyncNode) -> list[Effect]:
    """Tick a leader while every follower and store member replies to its heartbeats and pings."""
    effects = node.tick()
    if node.leader is not None and events(effects, "lost_quorum") == [] and sent(effects, Heartbeat):
        ack_config(node, node.peers)
        for member in node.config.members:
            node.handle_store_status(StoreStatus(member, node.config.epoch, 0, 0, False, node.config.epoch))
    return effects


# --- Election ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_timeout_drawn_from_rng(seed: int) -> None:
    """The election timeout is drawn from [min, max] by the injected RNG (Raft §5.2)."""
    expected = random.Random(seed).randint(TIMERS.election_timeout_min, TIMERS.election_timeout_max)

    node = make_node(seed=seed)

    assert node.election_timeout == expected
    assert TIMERS.election_timeout_min <= node.election_timeout <= TIMERS.election_timeout_max


@pytest.mark.parametrize("seed", range(4))
def test_follower_stands_after_timeout(seed: int) -> None:
    """A follower that hears no leader for its election timeout starts a pre-vote for the next term.

    Source: Raft §5.2 (election timeout); the pre-vote phase is this project's PreVote message.
    """
    node = make_node(seed=seed)
    timeout = node.election_timeout
    for _ in range(timeout - 1):
        node.tick()
    assert node.role is Role.FOLLOWER

    effects = node.tick()

    assert node.role is Role.PRE_CANDIDATE
    assert [send.node for send in sent(effects, PreVote)] == [2, 3, 4, 5]
    assert {send.message.term for send in sent(effects, PreVote)} == {1}


def test_pre_vote_keeps_term() -> None:
    """A pre-candidate raises neither its term nor its vote, and persists nothing."""
    node = make_node()

    effects = node.election_timeout_expired()

    assert node.term == 0
    assert node.voted_for is None
    assert [effect for effect in effects if isinstance(effect, PersistState)] == []


def test_pre_vote_majority_stands() -> None:
    """A majority of granted pre-votes makes the node a candidate of the next term."""
    node = make_node()

    effects = stand(node)

    assert node.role is Role.CANDIDATE
    assert node.term == 1
    assert node.voted_for == 1
    assert [send.node for send in sent(effects, RequestVote)] == [2, 3, 4, 5]


def test_pre_vote_refused_by_led_follower() -> None:
    """A follower that heard its leader within the minimum election timeout refuses a pre-vote."""
    node = make_node(node_id=3)
    node.handle_heartbeat(Heartbeat(1, 1, node.config))

    effects = node.handle_pre_vote(PreVote(2, 2, node.config))

    assert sent(effects, PreVoteReply)[0].message.granted is False
    assert node.term == 1


@pytest.mark.parametrize(("term", "epoch", "granted"), [(1, 0, True), (0, 0, True), (0, -1, False)])
def test_pre_vote_config_rule(term: int, epoch: int, granted: bool) -> None:
    """A pre-vote follows the vote rule: the candidate's configuration key must be at least the voter's."""
    node = make_node(node_id=3)
    config = StoreConfig(epoch, term, 1, (2, 3))

    effects = node.handle_pre_vote(PreVote(1, 2, config))

    assert sent(effects, PreVoteReply)[0].message.granted is granted


def test_candidate_persists_before_asking() -> None:
    """A candidate stores its new term and self-vote before any RequestVote leaves (Raft §5.2)."""
    node = make_node()

    effects = stand(node)

    persist_at = next(i for i, effect in enumerate(effects) if isinstance(effect, PersistState))
    first_request = effects.index(sent(effects, RequestVote)[0])
    assert persist_at < first_request
    assert effects[persist_at].state["voted_for"] == 1


def test_majority_makes_leader() -> None:
    """A candidate with votes from a majority becomes leader (Raft §5.2)."""
    node = make_node()
    stand(node)
    node.handle_vote_reply(VoteReply(1, 2, True, node.config))
    assert node.role is Role.CANDIDATE

    effects = node.handle_vote_reply(VoteReply(1, 3, True, node.config))

    assert node.role is Role.LEADER
    assert events(effects, "became_leader") != []


def test_refused_votes_do_not_count() -> None:
    """Refused votes never make a leader, however many arrive (Raft §5.2)."""
    node = make_node()
    stand(node)

    for voter in (2, 3, 4, 5):
        node.handle_vote_reply(VoteReply(1, voter, False, node.config))

    assert node.role is Role.CANDIDATE


def test_new_leader_fences_and_proposes() -> None:
    """A new leader raises the output fence to its term and proposes its own epoch (docs/protocol.md)."""
    node = make_node()

    effects = elect(node)

    assert FenceOutput(1) in effects
    assert len(events(effects, "config_proposed")) == 1
    assert node.config == StoreConfig(epoch=1, term=1, primary=1, backups=(2, 3))
    assert node.leader is not None
    assert node.leader.phase is StorePhase.PROPOSING


def test_proposal_persisted_and_broadcast() -> None:
    """The proposed configuration is stored before the heartbeats that carry it (docs/protocol.md)."""
    node = make_node()

    effects = elect(node)

    persists = [i for i, effect in enumerate(effects) if isinstance(effect, PersistState)]
    heartbeats = [effects.index(send) for send in sent(effects, Heartbeat)]
    assert effects[persists[-1]].state["config"]["epoch"] == 1
    assert persists[-1] < heartbeats[0]
    assert {send.node for send in sent(effects, Heartbeat)} == {2, 3, 4, 5}


def test_one_vote_per_term() -> None:
    """A node grants at most one vote per term: a second candidate of that term is refused (Raft §5.2)."""
    node = make_node(node_id=3)
    node.handle_request_vote(RequestVote(1, 1, node.config))

    effects = node.handle_request_vote(RequestVote(1, 2, node.config))

    reply = sent(effects, VoteReply)[0].message
    assert reply.granted is False
    assert node.voted_for == 1


def test_repeated_request_granted_again() -> None:
    """A repeated RequestVote from the candidate already voted for is granted again (Raft §5.2)."""
    node = make_node(node_id=3)
    node.handle_request_vote(RequestVote(1, 1, node.config))

    effects = node.handle_request_vote(RequestVote(1, 1, node.config))

    assert sent(effects, VoteReply)[0].message.granted is True


def test_vote_persisted_before_reply() -> None:
    """The vote is on disk before the granting VoteReply is sent (Raft §5.2, Figure 2 persistent state)."""
    node = make_node(node_id=3)

    effects = node.handle_request_vote(RequestVote(1, 1, node.config))

    persist_at = max(i for i, effect in enumerate(effects) if isinstance(effect, PersistState))
    reply_at = next(i for i, effect in enumerate(effects) if isinstance(effect, Send))
    assert persist_at < reply_at
    assert effects[persist_at].state["voted_for"] == 1
    assert effects[persist_at].state["term"] == 1
    assert effects[reply_at].message.granted is True


def test_vote_survives_restart() -> None:
    """A node rebuilt from its persisted state still refuses a second vote in that term (Raft §5.2)."""
    node = make_node(node_id=3)
    node.handle_request_vote(RequestVote(1, 1, node.config))
    restarted = make_node(node_id=3, persisted=node.persisted_state())

    effects = restarted.handle_request_vote(RequestVote(1, 2, restarted.config))

    assert sent(effects, VoteReply)[0].message.granted is False


@pytest.mark.parametrize(
    ("voter_key", "candidate_key", "granted"),
    [
        ((2, 3), (2, 3), True),
        ((2, 3), (3, 1), True),
        ((2, 3), (2, 4), True),
        ((2, 3), (2, 2), False),
        ((2, 3), (1, 9), False),
    ],
)
def test_vote_needs_recent_config(voter_key: tuple[int, int], candidate_key: tuple[int, int], granted: bool) -> None:
    """A vote goes only to a candidate whose configuration key (term, epoch) is at least the voter's.

    This is the configuration analogue of the election restriction of Raft §5.4.1.
    """
    voter_term, voter_epoch = voter_key
    state = persisted_config(voter_epoch, 1, (2, 3))
    state["config"]["term"] = voter_term
    node = make_node(node_id=3, persisted=state)
    candidate_config = StoreConfig(candidate_key[1], candidate_key[0], 1, (2, 3))

    effects = node.handle_request_vote(RequestVote(5, 1, candidate_config))

    assert sent(effects, VoteReply)[0].message.granted is granted


def test_leader_adopts_newer_voter_config() -> None:
    """A candidate adopts a more recent configuration reported in a granted vote (docs/protocol.md)."""
    node = make_node()
    stand(node)
    newer = StoreConfig(epoch=4, term=0, primary=2, backups=(3,))

    node.handle_vote_reply(VoteReply(1, 2, True, newer))
    node.handle_vote_reply(VoteReply(1, 3, True, node.config))

    assert node.config.epoch == 5
    assert node.config.primary == 2
    assert node.config.backups == (3,)


def higher_term_messages(config: StoreConfig) -> list[Any]:
    return [
        RequestVote(9, 2, config),
        VoteReply(9, 2, False, config),
        Heartbeat(9, 2, config),
        HeartbeatReply(9, 2, False, *config.key),
        WriteReject(9, 1, 1, RejectReason.STALE_EPOCH, 1),
    ]


@pytest.mark.parametrize(
    "index", range(5), ids=["RequestVote", "VoteReply", "Heartbeat", "HeartbeatReply", "WriteReject"]
)
def test_higher_term_deposes_leader(index: int) -> None:
    """A leader that sees a higher term in a message moves to that term and becomes a follower (Raft §5.1)."""
    node = ready_leader()
    message = higher_term_messages(node.config)[index]
    handler = {
        RequestVote: node.handle_request_vote,
        VoteReply: node.handle_vote_reply,
        Heartbeat: node.handle_heartbeat,
        HeartbeatReply: node.handle_heartbeat_reply,
        WriteReject: node.handle_write_reject,
    }[type(message)]

    effects = handler(message)

    assert node.role is Role.FOLLOWER
    assert node.term == 9
    assert node.leader is None
    assert any(isinstance(effect, PersistState) and effect.state["term"] == 9 for effect in effects)


def test_deposed_leader_releases_waiters() -> None:
    """A leader that steps down tells every waiting client to retry elsewhere (docs/protocol.md)."""
    node = ready_leader()
    submit(node, [request(1, 1)], conn=11)
    submit(node, [request(2, 1)], conn=12)

    effects = node.handle_heartbeat(Heartbeat(9, 2, node.config))

    replies = client_replies(effects)
    assert sorted(reply.conn for reply in replies) == [11, 12]
    assert {reply.message.status for reply in replies} == {ReplyStatus.RETRY}
    assert {reply.message.leader for reply in replies} == {2}


def test_stale_heartbeat_rejected() -> None:
    """A heartbeat from an older term is answered with success=False and the receiver's term (Raft §5.1)."""
    node = make_node(node_id=2, persisted={**persisted_config(0, 1, (2, 3)), "term": 4})

    effects = node.handle_heartbeat(Heartbeat(3, 1, node.config))

    reply = sent(effects, HeartbeatReply)[0].message
    assert reply.success is False
    assert reply.term == 4
    assert node.leader_id is None


def test_heartbeat_resets_election_timer() -> None:
    """A heartbeat of the current term keeps a follower from standing (Raft §5.2)."""
    node = make_node(node_id=2)
    timeout = node.election_timeout

    for _ in range(3 * timeout):
        node.tick()
        node.handle_heartbeat(Heartbeat(1, 1, node.config))

    assert node.role is Role.FOLLOWER
    assert node.leader_id == 1


def test_slow_leader_heartbeats_on_time() -> None:
    """A leader whose ticks arrive late counts the elapsed periods, so its heartbeats keep their interval."""
    node = make_node()
    elect(node)
    node.tick()  # the election's own heartbeats restart the interval

    effects = node.tick(elapsed=TIMERS.heartbeat_interval)

    assert [send.node for send in sent(effects, Heartbeat)] == [2, 3, 4, 5]


def test_follower_counts_calls_not_elapsed() -> None:
    """A follower's election timer advances one tick per call, however long the call was delayed."""
    node = make_node(node_id=2)
    timeout = node.election_timeout

    for _ in range(timeout - 1):
        node.tick(elapsed=TIMERS.election_timeout_max)

    assert node.role is Role.FOLLOWER
    assert node.election_elapsed == timeout - 1


def test_heartbeat_stores_newer_config() -> None:
    """A follower stores a newer configuration from the leader before acknowledging it (docs/protocol.md)."""
    node = make_node(node_id=2)
    newer = StoreConfig(epoch=1, term=1, primary=1, backups=(2, 3))

    effects = node.handle_heartbeat(Heartbeat(1, 1, newer))

    persist_at = max(i for i, effect in enumerate(effects) if isinstance(effect, PersistState))
    reply_at = next(i for i, effect in enumerate(effects) if isinstance(effect, Send))
    assert persist_at < reply_at
    assert node.config == newer
    assert effects[reply_at].message == HeartbeatReply(1, 2, True, 1, 1)


def test_check_quorum_steps_down() -> None:
    """A leader that hears from no majority within an election timeout steps down.

    Source: Ongaro, "Consensus: Bridging Theory and Practice", §6.2.
    """
    node = ready_leader()

    effects: list[Effect] = []
    for _ in range(TIMERS.election_timeout_max + TIMERS.heartbeat_interval + 1):
        effects += node.tick()

    assert node.role is Role.FOLLOWER
    assert node.term == 1
    assert len(events(effects, "lost_quorum")) == 1


def test_check_quorum_keeps_heard_leader() -> None:
    """A leader that hears from a majority keeps leading past the check-quorum horizon (Ongaro §6.2)."""
    node = ready_leader()

    for _ in range(4 * TIMERS.election_timeout_max):
        keep_alive_tick(node)

    assert node.role is Role.LEADER


def test_leader_down_shortens_timer() -> None:
    """A follower whose connection to the leader closed stands within leader_lost_delay ticks (docs/protocol.md)."""
    node = make_node(node_id=2, seed=3)
    node.handle_heartbeat(Heartbeat(1, 1, node.config))
    assert node.election_timeout > TIMERS.leader_lost_delay

    node.handle_peer_down(1)
    for _ in range(TIMERS.leader_lost_delay):
        node.tick()

    assert node.role is Role.PRE_CANDIDATE


def test_split_vote_after_crash_retries_quickly() -> None:
    """After the leader's connection closed, a failed election is retried within election_retry_max ticks."""
    node = make_node(node_id=2, seed=3)
    node.handle_heartbeat(Heartbeat(1, 1, node.config))
    node.handle_peer_down(1)
    for _ in range(TIMERS.leader_lost_delay):
        node.tick()
    for voter in (3, 4):
        node.handle_pre_vote_reply(PreVoteReply(2, voter, True))
    assert node.role is Role.CANDIDATE

    for _ in range(TIMERS.election_retry_max):
        node.tick()

    assert node.role is Role.PRE_CANDIDATE
    assert node.term == 2


def test_heard_leader_restores_full_timeout() -> None:
    """Once a new leader is heard, the election timeout is a whole one again."""
    node = make_node(node_id=2, seed=3)
    node.handle_heartbeat(Heartbeat(1, 1, node.config))
    node.handle_peer_down(1)

    node.handle_heartbeat(Heartbeat(2, 3, node.config))

    assert node.leader_lost is False
    assert node.election_timeout >= TIMERS.election_timeout_min


def test_other_peer_down_keeps_timer() -> None:
    """A closed connection to a peer that is not the leader leaves the election timer alone."""
    node = make_node(node_id=2, seed=3)
    node.handle_heartbeat(Heartbeat(1, 1, node.config))

    node.handle_peer_down(4)

    assert node.election_elapsed == 0


def test_double_vote_bug_votes_twice() -> None:
    """With Bug.DOUBLE_VOTE a node grants a second vote in a term it already voted in (docs/protocol.md)."""
    node = make_node(node_id=3, bugs=frozenset({Bug.DOUBLE_VOTE}))
    node.handle_request_vote(RequestVote(1, 1, node.config))

    effects = node.handle_request_vote(RequestVote(1, 2, node.config))

    assert sent(effects, VoteReply)[0].message.granted is True
    assert node.voted_for == 2


# --- Store configurations ----------------------------------------------------


def test_config_installed_after_majority() -> None:
    """A configuration is installed with NewEpoch only once a majority of sync nodes stored it (docs/protocol.md)."""
    node = make_node()
    elect(node)

    first = ack_config(node, [2])
    second = ack_config(node, [3])

    assert sent(first, NewEpoch) == []
    assert [send.node for send in sent(second, NewEpoch)] == [1, 2, 3]
    assert {send.message.config for send in sent(second, NewEpoch)} == {node.config}
    assert node.leader is not None
    assert node.leader.phase is StorePhase.INSTALLING


@pytest.mark.parametrize(("success", "key"), [(False, (1, 1)), (True, (0, 0))], ids=["refused", "older-key"])
def test_config_ack_needs_same_key(success: bool, key: tuple[int, int]) -> None:
    """Only successful heartbeat replies that carry the proposed key count toward the majority."""
    node = make_node()
    elect(node)
    ack_config(node, [2])

    effects = node.handle_heartbeat_reply(HeartbeatReply(1, 3, success, *key))

    assert sent(effects, NewEpoch) == []


def fail_and_tick(node: SyncNode, failed: Sequence[int], statuses: Sequence[StoreStatus]) -> list[Effect]:
    """Deliver `statuses`, close the connections of the `failed` store nodes, then tick."""
    effects: list[Effect] = []
    for status in statuses:
        node.handle_store_status(status)
    for member in failed:
        effects += node.handle_store_down(member)
    return effects + node.tick()


def test_store_down_replaced_at_once() -> None:
    """A closed connection to the primary makes the leader propose its replacement without waiting for a tick."""
    node = ready_leader()
    node.handle_store_status(StoreStatus(2, 1, 5, 5, False, 1))

    effects = node.handle_store_down(1)

    assert len(events(effects, "store_failed")) == 1
    assert len(events(effects, "config_proposed")) == 1
    assert node.config.primary == 2


def test_failed_primary_longest_log() -> None:
    """A failed primary is replaced by the live holder with the longest log (docs/protocol.md)."""
    node = ready_leader()
    statuses = [StoreStatus(2, 1, 5, 5, False, 1), StoreStatus(3, 1, 7, 5, False, 1)]

    effects = fail_and_tick(node, [1], statuses)

    assert len(events(effects, "store_failed")) == 1
    assert node.config.epoch == 2
    assert node.config.primary == 3
    assert node.config.backups == (2,)


def test_failed_backup_dropped() -> None:
    """A failed backup is dropped and the primary kept (docs/protocol.md)."""
    node = ready_leader()

    fail_and_tick(node, [3], [StoreStatus(2, 1, 0, 0, False, 1)])

    assert node.config.primary == 1
    assert node.config.backups == (2,)
    assert node.config.epoch == 2


def joining_leader() -> SyncNode:
    """A READY leader of epoch 5 whose store 3 is a joining backup."""
    node = make_node(persisted=persisted_config(4, 1, (2, 3), joining=(3,)))
    ready_leader(node)
    assert node.config.epoch == 5
    assert node.config.joining == (3,)
    return node


def test_joining_never_primary() -> None:
    """A joining backup not yet synced in the current epoch is never chosen as primary (docs/protocol.md)."""
    node = joining_leader()
    statuses = [StoreStatus(2, 5, 3, 3, False, 5), StoreStatus(3, 5, 9, 3, False, 4)]

    fail_and_tick(node, [1], statuses)

    assert node.config.primary == 2
    assert node.config.backups == (3,)
    assert node.config.joining == (3,)


def test_synced_joiner_can_lead() -> None:
    """A joining backup that reports the current epoch as synced holds every committed entry."""
    node = joining_leader()
    statuses = [StoreStatus(2, 5, 3, 3, False, 5), StoreStatus(3, 5, 9, 3, False, 5)]

    fail_and_tick(node, [1], statuses)

    assert node.config.primary == 3
    assert node.config.joining == ()


def test_leader_waits_without_holder() -> None:
    """When no live member holds every committed entry, the leader proposes nothing (docs/protocol.md)."""
    node = joining_leader()
    effects: list[Effect] = []

    # Stores 1 and 2 stop replying to pings together, so one tick finds both failed.
    for _ in range(TIMERS.store_failure_timeout + 1):
        node.handle_store_status(StoreStatus(3, 5, 9, 3, False, 4))
        effects += node.tick()

    assert events(effects, "config_proposed") == []
    assert node.config.epoch == 5
    assert node.config.primary == 1


def test_caught_up_node_rejoins() -> None:
    """A caught-up store node outside the configuration is added back as a joining backup (docs/protocol.md)."""
    node = make_node(persisted=persisted_config(3, 1, (2,)))
    ready_leader(node)

    effects = fail_and_tick(node, [], [StoreStatus(3, 4, 6, 6, True, 0)])

    assert len(events(effects, "config_proposed")) == 1
    assert node.config.backups == (2, 3)
    assert node.config.joining == (3,)


def test_lagging_node_not_added() -> None:
    """A store node outside the configuration that has not caught up stays outside."""
    node = make_node(persisted=persisted_config(3, 1, (2,)))
    ready_leader(node)

    effects = fail_and_tick(node, [], [StoreStatus(3, 4, 2, 2, False, 0)])

    assert events(effects, "config_proposed") == []
    assert node.config.backups == (2,)


# --- Client requests and writes ----------------------------------------------


@pytest.mark.parametrize(("leader_id", "status"), [(4, ReplyStatus.REDIRECT), (None, ReplyStatus.RETRY)])
def test_follower_redirects(leader_id: int | None, status: ReplyStatus) -> None:
    """W1: a follower answers REDIRECT with the leader it knows, or RETRY when it knows none (docs/protocol.md)."""
    node = make_node(node_id=2)
    if leader_id is not None:
        node.handle_heartbeat(Heartbeat(1, leader_id, node.config))

    effects = node.handle_client_request(7, request(1, 1))

    reply = client_replies(effects)[0]
    assert reply.conn == 7
    assert reply.message.status is status
    assert reply.message.leader == (leader_id or 0)


def test_requests_queued_until_ready() -> None:
    """The leader holds requests until EpochReady, then orders them with consecutive seqs (docs/protocol.md)."""
    node = make_node()
    elect(node)
    ack_config(node, [2, 3])

    early = submit(node, [request(1, 1), request(2, 1), request(1, 2)])
    assert early == []
    assert node.leader is not None
    assert node.leader.pending == {}
    node.handle_epoch_ready(epoch_ready(node, last_seq=4, last_lamport=10))

    pending = node.leader.pending
    assert sorted(pending) == [5, 6, 7]
    assert [(pending[seq].client_id, pending[seq].request_id) for seq in (5, 6, 7)] == [(1, 1), (2, 1), (1, 2)]


@pytest.mark.parametrize(("clock", "client_lamport", "stamp"), [(10, 3, 11), (10, 10, 11), (10, 50, 51)])
def test_lamport_stamp(clock: int, client_lamport: int, stamp: int) -> None:
    """The leader stamps max(clock, client timestamp) + 1 (Lamport 1978, rule IR2)."""
    node = ready_leader(last_lamport=clock)

    submit(node, [request(1, 1, lamport=client_lamport)])

    assert node.leader is not None
    assert node.leader.pending[1].lamport == stamp
    assert node.leader.clock == stamp


def test_lamport_strictly_increases() -> None:
    """Stamps strictly increase along the pending entries, whatever the clients send (Lamport 1978)."""
    node = ready_leader(last_lamport=5)

    submit(node, [request(1, 1, 40), request(2, 1, 2), request(1, 2, 41), request(3, 1, 0)])

    assert node.leader is not None
    stamps = [node.leader.pending[seq].lamport for seq in sorted(node.leader.pending)]
    assert stamps == [41, 42, 43, 44]


def test_duplicate_adds_no_entry() -> None:
    """A repeated request id gets no new entry; the repeat waits for the original (docs/protocol.md)."""
    node = ready_leader()
    submit(node, [request(1, 1)], conn=7)

    effects = submit(node, [request(1, 1)], conn=8)

    assert effects == []
    assert node.leader is not None
    assert sorted(node.leader.pending) == [1]
    assert node.leader.waiters[1] == [7, 8]


def test_committed_duplicate_gets_ok() -> None:
    """Once committed, a repeated request id is answered OK with its original seq (docs/protocol.md)."""
    node = ready_leader(last_seq=3)
    submit(node, [request(1, 1, lamport=2)])
    appended(node, node.handle_write_ack(WriteAck(1, node.config.epoch, 4)))

    effects = submit(node, [request(1, 1, lamport=2)], conn=9)

    reply = client_replies(effects)[0]
    assert reply.conn == 9
    assert reply.message.status is ReplyStatus.OK
    assert reply.message.seq == 4
    assert node.leader is not None
    assert node.leader.next_seq == 5


def test_duplicate_from_epoch_ready() -> None:
    """A new leader answers a request already in the log from the client marks of EpochReady."""
    mark = ClientMark(client_id=1, request_id=3, seq=2, term=1, lamport=8)
    node = ready_leader(last_seq=2, last_lamport=8, clients=(mark,))

    effects = submit(node, [request(1, 3)], conn=5)

    reply = client_replies(effects)[0].message
    assert reply.status is ReplyStatus.OK
    assert reply.seq == 2
    assert reply.lamport == 8


def test_skipped_id_out_of_order() -> None:
    """A request id that skips ahead is rejected with OUT_OF_ORDER and the expected id (docs/protocol.md)."""
    node = ready_leader()
    submit(node, [request(1, 1)])

    effects = submit(node, [request(1, 3)], conn=4)

    reply = client_replies(effects)[0].message
    assert reply.status is ReplyStatus.OUT_OF_ORDER
    assert reply.expected_request_id == 2
    assert node.leader is not None
    assert sorted(node.leader.pending) == [1]


def test_flush_sends_one_write() -> None:
    """flush() sends every entry ordered since the last flush to the primary in one Write (W2)."""
    node = ready_leader()
    submit(node, [request(1, 1), request(1, 2), request(2, 1)])

    effects = node.flush()

    writes = sent(effects, Write)
    assert len(writes) == 1
    assert writes[0].node == node.config.primary
    assert [entry.seq for entry in writes[0].message.entries] == [1, 2, 3]
    assert writes[0].message.epoch == node.config.epoch
    assert node.flush() == []


def test_flush_splits_batches() -> None:
    """flush() splits a long run of entries at the batch limit of core/batching.py (W2)."""
    node = ready_leader()
    count = MAX_BATCH_ENTRIES + 1
    submit(node, [request(1, rid) for rid in range(1, count + 1)])

    effects = node.flush()

    sizes = [len(send.message.entries) for send in sent(effects, Write)]
    assert sizes == [count - 1, 1]
    assert [e.seq for send in sent(effects, Write) for e in send.message.entries] == list(range(1, count + 1))


def test_flush_waits_for_ready() -> None:
    """A leader that is not READY sends no Write."""
    node = make_node()
    elect(node)
    ack_config(node, [2, 3])
    submit(node, [request(1, 1)])

    assert node.flush() == []


def test_ack_appends_committed_only() -> None:
    """W5: a WriteAck leads to AppendOutput of exactly the newly committed entries, in seq order."""
    node = ready_leader()
    submit(node, [request(1, 1), request(2, 1), request(1, 2)])
    node.flush()

    effects = node.handle_write_ack(WriteAck(1, node.config.epoch, 2))

    outputs = [effect for effect in effects if isinstance(effect, AppendOutput)]
    assert len(outputs) == 1
    assert [entry.seq for entry in outputs[0].entries] == [1, 2]
    assert outputs[0].term == 1


def test_ack_waits_for_output_in_flight() -> None:
    """Only one output append is in flight; the next starts when the first is done."""
    node = ready_leader()
    submit(node, [request(1, 1), request(1, 2)])
    first = node.handle_write_ack(WriteAck(1, node.config.epoch, 1))

    second = node.handle_write_ack(WriteAck(1, node.config.epoch, 2))
    after = appended(node, first)

    assert [effect for effect in second if isinstance(effect, AppendOutput)] == []
    outputs = [effect for effect in after if isinstance(effect, AppendOutput)]
    assert [entry.seq for entry in outputs[0].entries] == [2]


@pytest.mark.parametrize(("term", "epoch"), [(0, 1), (1, 0), (1, 2)], ids=["old-term", "old-epoch", "other-epoch"])
def test_ack_of_other_epoch_ignored(term: int, epoch: int) -> None:
    """A WriteAck from another term or epoch commits nothing."""
    node = ready_leader()
    submit(node, [request(1, 1)])

    effects = node.handle_write_ack(WriteAck(term, epoch, 1))

    assert effects == []
    assert node.leader is not None
    assert node.leader.committed == 0


def test_output_answers_its_waiters() -> None:
    """Clients are answered OK only for the seqs that reached the output file (docs/protocol.md)."""
    node = ready_leader()
    submit(node, [request(1, 1)], conn=11)
    submit(node, [request(2, 1)], conn=12)
    submit(node, [request(1, 1)], conn=13)
    submit(node, [request(3, 1)], conn=14)
    effects = node.handle_write_ack(WriteAck(1, node.config.epoch, 3))
    append = next(effect for effect in effects if isinstance(effect, AppendOutput))

    answered = node.handle_output_result(1, OutputDecision(True, 1, append.entries[:2], 2))

    replies = client_replies(answered)
    assert sorted(reply.conn for reply in replies) == [11, 12, 13]
    assert {reply.message.status for reply in replies} == {ReplyStatus.OK}
    assert {(reply.conn, reply.message.seq) for reply in replies} == {(11, 1), (12, 2), (13, 1)}


def test_refused_output_steps_down() -> None:
    """An append refused by a higher fence deposes the leader (docs/protocol.md, output fencing)."""
    node = ready_leader()
    submit(node, [request(1, 1)], conn=11)
    node.handle_write_ack(WriteAck(1, node.config.epoch, 1))

    effects = node.handle_output_result(1, OutputDecision(False, 6, (), 0))

    assert node.role is Role.FOLLOWER
    assert node.term == 6
    assert [reply.message.status for reply in client_replies(effects)] == [ReplyStatus.RETRY]


def test_refused_fence_steps_down() -> None:
    """A new leader whose fence is refused by a later term steps down (docs/protocol.md, output fencing)."""
    node = make_node()
    elect(node)

    node.handle_fence_result(1, OutputDecision(False, 3, (), 0))

    assert node.role is Role.FOLLOWER
    assert node.term == 3


def fetching_leader() -> tuple[SyncNode, list[Effect]]:
    """A new leader whose output file lacks the three entries committed before it led."""
    node = make_node(timers=Timers(write_retry=5))
    elect(node)
    ack_config(node, [2, 3])
    node.handle_epoch_ready(epoch_ready(node, last_seq=3, last_lamport=9))
    effects = node.handle_fence_result(1, OutputDecision(True, 1, (), 0))
    return node, effects


def test_missing_entries_fetched() -> None:
    """A leader fetches committed entries it lacks from the primary with FetchEntries (docs/protocol.md)."""
    node, effects = fetching_leader()

    fetches = sent(effects, FetchEntries)

    assert len(fetches) == 1
    assert fetches[0].node == node.config.primary
    assert (fetches[0].message.first_seq, fetches[0].message.last_seq) == (1, 3)


def test_fetch_retried_after_write_retry() -> None:
    """An unanswered FetchEntries is sent again after write_retry ticks, not before."""
    node, _ = fetching_leader()

    early: list[Effect] = []
    for _ in range(node.timers.write_retry - 1):
        early += keep_alive_tick(node)
    late = keep_alive_tick(node)

    assert sent(early, FetchEntries) == []
    assert len(sent(late, FetchEntries)) == 1


def test_fetched_entries_appended() -> None:
    """Fetched committed entries are appended to the output in seq order."""
    node, _ = fetching_leader()
    entries = tuple(Entry(seq, 1, seq * 3, 1, seq, f"t{seq}") for seq in (1, 2, 3))

    effects = node.handle_fetch_reply(FetchReply(1, entries))

    outputs = [effect for effect in effects if isinstance(effect, AppendOutput)]
    assert outputs == [AppendOutput(1, entries)]


def test_fetched_waiter_answered() -> None:
    """A retry of a request committed under an earlier leader is answered once its entry is in the output."""
    marks = tuple(ClientMark(1, rid, rid, 1, rid * 3) for rid in (1, 2, 3))
    node = make_node(timers=Timers(write_retry=5))
    elect(node)
    ack_config(node, [2, 3])
    node.handle_epoch_ready(epoch_ready(node, last_seq=3, last_lamport=9, clients=marks))
    node.handle_fence_result(1, OutputDecision(True, 1, (), 0))
    submit(node, [request(1, 3)], conn=21)
    entries = tuple(Entry(seq, 1, seq * 3, 1, seq, f"t{seq}") for seq in (1, 2, 3))
    append = node.handle_fetch_reply(FetchReply(1, entries))

    effects = appended(node, append)

    assert [(reply.conn, reply.message.seq) for reply in client_replies(effects)] == [(21, 3)]


def test_max_pending_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A leader holding MAX_PENDING messages answers RETRY and orders nothing more."""
    monkeypatch.setattr(sync_node, "MAX_PENDING", 2)
    node = ready_leader()
    submit(node, [request(1, 1), request(1, 2)])

    effects = submit(node, [request(1, 3)], conn=9)

    reply = client_replies(effects)[0].message
    assert reply.status is ReplyStatus.RETRY
    assert reply.leader == node.node_id
    assert node.leader is not None
    assert sorted(node.leader.pending) == [1, 2]


def test_gap_reject_resends() -> None:
    """A WriteReject GAP makes the leader resend from the position the primary expects (docs/protocol.md)."""
    node = ready_leader()
    submit(node, [request(1, rid) for rid in (1, 2, 3)])
    node.flush()

    effects = node.handle_write_reject(WriteReject(1, node.config.epoch, 1, RejectReason.GAP, 2))

    writes = sent(effects, Write)
    assert [entry.seq for entry in writes[0].message.entries] == [2, 3]


def test_unacked_writes_resent() -> None:
    """Writes without commit progress for write_retry ticks are resent from the commit index."""
    node = ready_leader(node=make_node(timers=Timers(write_retry=5)))
    submit(node, [request(1, 1), request(1, 2)])
    node.flush()

    effects: list[Effect] = []
    for _ in range(node.timers.write_retry):
        effects += keep_alive_tick(node)

    writes = sent(effects, Write)
    assert len(writes) == 1
    assert [entry.seq for entry in writes[0].message.entries] == [1, 2]


# --- Properties ------------------------------------------------------------------

# Each step: (client id, how the request id relates to the next expected one, client timestamp).
STEPS = st.lists(
    st.tuples(st.integers(1, 3), st.sampled_from(["next", "repeat", "skip"]), st.integers(0, 60)),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(STEPS)
def test_pending_keeps_client_order(steps: list[tuple[int, str, int]]) -> None:
    """Any interleaving of fresh, repeated and skipped requests keeps each client's order and one entry per id."""
    node = ready_leader()
    sent_ids: dict[int, int] = {}
    for client, kind, lamport in steps:
        last = sent_ids.get(client, 0)
        request_id = {"next": last + 1, "repeat": max(last, 1), "skip": last + 2}[kind]
        if request_id == last + 1:
            sent_ids[client] = request_id
        node.handle_client_request(client, request(client, request_id, lamport))

    assert node.leader is not None
    entries = [node.leader.pending[seq] for seq in sorted(node.leader.pending)]
    assert client_order(entries) == []
    for client, last in sent_ids.items():
        assert [e.request_id for e in entries if e.client_id == client] == list(range(1, last + 1))


@settings(max_examples=150, deadline=None)
@given(STEPS)
def test_pending_lamport_monotonic(steps: list[tuple[int, str, int]]) -> None:
    """Stamps strictly increase along the pending entries and exceed each request's own timestamp."""
    node = ready_leader(last_lamport=7)
    sent_ids: dict[int, int] = {}
    request_stamps: dict[tuple[int, int], int] = {}
    for client, kind, lamport in steps:
        last = sent_ids.get(client, 0)
        request_id = {"next": last + 1, "repeat": max(last, 1), "skip": last + 2}[kind]
        if request_id == last + 1:
            sent_ids[client] = request_id
            request_stamps[(client, request_id)] = lamport
        node.handle_client_request(client, request(client, request_id, lamport))

    assert node.leader is not None
    entries = [node.leader.pending[seq] for seq in sorted(node.leader.pending)]
    assert lamport_order(entries) == []
    assert all(entry.lamport > 7 for entry in entries)
    for entry in entries:
        assert entry.lamport > request_stamps[(entry.client_id, entry.request_id)]
    assert [entry.seq for entry in entries] == list(range(1, len(entries) + 1))


def test_leader_status_reports_role() -> None:
    """status() reports the leader's role, term and installed epoch."""
    node = ready_leader()

    status = node.status()

    assert status.role == "leader"
    assert status.term == 1
    assert status.epoch == 1


def test_ok_reply_fields() -> None:
    """An OK reply carries the seq, term and Lamport stamp of the client's entry."""
    node = ready_leader(last_lamport=4)
    submit(node, [request(2, 1, lamport=1)], conn=3)

    effects = appended(node, node.handle_write_ack(WriteAck(1, node.config.epoch, 1)))

    assert client_replies(effects) == [Reply(3, ClientReply(ReplyStatus.OK, 2, 1, 1, 1, 5, 1, 0))]


def test_primary_behind_output_holds_writes() -> None:
    """A primary whose committed log is shorter than output.txt (its files were removed) gets no writes."""
    node = make_node()
    elect(node)
    ack_config(node, node.peers[:2])
    node.handle_fence_result(node.term, OutputDecision(True, node.term, (), 20))

    effects = node.handle_epoch_ready(epoch_ready(node, last_seq=0))
    effects += node.handle_client_request(7, request(1, 1))
    effects += node.flush()

    assert [effect.name for effect in effects if isinstance(effect, Event)] == ["store_lost_entries"]
    assert sent(effects, Write) == []
    assert node.leader is not None
    assert node.leader.phase is StorePhase.INSTALLING


def test_fence_after_ready_finds_primary_behind() -> None:
    """The same holds when the output's length is learnt after the epoch became ready."""
    node = make_node()
    elect(node)
    ack_config(node, node.peers[:2])
    node.handle_epoch_ready(epoch_ready(node, last_seq=3))

    effects = node.handle_fence_result(node.term, OutputDecision(True, node.term, (), 20))
    effects += node.handle_client_request(7, request(1, 1))
    effects += node.flush()

    assert [effect.name for effect in effects if isinstance(effect, Event)] == ["store_lost_entries"]
    assert sent(effects, Write) == []
    assert [effect for effect in effects if isinstance(effect, AppendOutput)] == []
