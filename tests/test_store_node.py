"""Unit tests of the store node: epochs, remote write, epoch sync and catch-up.

The remote-write steps W1 to W5 are those of primary-based replication in
Tanenbaum and van Steen, "Distributed Systems", as docs/protocol.md lists
them. Each test builds `StoreNode` objects and feeds them messages directly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from cluster.core import store_node
from cluster.core.bugs import Bug
from cluster.core.dispatch import dispatch_store
from cluster.core.effects import AppendLog, CommitLog, Effect, Event, Send
from cluster.core.messages import (
    MAX_TEXT_BYTES,
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
    StoreConfig,
    StorePing,
    StoreStatus,
    Write,
    WriteAck,
    WriteReject,
)
from cluster.core.store_node import StoreNode
from cluster.wire import MAX_FRAME_BYTES, encode

STORE_IDS = (1, 2, 3)
LEADER = 9
CONFIG = StoreConfig(epoch=1, term=1, primary=1, backups=(2, 3))


# --- Helpers -------------------------------------------------------------------


def entry(seq: int, term: int = 1, client: int = 1, request_id: int | None = None) -> Entry:
    return Entry(seq, term, 10 * seq, client, request_id or seq, f"message {seq}")


def entries(first: int, last: int, term: int = 1) -> tuple[Entry, ...]:
    return tuple(entry(seq, term) for seq in range(first, last + 1))


def make_store(node_id: int, bugs: frozenset[Bug] = frozenset(), **kwargs: Any) -> StoreNode:
    return StoreNode(node_id, STORE_IDS, bugs=bugs, **kwargs)


def restarted(
    node_id: int, config: StoreConfig, log: Sequence[Entry], commit: int, synced_epoch: int | None = None
) -> StoreNode:
    """A store node rebuilt from its state file, write-ahead log and backup file."""
    persisted = {
        "config": {"epoch": config.epoch, "term": config.term, "primary": config.primary,
                   "backups": list(config.backups), "joining": list(config.joining)},
        "leader_term": config.term,
        "synced_epoch": config.epoch if synced_epoch is None else synced_epoch,
    }
    return make_store(node_id, persisted=persisted, log=log, commit=commit)


def sent(effects: Iterable[Effect], kind: type) -> list[Send]:
    return [effect for effect in effects if isinstance(effect, Send) and isinstance(effect.message, kind)]


def index_of(effects: Sequence[Effect], kind: type) -> list[int]:
    """Return the positions in `effects` of effects of type `kind`, or of Sends of a message of that type."""
    return [
        i for i, effect in enumerate(effects)
        if isinstance(effect, kind) or (isinstance(effect, Send) and isinstance(effect.message, kind))
    ]


def deliver(nodes: dict[int, StoreNode], effects: Iterable[Effect]) -> list[Effect]:
    """Carry store-to-store messages until none is left; return every effect produced, in order."""
    queue = deque(effects)
    seen: list[Effect] = []
    while queue:
        effect = queue.popleft()
        seen.append(effect)
        if isinstance(effect, Send) and effect.role == "store":
            queue.extend(dispatch_store(nodes[effect.node], effect.message))
    return seen


def install(nodes: dict[int, StoreNode], config: StoreConfig, term: int | None = None) -> list[Effect]:
    """Send NewEpoch for `config` to its members and run the epoch sync to the end."""
    message = NewEpoch(config.term if term is None else term, LEADER, config)
    effects: list[Effect] = []
    for member in config.members:
        effects += deliver(nodes, nodes[member].handle_new_epoch(message))
    return effects


def ready_cluster(log: Sequence[Entry] = ()) -> dict[int, StoreNode]:
    """Three store nodes with epoch 1 installed (primary 1), each holding committed `log`."""
    nodes = {node: make_store(node, log=log, commit=len(log)) for node in STORE_IDS}
    install(nodes, CONFIG)
    assert nodes[1].primary is not None
    assert nodes[1].primary.ready
    return nodes


def single_primary(epoch: int = 3, term: int = 2, bugs: frozenset[Bug] = frozenset()) -> StoreNode:
    """A ready primary of a configuration without backups, so it commits each write at once."""
    node = make_store(1, bugs=bugs)
    node.handle_new_epoch(NewEpoch(term, LEADER, StoreConfig(epoch, term, 1, ())))
    return node


def backup_of(epoch: int = 3, term: int = 2, bugs: frozenset[Bug] = frozenset()) -> StoreNode:
    node = make_store(2, bugs=bugs)
    node.handle_new_epoch(NewEpoch(term, LEADER, StoreConfig(epoch, term, 1, (2,))))
    return node


# --- Epoch check ---------------------------------------------------------------

STALE_CASES = {
    "new-epoch-older-epoch": (backup_of, NewEpoch(2, LEADER, StoreConfig(2, 2, 1, (2,)))),
    "new-epoch-older-term": (backup_of, NewEpoch(1, LEADER, StoreConfig(4, 1, 1, (2,)))),
    "write-older-epoch": (single_primary, Write(2, LEADER, 2, (entry(1),))),
    "write-older-term": (single_primary, Write(1, LEADER, 3, (entry(1),))),
    "replicate-older-epoch": (backup_of, Replicate(2, 1, 0, (entry(1),), 0)),
    "epoch-sync-older-epoch": (backup_of, EpochSync(2, LEADER, StoreConfig(2, 2, 1, (2,)), 0, (entry(1),))),
}


def rejected(effects: Sequence[Effect]) -> bool:
    """Return True when the only message sent in `effects` is a rejection."""
    answers = [effect.message for effect in effects if isinstance(effect, Send)]
    if len(answers) != 1 or any(isinstance(effect, AppendLog) for effect in effects):
        return False
    answer = answers[0]
    if isinstance(answer, WriteReject):
        return answer.reason is RejectReason.STALE_EPOCH
    return isinstance(answer, ReplicateReply | EpochSyncReply) and not answer.success


@pytest.mark.parametrize("case", STALE_CASES)
def test_epoch_check_rejects(case: str) -> None:
    """A store node rejects NewEpoch, Write, Replicate and EpochSync from an older epoch or term (docs/protocol.md)."""
    build, message = STALE_CASES[case]
    node = build()
    config = node.config

    effects = dispatch_store(node, message)

    assert rejected(effects)
    assert node.config == config
    assert node.log == []
    assert node.stale_accepts == 0


@pytest.mark.parametrize("case", [name for name in STALE_CASES if "older-epoch" in name])
def test_skip_epoch_check_accepts(case: str) -> None:
    """With Bug.SKIP_EPOCH_CHECK a store node accepts an older epoch and counts it in stale_accepts."""
    build, message = STALE_CASES[case]
    node = build(bugs=frozenset({Bug.SKIP_EPOCH_CHECK}))

    effects = dispatch_store(node, message)

    assert not rejected(effects)
    assert node.stale_accepts == 1


def test_write_to_backup_not_primary() -> None:
    """A Write to a node that is not the ready primary of that epoch is rejected with NOT_PRIMARY."""
    node = backup_of()

    effects = node.handle_write(Write(2, LEADER, 3, (entry(1),)))

    assert [send.message.reason for send in sent(effects, WriteReject)] == [RejectReason.NOT_PRIMARY]
    assert node.log == []


# --- Remote write --------------------------------------------------------------


def test_primary_logs_before_forwarding() -> None:
    """W2 to W3: the primary appends to its log before it sends Replicate to the backups."""
    nodes = ready_cluster()

    effects = nodes[1].handle_write(Write(1, LEADER, 1, entries(1, 2)))

    appends = index_of(effects, AppendLog)
    replicates = index_of(effects, Replicate)
    assert len(appends) == 1
    assert effects[appends[0]] == AppendLog(0, entries(1, 2))
    assert appends[0] < min(replicates)


def test_only_forwarded_entries_may_leave_before_the_write() -> None:
    """The Replicate sends are eager, so backups write while the primary writes; acks and commits are not."""
    nodes = ready_cluster()

    write = nodes[1].handle_write(Write(1, LEADER, 1, entries(1, 2)))
    nodes[1].handle_replicate_reply(ReplicateReply(1, 2, True, 2))
    commit = nodes[1].handle_replicate_reply(ReplicateReply(1, 3, True, 2))

    assert [send.eager for send in sent(write, Replicate)] == [True, True]
    assert [send.eager for send in sent(commit, WriteAck) + sent(commit, Commit)] == [False, False, False]


def test_primary_forwards_to_every_backup() -> None:
    """W3: the primary forwards the new entries to every backup of the configuration."""
    nodes = ready_cluster()

    effects = nodes[1].handle_write(Write(1, LEADER, 1, entries(1, 2)))

    replicates = sent(effects, Replicate)
    assert sorted(send.node for send in replicates) == [2, 3]
    assert {send.message.entries for send in replicates} == {entries(1, 2)}
    assert {send.message.prev_seq for send in replicates} == {0}


def test_no_ack_before_all_backups() -> None:
    """W4 to W5: the primary sends no WriteAck while a backup has not confirmed the entries."""
    nodes = ready_cluster()
    write = nodes[1].handle_write(Write(1, LEADER, 1, entries(1, 2)))

    after_one = nodes[1].handle_replicate_reply(ReplicateReply(1, 2, True, 2))

    assert sent(write, WriteAck) == []
    assert sent(after_one, WriteAck) == []
    assert nodes[1].commit == 0


def test_ack_after_all_backups() -> None:
    """W5: once every backup confirmed the entries, the primary commits and sends WriteAck to the leader."""
    nodes = ready_cluster()
    nodes[1].handle_write(Write(1, LEADER, 1, entries(1, 2)))
    nodes[1].handle_replicate_reply(ReplicateReply(1, 2, True, 2))

    effects = nodes[1].handle_replicate_reply(ReplicateReply(1, 3, True, 2))

    acks = sent(effects, WriteAck)
    assert [(send.node, send.message) for send in acks] == [(LEADER, WriteAck(1, 1, 2))]
    assert index_of(effects, WriteAck)[0] < min(index_of(effects, Commit))
    assert len(index_of(effects, CommitLog)) == 1


def test_ack_up_to_lowest_match() -> None:
    """The primary commits only up to the shortest log among the backups (W4)."""
    nodes = ready_cluster()
    nodes[1].handle_write(Write(1, LEADER, 1, entries(1, 3)))
    nodes[1].handle_replicate_reply(ReplicateReply(1, 2, True, 3))

    effects = nodes[1].handle_replicate_reply(ReplicateReply(1, 3, True, 1))

    assert [send.message.commit for send in sent(effects, WriteAck)] == [1]
    assert nodes[1].commit == 1


def test_early_ack_bug_acks_at_once() -> None:
    """With Bug.EARLY_ACK the primary acknowledges a write before any backup holds it."""
    nodes = ready_cluster()
    nodes[1].bugs = frozenset({Bug.EARLY_ACK})

    effects = nodes[1].handle_write(Write(1, LEADER, 1, entries(1, 2)))

    assert [send.message.commit for send in sent(effects, WriteAck)] == [2]


def test_write_end_to_end() -> None:
    """W2 to W5 over the store network: every member holds and commits the entries, and the leader gets one ack."""
    nodes = ready_cluster()

    effects = deliver(nodes, nodes[1].handle_write(Write(1, LEADER, 1, entries(1, 3))))

    assert [send.message for send in sent(effects, WriteAck)] == [WriteAck(1, 1, 3)]
    assert [nodes[node].log for node in STORE_IDS] == [list(entries(1, 3))] * 3
    assert [nodes[node].commit for node in STORE_IDS] == [3, 3, 3]


def test_gap_rejected() -> None:
    """An entry that does not follow the log is rejected with GAP and the expected seq (docs/protocol.md)."""
    nodes = ready_cluster(log=entries(1, 2))

    effects = nodes[1].handle_write(Write(1, LEADER, 1, entries(4, 5)))

    rejects = sent(effects, WriteReject)
    assert [send.message.reason for send in rejects] == [RejectReason.GAP]
    assert rejects[0].message.expected_seq == 3
    assert index_of(effects, AppendLog) == []
    assert len(nodes[1].log) == 2


def test_conflict_rejected() -> None:
    """An entry for a held position from another term is rejected with CONFLICT."""
    nodes = ready_cluster(log=entries(1, 2))

    effects = nodes[1].handle_write(Write(1, LEADER, 1, (entry(2, term=5),)))

    assert [send.message.reason for send in sent(effects, WriteReject)] == [RejectReason.CONFLICT]
    assert nodes[1].log == list(entries(1, 2))


def test_repeat_acked_again() -> None:
    """A repeated Write of entries already held is acknowledged again without a new append (docs/protocol.md)."""
    nodes = ready_cluster()
    deliver(nodes, nodes[1].handle_write(Write(1, LEADER, 1, entries(1, 2))))

    effects = nodes[1].handle_write(Write(1, LEADER, 1, entries(1, 2)))

    assert [send.message for send in sent(effects, WriteAck)] == [WriteAck(1, 1, 2)]
    assert index_of(effects, AppendLog) == []
    assert sent(effects, Replicate) == []


def test_partial_repeat_appends_rest() -> None:
    """A Write that repeats held entries and adds new ones appends only the new ones."""
    nodes = ready_cluster()
    nodes[1].handle_write(Write(1, LEADER, 1, entries(1, 2)))

    effects = nodes[1].handle_write(Write(1, LEADER, 1, entries(1, 4)))

    appends = [effect for effect in effects if isinstance(effect, AppendLog)]
    assert appends == [AppendLog(2, entries(3, 4))]


def test_commit_log_only_new_entries() -> None:
    """CommitLog carries exactly the entries committed by this step, none committed before."""
    nodes = ready_cluster()
    deliver(nodes, nodes[1].handle_write(Write(1, LEADER, 1, entries(1, 1))))
    nodes[1].handle_write(Write(1, LEADER, 1, entries(2, 3)))
    nodes[1].handle_replicate_reply(ReplicateReply(1, 2, True, 3))

    effects = nodes[1].handle_replicate_reply(ReplicateReply(1, 3, True, 3))

    assert [effect for effect in effects if isinstance(effect, CommitLog)] == [CommitLog(entries(2, 3))]


def test_backup_learns_commit() -> None:
    """A backup extends its backup file when a Commit or Replicate carries a higher commit index."""
    node = backup_of(epoch=1, term=1)
    node.handle_replicate(Replicate(1, 1, 0, entries(1, 3), 0))

    first = node.handle_replicate(Replicate(1, 1, 3, (), 2))
    second = node.handle_commit(Commit(1, 3))

    assert [effect for effect in first if isinstance(effect, CommitLog)] == [CommitLog(entries(1, 2))]
    assert second == [CommitLog(entries(3, 3))]
    assert node.commit == 3


def test_replicate_gap_rejected() -> None:
    """W3: a Replicate that does not follow the backup's log is answered success=False with its length."""
    node = backup_of(epoch=1, term=1)

    effects = node.handle_replicate(Replicate(1, 1, 2, entries(3, 3), 0))

    assert [send.message for send in sent(effects, ReplicateReply)] == [ReplicateReply(1, 2, False, 0)]


