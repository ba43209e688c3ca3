"""Safety invariants of the cluster, named as in the TLA+ spec.

Each function takes plain data (logs, files, histories) and returns the list
of violations it found, as sentences; an empty list means the invariant
holds. The simulator calls them on the state of its in-memory cluster after
every step, and `cluster verify` calls them on the files of a data directory,
so a student reads the same rule in the spec, in the simulator's report and
in the verification of a real run. The sentences are translated to the
locale's language, because both commands print them (see `cluster.i18n`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from cluster.core.messages import Entry
from cluster.core.spec_names import invariant
from cluster.i18n import _, ngettext


@dataclass(frozen=True, slots=True)
class Ack:
    """An acknowledgement a client received: its request sits at `seq` (0 when not reported)."""

    client_id: int
    request_id: int
    seq: int


@invariant("ElectionSafetyInv")
def election_safety(leaders: Iterable[tuple[int, int]]) -> list[str]:
    """At most one leader per term: `leaders` holds every (term, node) that ever led."""
    by_term: dict[int, set[int]] = {}
    for term, node in leaders:
        by_term.setdefault(term, set()).add(node)
    return [
        _("term {term} had {count} leaders: sync nodes {nodes}").format(
            term=term, count=len(nodes), nodes=sorted(nodes))
        for term, nodes in sorted(by_term.items())
        if len(nodes) > 1
    ]


@invariant("EpochFencingInv")
def epoch_fencing(
    stale_accepts: Mapping[int, int],
    epoch_history: Mapping[int, Sequence[int]],
    output_writes: Sequence[tuple[int, int]] = (),
) -> list[str]:
    """No store node accepts a write or configuration from an older epoch or term,
    and no leader appends to the output while the fence holds a higher term.

    `stale_accepts` counts, per store node, messages it accepted although they
    carried an older epoch; `epoch_history` lists the epochs each node had
    installed, in order, which must never decrease; `output_writes` holds the
    (writer's term, fence term before the write) of every line appended.
    """
    violations = [
        ngettext("store node {node} accepted {count} message from an older epoch",
                 "store node {node} accepted {count} messages from older epochs", count).format(node=node, count=count)
        for node, count in sorted(stale_accepts.items())
        if count
    ]
    for node, epochs in sorted(epoch_history.items()):
        for before, after in pairwise(epochs):
            if after < before:
                violations.append(_("store node {node} went back from epoch {before} to epoch {after}").format(
                    node=node, before=before, after=after))
                break
    for line, (term, fence) in enumerate(output_writes, start=1):
        if term < fence:
            violations.append(_("output line {line} was appended by term {term} while the fence held term {fence}")
                              .format(line=line, term=term, fence=fence))
            break
    return violations


@invariant("CommittedOnAllInv")
def committed_on_all(committed: Sequence[Entry], member_logs: Mapping[int, Sequence[Entry]]) -> list[str]:
    """Every committed entry is on every store node of the current configuration."""
    violations = []
    for node, log in sorted(member_logs.items()):
        if len(log) < len(committed):
            template = ngettext("store node {node} holds {count} entry but {committed} are committed",
                                "store node {node} holds {count} entries but {committed} are committed", len(log))
            violations.append(template.format(node=node, count=len(log), committed=len(committed)))
            continue
        mismatch = _first_mismatch(log, committed)
        if mismatch is not None:
            violations.append(_("store node {node} differs from the committed log at seq {seq}").format(
                node=node, seq=mismatch))
    return violations


@invariant("LogMatchingInv")
def log_matching(
    member_logs: Mapping[int, Sequence[Entry]],
    all_logs: Mapping[int, Sequence[Entry]],
    commits: Mapping[int, int],
    committed: Sequence[Entry],
) -> list[str]:
    """Members of the configuration agree wherever both hold an entry, and every node
    agrees with the committed log on the prefix it counts as committed."""
    violations = []
    members = sorted(member_logs)
    for index, first in enumerate(members):
        for second in members[index + 1 :]:
            mismatch = _first_mismatch(member_logs[first], member_logs[second])
            if mismatch is not None:
                violations.append(_("store nodes {first} and {second} disagree at seq {seq}").format(
                    first=first, second=second, seq=mismatch))
    for node, log in sorted(all_logs.items()):
        commit = min(commits.get(node, 0), len(log))
        if commit > len(committed):
            template = ngettext("store node {node} counts {commit} entry committed but only {committed} are",
                                "store node {node} counts {commit} entries committed but only {committed} are",
                                commit)
            violations.append(template.format(node=node, commit=commit, committed=len(committed)))
            continue
        mismatch = _first_mismatch(log[:commit], committed)
        if mismatch is not None:
            violations.append(_("store node {node} has a committed entry at seq {seq} that differs").format(
                node=node, seq=mismatch))
    return violations


@invariant("OutputPrefixInv")
def output_prefix(output: Sequence[Entry], committed: Sequence[Entry]) -> list[str]:
    """The output file is a prefix of the committed log."""
    if len(output) > len(committed):
        template = ngettext("output.txt holds {output} entry but only {committed} are committed",
                            "output.txt holds {output} entries but only {committed} are committed", len(output))
        return [template.format(output=len(output), committed=len(committed))]
    mismatch = _first_mismatch(output, committed)
    if mismatch is not None:
        return [_("output.txt differs from the committed log at seq {seq}").format(seq=mismatch)]
    for position, entry in enumerate(output, start=1):
        if entry.seq != position:
            return [_("output.txt line {line} carries seq {seq}").format(line=position, seq=entry.seq)]
    return []


@invariant("LamportOrderInv")
def lamport_order(committed: Sequence[Entry]) -> list[str]:
    """Lamport timestamps strictly increase along the committed log."""
    for before, after in pairwise(committed):
        if after.lamport <= before.lamport:
            return [
                _("Lamport timestamp does not increase from seq {before_seq} ({before_lamport}) "
                  "to seq {after_seq} ({after_lamport})").format(
                    before_seq=before.seq, before_lamport=before.lamport,
                    after_seq=after.seq, after_lamport=after.lamport)
            ]
    return []


@invariant("ClientOrderInv")
def client_order(committed: Sequence[Entry]) -> list[str]:
    """Each client's messages appear in the order that client sent them, each exactly once."""
    violations = []
    last: dict[int, Entry] = {}
    for entry in committed:
        previous = last.get(entry.client_id)
        if previous is not None and entry.request_id <= previous.request_id:
            # One whole sentence per case, so that a translation never joins fragments.
            if entry.request_id == previous.request_id:
                message = _("client {client} request {request} appears twice (seq {first} and seq {second})")
            else:
                message = _("client {client} request {request} appears out of order (seq {first} and seq {second})")
            violations.append(message.format(
                client=entry.client_id, request=entry.request_id, first=previous.seq, second=entry.seq))
        last[entry.client_id] = entry
    return violations


@invariant("AckedCommittedInv")
def acked_committed(acks: Iterable[Ack], committed: Sequence[Entry], output: Sequence[Entry]) -> list[str]:
    """Every message acknowledged to a client is in the committed log and in the output file."""
    in_output = {(entry.client_id, entry.request_id): entry.seq for entry in output}
    in_committed = {(entry.client_id, entry.request_id) for entry in committed}
    violations = []
    for ack in acks:
        key = (ack.client_id, ack.request_id)
        if key not in in_committed:
            violations.append(_("client {client} request {request} was acknowledged but not committed").format(
                client=ack.client_id, request=ack.request_id))
        elif key not in in_output:
            violations.append(_("client {client} request {request} was acknowledged but is not in output.txt").format(
                client=ack.client_id, request=ack.request_id))
        elif ack.seq and in_output[key] != ack.seq:
            violations.append(
                _("client {client} request {request} was acknowledged at seq {seq} but output.txt has it at seq "
                  "{output_seq}").format(client=ack.client_id, request=ack.request_id, seq=ack.seq,
                                         output_seq=in_output[key])
            )
    return violations


def _first_mismatch(first: Sequence[Entry], second: Sequence[Entry]) -> int | None:
    """Return the first seq where both sequences hold an entry and the entries differ."""
    for index in range(min(len(first), len(second))):
        if first[index] != second[index]:
            return index + 1
    return None
