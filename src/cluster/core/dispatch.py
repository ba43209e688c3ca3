"""Route a decoded message to the handler of a sync or store node.

The node processes and the simulator both call these, so a message reaches
the same handler however it travelled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cluster.core.effects import Effect
from cluster.core.messages import (
    CatchUp,
    CatchUpReply,
    Commit,
    EpochReady,
    EpochSync,
    EpochSyncReply,
    FetchEntries,
    FetchReply,
    Heartbeat,
    HeartbeatReply,
    NewEpoch,
    PreVote,
    PreVoteReply,
    Replicate,
    ReplicateReply,
    RequestVote,
    StorePing,
    StoreStatus,
    VoteReply,
    Write,
    WriteAck,
    WriteReject,
)
from cluster.core.store_node import StoreNode
from cluster.core.sync_node import SyncNode


class UnexpectedMessage(Exception):
    """A peer sent a message type that this kind of node does not accept."""


_SYNC_HANDLERS: dict[type, Callable[[SyncNode, Any], list[Effect]]] = {
    PreVote: SyncNode.handle_pre_vote,
    PreVoteReply: SyncNode.handle_pre_vote_reply,
    RequestVote: SyncNode.handle_request_vote,
    VoteReply: SyncNode.handle_vote_reply,
    Heartbeat: SyncNode.handle_heartbeat,
    HeartbeatReply: SyncNode.handle_heartbeat_reply,
    EpochReady: SyncNode.handle_epoch_ready,
    WriteAck: SyncNode.handle_write_ack,
    WriteReject: SyncNode.handle_write_reject,
    StoreStatus: SyncNode.handle_store_status,
    FetchReply: SyncNode.handle_fetch_reply,
}

_STORE_HANDLERS: dict[type, Callable[[StoreNode, Any], list[Effect]]] = {
    NewEpoch: StoreNode.handle_new_epoch,
    Write: StoreNode.handle_write,
    StorePing: StoreNode.handle_store_ping,
    FetchEntries: StoreNode.handle_fetch_entries,
    EpochSync: StoreNode.handle_epoch_sync,
    EpochSyncReply: StoreNode.handle_epoch_sync_reply,
    Replicate: StoreNode.handle_replicate,
    ReplicateReply: StoreNode.handle_replicate_reply,
    Commit: StoreNode.handle_commit,
    CatchUp: StoreNode.handle_catch_up,
    CatchUpReply: StoreNode.handle_catch_up_reply,
}


def dispatch_sync(node: SyncNode, message: Any) -> list[Effect]:
    """Hand a peer or store message to the sync node's handler for its type."""
    handler = _SYNC_HANDLERS.get(type(message))
    if handler is None:
        raise UnexpectedMessage(f"a sync node does not accept {type(message).__name__} on its cluster port")
    return handler(node, message)


def dispatch_store(node: StoreNode, message: Any) -> list[Effect]:
    """Hand a peer or leader message to the store node's handler for its type."""
    handler = _STORE_HANDLERS.get(type(message))
    if handler is None:
        raise UnexpectedMessage(f"a store node does not accept {type(message).__name__} on its cluster port")
    return handler(node, message)