def test_replicate_reply_after_append() -> None:
    """W4: a backup confirms entries only after the AppendLog that puts them on disk."""
    node = backup_of(epoch=1, term=1)

    effects = node.handle_replicate(Replicate(1, 1, 0, entries(1, 2), 0))

    assert index_of(effects, AppendLog)[0] < index_of(effects, ReplicateReply)[0]
    assert sent(effects, ReplicateReply)[0].message == ReplicateReply(1, 2, True, 2)


# --- Epoch sync ----------------------------------------------------------------

OLD = StoreConfig(epoch=1, term=1, primary=1, backups=(2, 3))
NEW = StoreConfig(epoch=2, term=2, primary=1, backups=(2, 3))


def backup_with_tail() -> StoreNode:
    """Backup 2 of epoch 1 holding entries 1 to 4, of which 1 and 2 are committed."""
    return restarted(2, OLD, entries(1, 4), commit=2)


def test_first_sync_truncates_tail() -> None:
    """The first EpochSync of an epoch replaces the backup's uncommitted tail by the primary's entries."""
    node = backup_with_tail()
    new_entry = entry(3, term=2)

    effects = node.handle_epoch_sync(EpochSync(2, LEADER, NEW, 2, (new_entry,)))

    assert node.log == [*entries(1, 2), new_entry]
    assert AppendLog(2, (new_entry,)) in effects
    assert sent(effects, EpochSyncReply)[0].message == EpochSyncReply(2, 2, True, 3)
    assert node.synced_epoch == 2


