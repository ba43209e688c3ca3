"""Messages exchanged by sync nodes, store nodes and clients.

Every message is a frozen, slotted dataclass with typed fields, so the wire
codec in `cluster.wire` can check each field when it decodes a frame. The
protocol core builds and reads these objects; it never encodes them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# The largest message text, in UTF-8 bytes. The CLI rejects longer input lines
# before anything is sent, and the codec rejects longer texts on the wire.
MAX_TEXT_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class Entry:
    """One client message placed in the log at position `seq` (1-based)."""

    seq: int
    term: int  # term of the leader that assigned `seq`
    lamport: int  # Lamport timestamp stamped by that leader
    client_id: int
    request_id: int
    text: str

    def same_slot(self, other: Entry) -> bool:
        """Return True when both entries were assigned by one leader to one position."""
        return self.seq == other.seq and self.term == other.term


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """A store configuration: which node is primary and which are backups.

    Configurations are ordered by `(term, epoch)`, as Raft orders log entries
    by (term, index): a configuration chosen by a later leader supersedes one
    that an earlier leader proposed but never committed.
    """

    epoch: int
    term: int  # term of the sync leader that chose this configuration
    primary: int
    backups: tuple[int, ...]
    # Backups added in or after this configuration that have not yet been shown
    # to hold every committed entry; they cannot be chosen as primary.
    joining: tuple[int, ...] = ()

    @property
    def members(self) -> tuple[int, ...]:
        return (self.primary, *self.backups)

    @property
    def key(self) -> tuple[int, int]:
        return (self.term, self.epoch)


def initial_config(store_count: int) -> StoreConfig:
    """Return epoch 0, which every node starts from: node 1 primary, the rest backups."""
    return StoreConfig(epoch=0, term=0, primary=1, backups=tuple(range(2, store_count + 1)))


@dataclass(frozen=True, slots=True)
class ClientMark:
    """A recent request of one client found in the log, for the exactly-once table."""

    client_id: int
    request_id: int
    seq: int
    term: int
    lamport: int


# --- Sync node to sync node: election and configuration ----------------------


@dataclass(frozen=True, slots=True)
class PreVote:
    """Ask whether peers would vote for `candidate` in `term`, without starting it.

    A node that only lost contact with a working leader (a slow process, a
    one-way cut) gets no majority here, so it never raises the term and never
    deposes that leader (Raft thesis, section 9.6).
    """

    term: int  # the term the candidate would stand in
    candidate: int
    config: StoreConfig


@dataclass(frozen=True, slots=True)
class PreVoteReply:
    term: int  # the term of the PreVote being answered
    voter: int
    granted: bool


@dataclass(frozen=True, slots=True)
class RequestVote:
    term: int
    candidate: int
    config: StoreConfig


@dataclass(frozen=True, slots=True)
class VoteReply:
    term: int
    voter: int
    granted: bool
    config: StoreConfig  # the voter's latest configuration, adopted by the new leader


@dataclass(frozen=True, slots=True)
class Heartbeat:
    term: int
    leader: int
    config: StoreConfig


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    term: int
    follower: int
    success: bool
    config_term: int  # key of the configuration the follower has stored
    config_epoch: int


# --- Sync leader to store nodes ------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewEpoch:
    """Install `config` on a store node (sent once a sync majority stored it)."""

    term: int
    leader: int
    config: StoreConfig


@dataclass(frozen=True, slots=True)
class Write:
    """W2: the leader forwards ordered entries to the primary."""

    term: int
    leader: int
    epoch: int
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class StorePing:
    """Failure detector probe; the answer also tells the leader each log length.

    `config` is the configuration installed on the store (None while the leader
    is still installing its own), so a node outside it knows whom to catch up from.
    """

    term: int
    leader: int
    config: StoreConfig | None


@dataclass(frozen=True, slots=True)
class FetchEntries:
    """Ask the primary for committed entries `[first_seq, last_seq]` for output.txt."""

    term: int
    leader: int
    first_seq: int
    last_seq: int


# --- Store nodes to the sync leader ---------------------------------------------


@dataclass(frozen=True, slots=True)
class EpochReady:
    """The primary synced every backup of `epoch`; the whole log is committed."""

    term: int
    epoch: int
    primary: int
    last_seq: int
    last_lamport: int
    clients: tuple[ClientMark, ...]  # each client's most recent requests in the log


@dataclass(frozen=True, slots=True)
class WriteAck:
    """W5: every member of `epoch` holds the log up to `commit`."""

    term: int
    epoch: int
    commit: int


class RejectReason(enum.Enum):
    STALE_EPOCH = "stale_epoch"
    GAP = "gap"
    CONFLICT = "conflict"
    NOT_PRIMARY = "not_primary"


@dataclass(frozen=True, slots=True)
class WriteReject:
    term: int
    epoch: int  # the store node's own epoch
    node: int
    reason: RejectReason
    expected_seq: int  # the next position the node can accept


@dataclass(frozen=True, slots=True)
class StoreStatus:
    node: int
    epoch: int
    log_len: int
    commit: int
    caught_up: bool  # a node outside the configuration has fetched the committed log
    synced_epoch: int  # the last epoch in which this node's log was made equal to the primary's


@dataclass(frozen=True, slots=True)
class FetchReply:
    term: int
    entries: tuple[Entry, ...]


# --- Store node to store node ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class EpochSync:
    """Primary to backup after NewEpoch: truncate after `base_seq`, take `entries`."""

    term: int
    leader: int
    config: StoreConfig
    base_seq: int
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class EpochSyncReply:
    epoch: int
    node: int
    success: bool
    match: int  # on success, the backup's log length; otherwise its commit index


@dataclass(frozen=True, slots=True)
class Replicate:
    """W3: the primary forwards entries that follow position `prev_seq`."""

    epoch: int
    primary: int
    prev_seq: int
    entries: tuple[Entry, ...]
    commit: int


@dataclass(frozen=True, slots=True)
class ReplicateReply:
    """W4: the backup holds the log up to `match` on disk (or reports a gap)."""

    epoch: int
    node: int
    success: bool
    match: int


@dataclass(frozen=True, slots=True)
class Commit:
    """The primary tells a backup how far the log is committed."""

    epoch: int
    commit: int


@dataclass(frozen=True, slots=True)
class CatchUp:
    """A node outside the configuration asks the primary for committed entries."""

    node: int
    epoch: int
    first_seq: int


@dataclass(frozen=True, slots=True)
class CatchUpReply:
    epoch: int
    first_seq: int
    entries: tuple[Entry, ...]
    commit: int  # the primary's commit index when it answered


# --- Clients and sync nodes ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """W1: a client message with the client's Lamport timestamp."""

    client_id: int
    request_id: int
    lamport: int
    text: str


