"""Load a diagram from the data directory of `cluster run`.

The node event logs (`events_sync_<id>.jsonl`, `events_store_<id>.jsonl`)
and the client logs (`client_<id>.jsonl`) record elections, votes, epochs,
commits, starts and stops.

A run started with `cluster run --trace-messages` (or nodes started with
TRACE_MESSAGES=1) also logs each message between sync and store nodes: a
`send` event (`to`, `type`, `conn`, `link`) on the sender and a `recv` event
(`from`, `type`, `conn`, `link`) on the receiver. `conn` names one TCP
connection by the nonce its connecting node sent in the handshake, so both
ends log the same value, and `link` is the DATA sequence number of the frame
on that connection (1, 2, 3, ...). Frames on one connection arrive in order
and none is lost or repeated within it, so the pairing rule is: a `send` on
node S with `to` R and a `recv` on node R with `from` S are one message when
their `conn` and `link` are equal. A reconnect gets a new nonce and restarts
`link` at 1 on both ends, and a restarted node cannot reuse an old pair. Each
pair is drawn as a solid arrow labelled with the message type. A `send` with
`dropped: true` (the link was down) or with no matching `recv` (the receiver
was killed, the connection closed, or the run ended first) is drawn with no
receive end. A `recv` whose `send` is missing (a killed sender loses its last
unflushed lines) is skipped and counted in a note.

Without such records, the arrows are inferred from the other records, and
marked as such:

- `vote_granted` on a voter: a VoteReply from the voter to the candidate;
- `became_follower` with a leader: a Heartbeat from that leader;
- `epoch_installed` on a store node: a NewEpoch from the leader of its term;
- `epoch_ready` on a leader: an EpochReady from the primary;
- `acked` on a client: a ClientReply from the leader of its term.

A node that logs `started` again without a `stopped` record in between was
killed: its crash is drawn at its last record before the restart. The
SIGKILL itself leaves no record, so that time is a lower bound.

A line that is not a record is skipped. The diagram is for looking at a run,
often a broken one, so the rest of the run is still drawn. A cut last line
is what a killed node leaves, and `cluster verify` accepts it too, so it is
only counted in a note. Any other invalid line is a corrupt file: it is
named, with its line number, in a warning that `cluster diagram` prints
(`Diagram.warnings`) and in a note.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.diagram.model import Diagram, Lane, Mark, Message
from cluster.diagram.node_events import CLIENT_EVENTS, mark_for_event
from cluster.i18n import _

_LOG_NAME = re.compile(r"^(?:events_(sync|store)|(client))_(\d+)\.jsonl$")
# Per-message events that nodes write with --trace-messages; they become arrows, never marks.
_TRACE_EVENTS = frozenset({"send", "recv"})


class SourceError(ValueError):
    """A diagram source is missing or has content this loader cannot read."""


@dataclass(frozen=True, slots=True)
class _InvalidLine:
    path: Path
    number: int  # 1-based
    reason: str


@dataclass(frozen=True, slots=True)
class _Record:
    lane: Lane
    time: float
    event: str
    fields: dict[str, Any]




def load_run_directory(path: Path) -> Diagram:
    """Read every event and client log in `path` into a diagram; raise SourceError when there is none."""
    records, log_lanes, cut_last_lines, invalid = _read_records(path)
    if not records:
        if invalid:
            first = invalid[0]
            raise SourceError(_("{path}:{line}: {reason}; no log in {directory} has a valid record").format(
                path=first.path, line=first.number, reason=first.reason, directory=path))
        raise SourceError(_("{path} has no events_*.jsonl or client_*.jsonl logs; "
                            "pass the --data-dir of a cluster run").format(path=path))
    origin = min(record.time for record in records)
    records = [_Record(r.lane, r.time - origin, r.event, r.fields) for r in records]
    records.sort(key=lambda r: (r.time, r.lane.sort_key, r.event))

    # Every log gets a lane, also one whose lines are all invalid, so that no node goes missing.
    lanes = sorted(log_lanes, key=lambda lane: lane.sort_key)
    diagram = Diagram(source=str(path), time_unit="s", lanes=lanes)
    _add_marks(diagram, records)
    _add_starts(diagram, records)
    if any(record.event in _TRACE_EVENTS for record in records):
        _add_traced_messages(diagram, records)
        _add_inferred_messages(diagram, records, only_events=frozenset({"acked"}))
        diagram.notes.append(_("Arrows between sync and store nodes are the messages logged with "
                               "--trace-messages. Arrows to clients are inferred from their acknowledgements."))
    else:
        _add_inferred_messages(diagram, records)
        diagram.notes.append(_("Arrows are inferred from the event logs, which record elections, votes, "
                               "epochs and acknowledgements but not each message. "
                               "Run with --trace-messages to draw one arrow per message."))
    if cut_last_lines:
        diagram.notes.append(_("{count} unreadable log lines were skipped (partial lines left by killed nodes).")
                             .format(count=cut_last_lines))
    if invalid:
        _report_invalid_lines(diagram, invalid)
    diagram.sort()
    return diagram


# Invalid lines that the warnings name one by one. One more warning counts the rest.
_MAX_NAMED_LINES = 10


def _report_invalid_lines(diagram: Diagram, invalid: list[_InvalidLine]) -> None:
    for line in invalid[:_MAX_NAMED_LINES]:
        diagram.warnings.append(_("{path}:{line}: {reason}; skipped this line").format(
            path=line.path, line=line.number, reason=line.reason))
    if len(invalid) > _MAX_NAMED_LINES:
        diagram.warnings.append(_("... and {count} more invalid log lines, also skipped").format(
            count=len(invalid) - _MAX_NAMED_LINES))
    first = invalid[0]
    diagram.notes.append(_("{count} invalid log lines were skipped, the first at {path}:{line}; the diagram may "
                           "miss their events.").format(count=len(invalid), path=first.path.name,
                                                        line=first.number))


def _read_records(path: Path) -> tuple[list[_Record], set[Lane], int, list[_InvalidLine]]:
    """Read every log in `path`.

    Return the valid records, a lane per log file, the number of cut last
    lines skipped, and the other invalid lines, which were skipped as well.
    """
    records: list[_Record] = []
    lanes: set[Lane] = set()
    cut_last_lines = 0
    invalid: list[_InvalidLine] = []
    for file in sorted(path.iterdir()):
        match = _LOG_NAME.match(file.name)
        if match is None:
            continue
        role = match.group(1) or match.group(2)
        lane = Lane(role, int(match.group(3)))
        lanes.add(lane)
        lines = file.read_text(encoding="utf-8").split("\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except (RecursionError, ValueError):
                if number == len(lines):
                    cut_last_lines += 1  # a node killed while writing; its file has no newline at the end
                else:
                    invalid.append(_InvalidLine(file, number, _("line is not valid JSON")))
                continue
            reason = _record_problem(data)
            if reason is not None:
                invalid.append(_InvalidLine(file, number, reason))
                continue
            fields = {key: value for key, value in data.items() if key not in ("time", "node", "event")}
            records.append(_Record(lane, float(data["time"]), str(data["event"]), fields))
    return records, lanes, cut_last_lines, invalid


def _record_problem(data: Any) -> str | None:
    """Return why `data` is not a log record, or None when it is one."""
    if not isinstance(data, dict):
        return _("line is not a JSON object")
    time = data.get("time")
    # JSON true loads as bool, a subclass of int, and Python's json module reads NaN and Infinity.
    if not isinstance(time, int | float) or isinstance(time, bool) or not math.isfinite(time):
        return _("record has no valid \"time\" (a number of seconds), found {time!r}").format(time=time)
    if "event" not in data:
        return _("record has no \"event\"")
    return None


# --- Marks ------------------------------------------------------------------------------


def _add_marks(diagram: Diagram, records: list[_Record]) -> None:
    for record in records:
        if record.event == "started" or record.event in _TRACE_EVENTS:
            continue  # starts are drawn by _add_starts, sends and receives by _add_traced_messages
        if record.lane.role == "client" and record.event in CLIENT_EVENTS:
            continue  # client records become arrows or nothing
        mark = mark_for_event(record.lane, record.time, record.event, record.fields)
        if mark is not None:
            diagram.marks.append(mark)


def _add_starts(diagram: Diagram, records: list[_Record]) -> None:
    """Mark each start, and a crash before a `started` record that follows no `stopped` record."""
    last_time: dict[Lane, float] = {}
    running: dict[Lane, bool] = {}
    for record in records:
        if record.event == "started" and running.get(record.lane):
            diagram.marks.append(Mark(record.lane, last_time[record.lane], "crash", "crash",
                                      _("killed: restarted with no stop record after this time")))
        if record.event == "started":
            kind = "restart" if record.lane in last_time else "other"
            diagram.marks.append(Mark(record.lane, record.time, kind, "start", "started"))
            running[record.lane] = True
        elif record.event == "stopped":
            running[record.lane] = False
        last_time[record.lane] = record.time


# --- Traced messages ----------------------------------------------------------------------


def _add_traced_messages(diagram: Diagram, records: list[_Record]) -> None:
    """Pair `send` and `recv` records by sender, receiver, connection and sequence number; draw each message."""
    received: dict[tuple[Lane, Lane, str, int], float] = {}
    for record in records:
        if record.event != "recv":
            continue
        key = _trace_key(record, "from", source_is_peer=True)
        if key is not None:
            received.setdefault(key, record.time)

    paired: set[tuple[Lane, Lane, str, int]] = set()
    for record in records:
        if record.event != "send":
            continue
        message = _traced_message(record, received, paired)
        if message is not None:
            diagram.messages.append(message)

    unmatched = len(received.keys() - paired)
    if unmatched:
        diagram.notes.append(_("{count} received messages have no send record and are not drawn "
                               "(a killed node loses its last unflushed log lines).").format(count=unmatched))


def _traced_message(
    record: _Record, received: dict[tuple[Lane, Lane, str, int], float], paired: set[tuple[Lane, Lane, str, int]]
) -> Message | None:
    target = _parse_lane(record.fields.get("to"))
    if target is None:
        return None
    kind = str(record.fields.get("type", "?"))
    if record.fields.get("dropped"):
        return Message(record.lane, target, record.time, None, kind, kind,
                       _("{type}: dropped, the link was down").format(type=kind), fate="dropped")

    key = _trace_key(record, "to", source_is_peer=False)
    if key is None:
        return None
    conn, link = key[2], key[3]
    detail = _("{type} on connection {conn}, frame {link}").format(type=kind, conn=conn, link=link)
    receive = received.get(key)
    if receive is None:
        return Message(record.lane, target, record.time, None, kind, kind, detail, fate="lost")
    paired.add(key)
    return Message(record.lane, target, record.time, max(receive, record.time), kind, kind, detail)


def _trace_key(record: _Record, peer_field: str, source_is_peer: bool) -> tuple[Lane, Lane, str, int] | None:
    """Return (sender, receiver, conn, link) of a `send` or `recv` record, or None when a field is missing."""
    peer = _parse_lane(record.fields.get(peer_field))
    conn = record.fields.get("conn")
    link = record.fields.get("link")
    if peer is None or not isinstance(conn, str) or not isinstance(link, int):
        return None
    if source_is_peer:
        return peer, record.lane, conn, link
    return record.lane, peer, conn, link


def _parse_lane(value: Any) -> Lane | None:
    """Parse a node name such as "sync 2"; return None for anything else."""
    if not isinstance(value, str):
        return None
    role, _space, node = value.partition(" ")
    if role not in ("sync", "store") or not node.isdigit():
        return None
    return Lane(role, int(node))


# --- Inferred messages --------------------------------------------------------------------


def _add_inferred_messages(
    diagram: Diagram, records: list[_Record], only_events: frozenset[str] | None = None
) -> None:
    """Add the arrows inferred from event records; with `only_events`, only those drawn for these events."""
    leaders: dict[int, tuple[int, float]] = {}  # term -> (sync node, time it became leader)
    installing: dict[tuple[int, int], float] = {}  # (leader node, epoch) -> time
    installed: dict[tuple[int, int], float] = {}  # (store node, epoch) -> time
    for record in records:
        if record.event == "became_leader" and "term" in record.fields:
            leaders.setdefault(int(record.fields["term"]), (record.lane.node, record.time))
        elif record.event == "epoch_installing":
            installing.setdefault((record.lane.node, int(record.fields.get("epoch", 0))), record.time)
        elif record.event == "epoch_installed":
            installed.setdefault((record.lane.node, int(record.fields.get("epoch", 0))), record.time)

    for record in records:
        if only_events is not None and record.event not in only_events:
            continue
        message = _message_for(record, leaders, installing, installed)
        if message is not None:
            diagram.messages.append(message)


def _message_for(
    record: _Record,
    leaders: dict[int, tuple[int, float]],
    installing: dict[tuple[int, int], float],
    installed: dict[tuple[int, int], float],
) -> Message | None:
    fields = record.fields
    lane = record.lane
    time = record.time
    try:
        if record.event == "vote_granted":
            term = int(fields["term"])
            candidate = int(fields["candidate"])
            elected = leaders.get(term)
            receive = elected[1] if elected and elected[0] == candidate and elected[1] >= time else time
            return _inferred(lane, Lane("sync", candidate), time, receive, "VoteReply", f"VoteReply t{term}")
        if record.event == "became_follower" and fields.get("leader"):
            term = int(fields["term"])
            leader = int(fields["leader"])
            elected = leaders.get(term)
            send = elected[1] if elected and elected[0] == leader and elected[1] <= time else time
            return _inferred(Lane("sync", leader), lane, send, time, "Heartbeat", f"Heartbeat t{term}")
        if record.event == "epoch_installed":
            term = int(fields["leader_term"])
            epoch = int(fields["epoch"])
            elected = leaders.get(term)
            if elected is None:
                return None
            started = installing.get((elected[0], epoch), time)
            return _inferred(Lane("sync", elected[0]), lane, min(started, time), time, "NewEpoch",
                             f"NewEpoch e{epoch}")
        if record.event == "epoch_ready":
            epoch = int(fields["epoch"])
            primary = int(fields["primary"])
            started = installed.get((primary, epoch), time)
            return _inferred(Lane("store", primary), lane, min(started, time), time, "EpochReady",
                             f"EpochReady e{epoch}")
        if record.event == "acked":
            term = int(fields["term"])
            elected = leaders.get(term)
            if elected is None:
                return None
            seq = int(fields["seq"])
            return _inferred(Lane("sync", elected[0]), lane, time, time, "ClientReply", f"ClientReply #{seq}")
    except (KeyError, TypeError, ValueError):
        return None  # a record without the fields this arrow needs is drawn as a mark only
    return None


def _inferred(source: Lane, target: Lane, send: float, receive: float, kind: str, label: str) -> Message:
    return Message(source, target, send, receive, kind, label, label, inferred=True)