def test_first_sync_drops_unheld_tail() -> None:
    """A first EpochSync with no entries after base_seq cuts the backup's log to base_seq."""
    node = backup_with_tail()

    effects = node.handle_epoch_sync(EpochSync(2, LEADER, NEW, 2, ()))

    assert node.log == list(entries(1, 2))
    assert AppendLog(2, ()) in effects


def test_repeated_sync_never_truncates() -> None:
    """A repeated EpochSync of an epoch the backup already synced may add entries but never truncates."""
    node = backup_with_tail()
    sync = EpochSync(2, LEADER, NEW, 2, (entry(3, term=2),))
    node.handle_epoch_sync(sync)
    node.handle_replicate(Replicate(2, 1, 3, (entry(4, term=2), entry(5, term=2)), 2))

    effects = node.handle_epoch_sync(sync)

    assert len(node.log) == 5
    assert index_of(effects, AppendLog) == []
    assert sent(effects, EpochSyncReply)[0].message.match == 5


def test_short_log_asks_resend() -> None:
    """A backup whose log is shorter than base_seq answers with its commit index so the primary resends."""
    node = restarted(2, OLD, entries(1, 2), commit=1)

    effects = node.handle_epoch_sync(EpochSync(2, LEADER, NEW, 4, (entry(5, term=2),)))

    assert sent(effects, EpochSyncReply)[0].message == EpochSyncReply(2, 2, False, 1)
    assert node.log == list(entries(1, 2))