class ReplyStatus(enum.Enum):
    OK = "ok"  # committed and in output.txt
    REDIRECT = "redirect"  # ask `leader` instead
    RETRY = "retry"  # no leader or no store configuration yet, or overloaded
    OUT_OF_ORDER = "out_of_order"  # resend from `expected_request_id`


@dataclass(frozen=True, slots=True)
class ClientReply:
    status: ReplyStatus
    client_id: int
    request_id: int
    seq: int
    term: int
    lamport: int
    leader: int  # leader hint, 0 when unknown
    expected_request_id: int


@dataclass(frozen=True, slots=True)
class StatusRequest:
    pass


@dataclass(frozen=True, slots=True)
class StatusReply:
    """A node's view of itself, for `cluster status` and health checks."""

    role: str
    node: int
    term: int
    leader: int
    epoch: int
    primary: int
    commit: int
    log_len: int


# Every message type by name, for the wire codec.
MESSAGE_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        PreVote,
        PreVoteReply,
        RequestVote,
        VoteReply,
        Heartbeat,
        HeartbeatReply,
        NewEpoch,
        Write,
        StorePing,
        FetchEntries,
        EpochReady,
        WriteAck,
        WriteReject,
        StoreStatus,
        FetchReply,
        EpochSync,
        EpochSyncReply,
        Replicate,
        ReplicateReply,
        Commit,
        CatchUp,
        CatchUpReply,
        ClientRequest,
        ClientReply,
        StatusRequest,
        StatusReply,
    )
}

SyncMessage = PreVote | PreVoteReply | RequestVote | VoteReply | Heartbeat | HeartbeatReply
StoreToLeader = EpochReady | WriteAck | WriteReject | StoreStatus | FetchReply
LeaderToStore = NewEpoch | Write | StorePing | FetchEntries
StorePeerMessage = (
    EpochSync | EpochSyncReply | Replicate | ReplicateReply | Commit | CatchUp | CatchUpReply
)
