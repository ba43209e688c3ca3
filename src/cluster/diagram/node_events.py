"""Turn the protocol events a node records (`Event` effects of the core) into diagram marks.

The node processes write these events to `events_<role>_<id>.jsonl`, and the
simulator keeps them in memory, so both loaders share this table.
"""

from __future__ import annotations

from typing import Any

from cluster.diagram.model import Lane, Mark

# Event name -> (mark kind, label template over the event's fields).
EVENT_MARKS: dict[str, tuple[str, str]] = {
    "became_candidate": ("election", "candidate t{term}"),
    "became_leader": ("leader", "leader t{term}"),
    "became_follower": ("term", "follower t{term}"),
    "lost_quorum": ("term", "lost quorum t{term}"),
    "vote_granted": ("vote", "vote {candidate} t{term}"),
    "config_proposed": ("epoch", "propose e{epoch}"),
    "epoch_installing": ("epoch", "install e{epoch}"),
    "epoch_ready": ("epoch", "ready e{epoch}"),
    "epoch_installed": ("epoch", "e{epoch} {role}"),
    "store_failed": ("epoch", "failed {failed}"),
    "caught_up": ("epoch", "caught up {commit}"),
    "refused_truncate": ("other", "refused truncate"),
    "commit": ("commit", "seq {first_seq}-{last_seq}"),
    "stopped": ("stop", "stop"),
}

# Events of a client session; the loaders draw `acked` as an arrow and skip the others.
CLIENT_EVENTS = frozenset({"started", "sent", "acked", "finished"})


def mark_for_event(lane: Lane, time: float, event: str, fields: dict[str, Any]) -> Mark | None:
    """Return the mark for one recorded event, or None for a client event."""
    if lane.role == "client" and event in CLIENT_EVENTS:
        return None
    detail = " ".join([event, *(f"{key}={short_value(fields[key])}" for key in sorted(fields))])
    if event not in EVENT_MARKS:
        return Mark(lane, time, "other", event, detail)
    kind, template = EVENT_MARKS[event]
    try:
        label = template.format(**{key: short_value(value) for key, value in fields.items()})
    except (KeyError, IndexError):
        label = event
    return Mark(lane, time, kind, label, detail)


def short_value(value: Any) -> str:
    """Format a field value compactly: lists as comma-separated items."""
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)