def test_epoch_ready_after_sync() -> None:
    """The primary sends EpochReady only after every backup took the epoch sync, with the whole log committed."""
    nodes = {node: restarted(node, OLD, entries(1, 3), commit=2) for node in STORE_IDS}
    nodes[1].log.append(entry(4))

    effects = install(nodes, NEW)

    readies = sent(effects, EpochReady)
    assert len(readies) == 1
    assert readies[0].message.last_seq == 4
    assert [nodes[node].log for node in STORE_IDS] == [[*entries(1, 4)]] * 3
    assert [nodes[node].commit for node in STORE_IDS] == [4, 4, 4]


def test_epoch_ready_fields() -> None:
    """EpochReady carries the last seq, the last Lamport stamp and each client's recent requests."""
    log = (
        Entry(1, 1, 5, 1, 1, "a"),
        Entry(2, 1, 8, 2, 1, "b"),
        Entry(3, 1, 12, 1, 2, "c"),
    )
    node = restarted(1, OLD, log, commit=3)

    effects = node.handle_new_epoch(NewEpoch(2, LEADER, StoreConfig(2, 2, 1, ())))

    ready = sent(effects, EpochReady)[0]
    assert ready.node == LEADER
    assert (ready.message.last_seq, ready.message.last_lamport) == (3, 12)
    assert set(ready.message.clients) == {
        ClientMark(1, 1, 1, 1, 5),
        ClientMark(2, 1, 2, 1, 8),
        ClientMark(1, 2, 3, 1, 12),
    }


