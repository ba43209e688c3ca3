"""Effects: what a protocol node asks its driver to do after handling an event.

A handler returns a list of effects in the order it decided them. The driver
(a node process, the simulator or a test) must make every `PersistState` and
`AppendLog` durable before any `Send` or `Reply` that follows it, because a
message may promise that the state is on disk. Two kinds of effect are exempt:

- a `Send` marked `eager` promises nothing about the sender's disk, so the
  driver may send it before the durable writes that precede it finish (the
  primary forwards entries to its backups while it writes them itself);
- a `CommitLog` extends the backup file, a copy of a prefix that the
  write-ahead log already holds, so the driver may write it after the
  messages that follow it.

The output-file effects are carried out by the driver, which reports the
result back to the node with `SyncNode.handle_fence_result` and
`SyncNode.handle_output_result`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from cluster.core.messages import Entry

Role = Literal["sync", "store"]


@dataclass(frozen=True, slots=True)
class Send:
    """Send `message` to node `node` of kind `role` over the cluster network.

    `eager` lets the driver send it before the durable writes that precede it
    in the same batch of effects are on disk. It is a hint about timing, not
    part of the message, so it takes no part in comparisons.
    """

    role: Role
    node: int
    message: Any
    eager: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer the client connection `conn` (an id chosen by the driver)."""

    conn: int
    message: Any


@dataclass(frozen=True, slots=True)
class PersistState:
    """Write the node's small durable state (term, vote, epoch, configuration) and fsync."""

    state: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AppendLog:
    """Store node: truncate the write-ahead log to `keep` entries, append `entries`, fsync."""

    keep: int
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class CommitLog:
    """Store node: append newly committed `entries` to its backup file.

    The entries are already durable in the write-ahead log, and a node that
    restarts with a shorter backup file learns the commit index again from
    its primary, so this write need not precede the messages that follow it,
    and its fsync may come later.
    """

    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class FenceOutput:
    """Sync leader: raise the output fence to `term` (see `cluster.core.output`)."""

    term: int


@dataclass(frozen=True, slots=True)
class AppendOutput:
    """Sync leader: append committed `entries` to output.txt if `term` still holds the fence."""

    term: int
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class Event:
    """One line for the node's event log (elections, votes, epochs, commits)."""

    name: str
    fields: dict[str, Any]


Effect = Send | Reply | PersistState | AppendLog | CommitLog | FenceOutput | AppendOutput | Event
