"""Plain-words reports: a schedule step by step, and what the nodes did at each step."""

from __future__ import annotations

from typing import Any

from cluster.core.effects import AppendOutput, Event
from cluster.core.messages import (
    CatchUp,
    CatchUpReply,
    ClientReply,
    ClientRequest,
    Commit,
    EpochReady,
    EpochSync,
    EpochSyncReply,
    FetchEntries,
    FetchReply,
    Heartbeat,
    HeartbeatReply,
    NewEpoch,
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
from cluster.i18n import _
from cluster.sim.events import SimEvent, applicable, apply_event, format_address
from cluster.sim.runner import Runner
from cluster.sim.scheduler import RunResult
from cluster.sim.world import World

# Node events worth a line under the step that caused them.
NOTABLE_EVENTS = frozenset({
    "became_candidate", "became_leader", "became_follower", "vote_granted", "lost_quorum",
    "config_proposed", "epoch_installing", "epoch_installed", "epoch_ready", "store_failed",
    "caught_up", "commit", "acked", "refused_truncate",
})


def describe_message(message: Any) -> str:
    """Name a message and its key fields, e.g. "RequestVote (term 4)"."""
    name = type(message).__name__
    detail = _message_detail(message)
    return f"{name} ({detail})" if detail else name


def _message_detail(message: Any) -> str:
    if isinstance(message, RequestVote | Heartbeat):
        return f"term {message.term}, epoch {message.config.epoch}"
    if isinstance(message, VoteReply):
        return f"term {message.term}, {'granted' if message.granted else 'denied'}"
    if isinstance(message, HeartbeatReply):
        return f"term {message.term}, config epoch {message.config_epoch}"
    if isinstance(message, NewEpoch):
        config = message.config
        return f"term {message.term}, epoch {config.epoch}, primary {config.primary}, backups {list(config.backups)}"
    if isinstance(message, Write):
        return f"term {message.term}, epoch {message.epoch}, {_seqs(message.entries)}"
    if isinstance(message, Replicate):
        return f"epoch {message.epoch}, {_seqs(message.entries)}, commit {message.commit}"
    if isinstance(message, EpochSync):
        return f"epoch {message.config.epoch}, keep {message.base_seq}, {_seqs(message.entries)}"
    if isinstance(message, ReplicateReply | EpochSyncReply):
        return f"epoch {message.epoch}, {'ok' if message.success else 'failed'}, match {message.match}"
    if isinstance(message, WriteAck):
        return f"term {message.term}, epoch {message.epoch}, commit {message.commit}"
    if isinstance(message, EpochReady):
        return f"term {message.term}, epoch {message.epoch}, log length {message.last_seq}"
    if isinstance(message, WriteReject):
        return f"epoch {message.epoch}, {message.reason.value}"
    if isinstance(message, Commit):
        return f"epoch {message.epoch}, commit {message.commit}"
    if isinstance(message, StorePing):
        return f"term {message.term}"
    if isinstance(message, StoreStatus):
        return f"epoch {message.epoch}, log length {message.log_len}"
    if isinstance(message, FetchEntries):
        return f"term {message.term}, seq {message.first_seq}-{message.last_seq}"
    if isinstance(message, FetchReply):
        return f"term {message.term}, {_seqs(message.entries)}"
    if isinstance(message, CatchUp):
        return f"epoch {message.epoch}, from seq {message.first_seq}"
    if isinstance(message, CatchUpReply):
        return f"epoch {message.epoch}, {_seqs(message.entries)}"
    if isinstance(message, ClientRequest):
        return f"client {message.client_id} request {message.request_id}, lamport {message.lamport}"
    if isinstance(message, ClientReply):
        return f"{message.status.value}, request {message.request_id}, seq {message.seq}"
    return ""


def _seqs(entries: Any) -> str:
    if not entries:
        return "no entries"
    first, last = entries[0].seq, entries[-1].seq
    return f"seq {first}" if first == last else f"seq {first}-{last}"


def describe_event(world: World, event: SimEvent) -> str:
    """Describe `event` in words, from the state of `world` just before it happens."""
    op = event.op
    if op in ("deliver", "drop", "duplicate"):
        assert event.source is not None and event.target is not None
        packet = world.find_packet(event.source, event.target, event.seq)
        message = describe_message(packet.message) if packet else f"message {event.seq}"
        text = f"{op} {message} from {format_address(event.source)} to {format_address(event.target)}"
        if op == "deliver" and packet is not None and _overtakes(world, packet.source, packet.target, packet.seq):
            text += ", out of order"
        return text
    if op == "output":
        assert event.node is not None
        pending = world.find_output(event.node[1], event.seq)
        if pending is None:
            return f"complete output operation {event.seq} of {format_address(event.node)}"
        effect = pending.effect
        if isinstance(effect, AppendOutput):
            return (f"complete the output.txt append of {format_address(event.node)} "
                    f"(term {effect.term}, {_seqs(effect.entries)})")
        return f"complete the output fence of {format_address(event.node)} (term {effect.term})"
    if op == "partition":
        group = ", ".join(format_address(address) for address in event.group)
        return f"partition {{{group}}} from the other nodes"
    if op == "heal":
        return "heal the partition"
    if op == "tick_all":
        return "tick every node"
    assert event.node is not None
    return f"{op} {format_address(event.node)}"


def _overtakes(world: World, source: Any, target: Any, seq: int) -> bool:
    return any(packet.source == source and packet.target == target and packet.seq < seq for packet in world.network)


def describe_node_event(address: tuple[str, int], event: Event) -> str:
    fields = ", ".join(f"{key} {value}" for key, value in event.fields.items() if key != "text")
    return f"{format_address(address)}: {event.name.replace('_', ' ')} ({fields})"


def narrate(result: RunResult, notes: bool = True) -> list[str]:
    """Replay `result` and return one numbered line per step, with what the nodes did under it."""
    # NOTE: these step lines (and describe_event's) stay English, like the node logs.
    runner = Runner(result.config, result.seed)
    world = runner.world
    world.keep_events = True
    lines: list[str] = []
    width = len(str(len(result.events)))
    for number, event in enumerate(result.events, start=1):
        if result.recovery_start is not None and number - 1 == result.recovery_start:
            lines.append("-- faults over: fair liveness rounds from here --")
        if not applicable(world, event):
            lines.append(f"{number:>{width}}. (cannot happen: {event.to_json()})")
            continue
        lines.append(f"{number:>{width}}. {describe_event(world, event)}")
        seen = len(world.events)
        apply_event(world, event)
        if notes:
            for address, node_event in world.events[seen:]:
                if node_event.name in NOTABLE_EVENTS:
                    lines.append(f"{'':>{width}}    {describe_node_event(address, node_event)}")
    return lines


def format_violation(result: RunResult) -> list[str]:
    violation = result.violation
    if violation is None:
        return [_("no violation")]
    lines = [_("{name} violated after step {step}:").format(name=violation.name, step=violation.step)]
    lines += [f"  {detail}" for detail in violation.details]
    return lines