def test_new_epoch_repeat_answered() -> None:
    """A resent NewEpoch to a ready primary is answered with EpochReady again, without a new sync."""
    node = single_primary()

    effects = node.handle_new_epoch(NewEpoch(2, LEADER, node.config))

    assert len(sent(effects, EpochReady)) == 1
    assert sent(effects, EpochSync) == []


# --- Catch-up --------------------------------------------------------------------


def catch_up_cluster() -> tuple[dict[int, StoreNode], StoreConfig]:
    """Build primary 1 and backup 2 of epoch 3, and node 3 left behind in epoch 1.

    The members hold five committed entries, 2 to 5 from term 2. Node 3 holds
    entry 1 committed and an uncommitted entry 2 from term 1.
    """
    before = StoreConfig(epoch=2, term=2, primary=1, backups=(2,))
    config = StoreConfig(epoch=3, term=3, primary=1, backups=(2,))
    log = (entry(1), *entries(2, 5, term=2))
    nodes = {
        1: restarted(1, before, log, commit=5),
        2: restarted(2, before, log, commit=5),
        3: restarted(3, OLD, entries(1, 2), commit=1),
    }
    install(nodes, config)
    return nodes, config


def test_catch_up_in_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node outside the configuration fetches the committed log in CatchUp rounds (docs/protocol.md)."""
    monkeypatch.setattr(store_node, "CATCH_UP_BATCH", 2)
    nodes, config = catch_up_cluster()

    effects = deliver(nodes, nodes[3].handle_store_ping(StorePing(3, LEADER, config)))

    assert [send.message.first_seq for send in sent(effects, CatchUp)] == [2, 4]
    assert [len(send.message.entries) for send in sent(effects, CatchUpReply)] == [2, 2]
    assert nodes[3].log == nodes[1].log
    assert nodes[3].commit == 5


@pytest.mark.parametrize("text", ["x" * MAX_TEXT_BYTES, "\x01" * MAX_TEXT_BYTES], ids=["ascii", "escaped"])
def test_catch_up_batches_fit_frame(text: str) -> None:
    """EpochSync, CatchUpReply and FetchReply of the longest texts each encode to one frame."""
    log = tuple(Entry(seq, 1, seq, 1, seq, text) for seq in range(1, 301))
    primary = restarted(1, CONFIG, log, commit=len(log))
    primary.handle_new_epoch(NewEpoch(2, LEADER, StoreConfig(2, 2, 1, (2,))))
    primary.handle_epoch_sync_reply(EpochSyncReply(2, 2, True, len(log)))
    assert primary.primary is not None and primary.primary.ready

    catch_up = sent(primary.handle_catch_up(CatchUp(3, 2, 1)), CatchUpReply)
    fetch = sent(primary.handle_fetch_entries(FetchEntries(2, LEADER, 1, len(log))), FetchReply)
    messages = [primary._epoch_sync_message(2, 0).message, *[send.message for send in catch_up + fetch]]

    assert len(messages) == 3
    for message in messages:
        assert 0 < len(message.entries) < len(log)
        assert len(encode(message)) <= MAX_FRAME_BYTES


def test_catch_up_batch_of_short_texts() -> None:
    """A CatchUpReply of short texts carries CATCH_UP_BATCH entries."""
    log = entries(1, store_node.CATCH_UP_BATCH + 10)
    primary = restarted(1, CONFIG, log, commit=len(log))
    primary.handle_new_epoch(NewEpoch(2, LEADER, StoreConfig(2, 2, 1, (2,))))
    primary.handle_epoch_sync_reply(EpochSyncReply(2, 2, True, len(log)))

    replies = sent(primary.handle_catch_up(CatchUp(3, 2, 1)), CatchUpReply)

    assert [len(reply.message.entries) for reply in replies] == [store_node.CATCH_UP_BATCH]


def test_catch_up_drops_uncommitted() -> None:
    """Catch-up replaces the node's uncommitted tail by the primary's committed entries."""
    nodes, config = catch_up_cluster()

    effects = deliver(nodes, nodes[3].handle_store_ping(StorePing(3, LEADER, config)))

    assert AppendLog(1, entries(2, 5, term=2)) in effects
    assert CommitLog(entries(2, 5, term=2)) in effects
    assert nodes[3].log[1] == entry(2, term=2)


def test_catch_up_drops_tail_past_commit() -> None:
    """A node that already holds every committed entry still drops the uncommitted entries after them."""
    nodes, config = catch_up_cluster()
    nodes[3] = restarted(3, OLD, (*nodes[1].log, entry(6, term=1)), commit=5)

    effects = deliver(nodes, nodes[3].handle_store_ping(StorePing(3, LEADER, config)))

    assert nodes[3].log == nodes[1].log
    assert AppendLog(5, ()) in effects
    assert nodes[3].caught_up is True


def test_catch_up_reports_caught_up() -> None:
    """A node that caught up says so in its next StoreStatus, and asks no more."""
    nodes, config = catch_up_cluster()
    deliver(nodes, nodes[3].handle_store_ping(StorePing(3, LEADER, config)))

    effects = nodes[3].handle_store_ping(StorePing(3, LEADER, config))

    statuses = [send.message for send in sent(effects, StoreStatus)]
    assert statuses == [StoreStatus(3, 1, 5, 5, True, 1)]
    assert sent(effects, CatchUp) == []


def test_member_does_not_catch_up() -> None:
    """A member of the installed configuration sends no CatchUp."""
    nodes, config = catch_up_cluster()

    effects = nodes[2].handle_store_ping(StorePing(3, LEADER, config))

    assert sent(effects, CatchUp) == []
    assert sent(effects, StoreStatus)[0].message.caught_up is False


def test_fetch_returns_committed_only() -> None:
    """handle_fetch_entries sends the leader only committed entries, however far it asks."""
    node = restarted(1, OLD, entries(1, 5), commit=3)

    effects = node.handle_fetch_entries(FetchEntries(1, LEADER, 2, 5))

    assert [(send.node, send.message) for send in sent(effects, FetchReply)] == [(LEADER, FetchReply(1, entries(2, 3)))]


def test_fetch_from_old_term_ignored() -> None:
    """A FetchEntries from a leader term older than the installed epoch's gets no answer."""
    node = restarted(1, NEW, entries(1, 5), commit=5)

    assert node.handle_fetch_entries(FetchEntries(1, LEADER, 1, 5)) == []


