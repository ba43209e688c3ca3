"""The content of a space-time diagram, independent of the source it was loaded from.

A diagram has one lane per node (sync, store, client), arrows for messages
between lanes, marks for events on one lane (elections, term changes,
epochs, commits, crashes) and spans for faults that last a while (pauses,
partitions). Times are floats in the source's own unit: seconds since the
first event for a data directory, step numbers for a simulator trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROLE_ORDER = ("sync", "store", "client")

# Mark kinds, in the order the legend lists them.
MARK_KINDS = (
    "election",  # a node became a candidate
    "leader",  # a node became leader
    "term",  # a node followed a leader in a new term, or stepped down
    "vote",  # a node granted its vote
    "epoch",  # a store configuration was proposed, installed or became ready
    "commit",  # the leader appended committed entries to output.txt
    "crash",  # a node crashed
    "restart",  # a node started again
    "stop",  # a node stopped cleanly
    "violation",  # the simulator found a broken invariant
    "other",
)
SPAN_KINDS = ("pause", "partition")


@dataclass(frozen=True, slots=True, order=True)
class Lane:
    """One node: its role ("sync", "store" or "client") and id."""

    role: str
    node: int

    @property
    def name(self) -> str:
        return f"{self.role} {self.node}"

    @property
    def sort_key(self) -> tuple[int, int]:
        rank = ROLE_ORDER.index(self.role) if self.role in ROLE_ORDER else len(ROLE_ORDER)
        return rank, self.node


@dataclass(frozen=True, slots=True)
class Message:
    """One message from `source` to `target`.

    `receive` is None when the message never arrived: dropped, lost to a
    partition, or still in flight when the run ended (`fate` names which).
    `inferred` marks arrows reconstructed from event records rather than
    recorded per message.
    """

    source: Lane
    target: Lane
    send: float
    receive: float | None
    type: str
    label: str
    detail: str = ""
    fate: str = "delivered"  # "delivered", "dropped", "lost" or "in flight"
    inferred: bool = False

    @property
    def end(self) -> float:
        return self.send if self.receive is None else self.receive


@dataclass(frozen=True, slots=True)
class Mark:
    """An event on one lane at one time."""

    lane: Lane
    time: float
    kind: str
    label: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Span:
    """A fault that lasts from `start` to `end` on a set of lanes."""

    kind: str  # "pause" or "partition"
    lanes: tuple[Lane, ...]
    start: float
    end: float
    label: str


@dataclass(slots=True)
class Diagram:
    """Everything to draw, plus what the renderer needs to describe it."""

    source: str
    time_unit: str  # "s" or "step"
    lanes: list[Lane]
    messages: list[Message] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Messages removed by the arrow cap; the renderer prints this count.
    omitted_messages: int = 0
    # Problems in the source that the loader worked around, such as an invalid
    # log line it skipped; `cluster diagram` prints them on stderr.
    warnings: list[str] = field(default_factory=list)

    def time_range(self) -> tuple[float, float] | None:
        """Return the earliest and latest time of any message, mark or span, or None when there is none."""
        times = [time for message in self.messages for time in (message.send, message.end)]
        times += [mark.time for mark in self.marks]
        times += [time for span in self.spans for time in (span.start, span.end)]
        if not times:
            return None
        return min(times), max(times)

    def message_types(self) -> list[str]:
        return sorted({message.type for message in self.messages})

    def sort(self) -> None:
        """Put lanes, messages, marks and spans in one stable order, for deterministic output."""
        self.lanes.sort(key=lambda lane: lane.sort_key)
        self.messages.sort(key=lambda m: (m.send, m.end, m.source.sort_key, m.target.sort_key, m.type, m.label))
        self.marks.sort(key=lambda m: (m.time, m.lane.sort_key, m.kind, m.label))
        self.spans.sort(key=lambda s: (s.start, s.end, s.kind, [lane.sort_key for lane in s.lanes]))