# --- Restart -----------------------------------------------------------------------


def test_restart_keeps_state() -> None:
    """A store node built from its persisted state, log and commit index keeps all three."""
    before = ready_cluster()
    deliver(before, before[1].handle_write(Write(1, LEADER, 1, entries(1, 3))))
    before[2].handle_replicate(Replicate(1, 1, 3, entries(4, 4), 3))
    node = before[2]

    after = make_store(2, persisted=node.persisted_state(), log=node.log, commit=node.commit)

    assert after.config == CONFIG
    assert after.leader_term == 1
    assert after.synced_epoch == 1
    assert after.log == [*entries(1, 4)]
    assert after.commit == 3


def test_restart_rebuilds_client_marks() -> None:
    """A restarted node rebuilds its client marks from the log, so EpochReady still reports them."""
    node = restarted(1, OLD, (entry(1, client=4, request_id=7),), commit=1)

    assert node.marks == {4: {7: ClientMark(4, 7, 1, 1, 10)}}


def test_restart_keeps_recent_marks_only() -> None:
    """Rebuilt marks contain each client's last RECENT_MARKS requests in log order, as appends leave them."""
    log = []
    for seq in range(1, 501):
        client = 1 + seq % 3 if seq <= 400 else 4  # client 4 writes only at the end
        log.append(Entry(seq, 1, 10 * seq, client, seq, f"message {seq}"))
    appended = make_store(1)
    appended._append(log)

    node = restarted(1, OLD, log, commit=len(log))

    assert node.marks == appended.marks
    for client, marks in node.marks.items():
        assert list(marks) == sorted(marks)
        assert len(marks) == min(store_node.RECENT_MARKS, sum(1 for e in log if e.client_id == client))


def test_restart_commit_beyond_log() -> None:
    """A commit index longer than the log is rejected at construction."""
    with pytest.raises(ValueError, match="commit index 3 exceeds log length 2"):
        make_store(1, log=entries(1, 2), commit=3)


def test_restarted_primary_not_primary() -> None:
    """A restarted primary has lost its epoch state, so it rejects writes with NOT_PRIMARY until a new epoch."""
    node = restarted(1, OLD, entries(1, 2), commit=2)

    effects = node.handle_write(Write(1, LEADER, 1, entries(3, 3)))

    assert [send.message.reason for send in sent(effects, WriteReject)] == [RejectReason.NOT_PRIMARY]


def test_epoch_installed_event() -> None:
    """Installing an epoch persists the configuration and logs an epoch_installed event."""
    node = make_store(2)

    effects = node.handle_new_epoch(NewEpoch(1, LEADER, CONFIG))

    names = [effect.name for effect in effects if isinstance(effect, Event)]
    assert names == ["epoch_installed"]
    assert node.persisted_state()["config"]["epoch"] == 1


def test_epoch_sync_sends_commit_to_joiner() -> None:
    """A backup that joins with a lagging commit index learns the primary's once the epoch is ready."""
    log = entries(1, 5)
    primary = restarted(1, CONFIG, log, commit=5)
    joiner = restarted(2, CONFIG, log[:3], commit=3, synced_epoch=0)
    config = StoreConfig(epoch=2, term=2, primary=1, backups=(2,), joining=(2,))

    effects = deliver({1: primary, 2: joiner}, primary.handle_new_epoch(NewEpoch(2, LEADER, config)))

    assert joiner.commit == 5
    assert [entry.seq for effect in effects if isinstance(effect, CommitLog) for entry in effect.entries] == [4, 5]
