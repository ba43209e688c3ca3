"""Unit tests of the safety invariants (invariants.py).

For each invariant: a state where it holds returns no sentence, and each kind
of violation returns a sentence that names the seq, node or term at fault.
"""

from __future__ import annotations

import pytest

from cluster.core.messages import Entry
from cluster.invariants import (
    Ack,
    acked_committed,
    client_order,
    committed_on_all,
    election_safety,
    epoch_fencing,
    lamport_order,
    log_matching,
    output_prefix,
)


def entry(seq: int, term: int = 1, lamport: int | None = None, client: int = 1, request_id: int | None = None) -> Entry:
    return Entry(seq, term, seq if lamport is None else lamport, client, seq if request_id is None else request_id, "m")


LOG = [entry(1), entry(2), entry(3)]
OTHER_2 = entry(2, term=2)


# --- ElectionSafetyInv -----------------------------------------------------------


def test_election_safety_holds() -> None:
    """One leader per term, even when a node leads again later, is no violation."""
    assert election_safety([(1, 1), (2, 3), (3, 1), (3, 1)]) == []


def test_election_safety_two_leaders() -> None:
    """Two leaders in one term are reported with the term and both node ids."""
    violations = election_safety([(1, 1), (2, 3), (2, 4)])

    assert violations == ["term 2 had 2 leaders: sync nodes [3, 4]"]


# --- EpochFencingInv -------------------------------------------------------------


def test_epoch_fencing_holds() -> None:
    """No stale accepts and non-decreasing epochs are no violation."""
    assert epoch_fencing({1: 0, 2: 0}, {1: [0, 1, 1, 3], 2: [0, 2]}) == []


def test_epoch_fencing_stale_accept() -> None:
    """A store node that accepted messages from an older epoch is named with the count."""
    violations = epoch_fencing({1: 0, 2: 3}, {})

    assert violations == ["store node 2 accepted 3 messages from older epochs"]


def test_epoch_fencing_epoch_regress() -> None:
    """A store node whose installed epoch went back is named with both epochs."""
    violations = epoch_fencing({}, {3: [0, 4, 3, 5]})

    assert violations == ["store node 3 went back from epoch 4 to epoch 3"]


# --- CommittedOnAllInv -------------------------------------------------------------


def test_committed_on_all_holds() -> None:
    """Members holding the committed log, one with an extra uncommitted entry, are no violation."""
    assert committed_on_all(LOG[:2], {1: LOG, 2: LOG[:2]}) == []


def test_committed_on_all_short() -> None:
    """A member holding fewer entries than are committed is named with both counts."""
    violations = committed_on_all(LOG, {1: LOG, 3: LOG[:1]})

    assert violations == ["store node 3 holds 1 entry but 3 are committed"]


def test_committed_on_all_differs() -> None:
    """A member whose log differs from the committed log is named with the first differing seq."""
    violations = committed_on_all(LOG, {2: [LOG[0], OTHER_2, LOG[2]]})

    assert violations == ["store node 2 differs from the committed log at seq 2"]


# --- LogMatchingInv ----------------------------------------------------------------


def test_log_matching_holds() -> None:
    """Members that agree on shared positions and nodes that agree on their committed prefix are no violation."""
    logs = {1: LOG, 2: LOG[:2], 3: [LOG[0], OTHER_2]}

    assert log_matching({1: LOG, 2: LOG[:2]}, logs, {1: 3, 2: 2, 3: 1}, LOG) == []


def test_log_matching_members_disagree() -> None:
    """Two members that hold different entries at one seq are named with that seq."""
    members = {1: LOG, 2: [LOG[0], OTHER_2]}

    violations = log_matching(members, members, {}, [])

    assert violations == ["store nodes 1 and 2 disagree at seq 2"]


def test_log_matching_commit_too_far() -> None:
    """A node that counts more entries committed than the committed log holds is named."""
    violations = log_matching({}, {3: LOG}, {3: 3}, LOG[:2])

    assert violations == ["store node 3 counts 3 entries committed but only 2 are"]


def test_log_matching_committed_differs() -> None:
    """A node whose committed prefix differs from the committed log is named with the seq."""
    violations = log_matching({}, {3: [LOG[0], OTHER_2]}, {3: 2}, LOG)

    assert violations == ["store node 3 has a committed entry at seq 2 that differs"]


# --- OutputPrefixInv ---------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 3])
def test_output_prefix_holds(length: int) -> None:
    """Any prefix of the committed log is a valid output file."""
    assert output_prefix(LOG[:length], LOG) == []


def test_output_prefix_too_long() -> None:
    """An output file longer than the committed log is reported with both lengths."""
    violations = output_prefix(LOG, LOG[:2])

    assert violations == ["output.txt holds 3 entries but only 2 are committed"]


def test_output_prefix_differs() -> None:
    """An output line that differs from the committed entry is reported with its seq."""
    violations = output_prefix([LOG[0], OTHER_2], LOG)

    assert violations == ["output.txt differs from the committed log at seq 2"]


def test_output_prefix_bad_seq() -> None:
    """An output line whose seq is not its line number is reported, even when the committed log agrees."""
    shifted = [entry(2), entry(3)]

    violations = output_prefix(shifted, shifted)

    assert violations == ["output.txt line 1 carries seq 2"]


# --- LamportOrderInv ---------------------------------------------------------------


def test_lamport_order_holds() -> None:
    """Strictly increasing timestamps are no violation."""
    assert lamport_order([entry(1, lamport=3), entry(2, lamport=4), entry(3, lamport=9)]) == []


@pytest.mark.parametrize("second", [5, 4])
def test_lamport_order_not_increasing(second: int) -> None:
    """An equal or smaller timestamp is reported with both seqs and both timestamps."""
    violations = lamport_order([entry(1, lamport=5), entry(2, lamport=second)])

    assert violations == [f"Lamport timestamp does not increase from seq 1 (5) to seq 2 ({second})"]


# --- ClientOrderInv ----------------------------------------------------------------


def test_client_order_holds() -> None:
    """Interleaved clients, each in its own order, are no violation."""
    log = [entry(1, client=1, request_id=1), entry(2, client=2, request_id=1), entry(3, client=1, request_id=2)]

    assert client_order(log) == []


def test_client_order_twice() -> None:
    """A request applied twice is reported with its client, request id and both seqs."""
    log = [entry(1, client=4, request_id=1), entry(2, client=4, request_id=1)]

    violations = client_order(log)

    assert violations == ["client 4 request 1 appears twice (seq 1 and seq 2)"]


def test_client_order_reordered() -> None:
    """A request applied after a later one of the same client is reported as out of order."""
    log = [entry(1, client=4, request_id=2), entry(2, client=5, request_id=1), entry(3, client=4, request_id=1)]

    violations = client_order(log)

    assert violations == ["client 4 request 1 appears out of order (seq 1 and seq 3)"]


# --- AckedCommittedInv -------------------------------------------------------------


def test_acked_committed_holds() -> None:
    """Acknowledged requests in the committed log and the output, at the reported seq or none, are no violation."""
    acks = [Ack(1, 1, 1), Ack(1, 2, 0)]

    assert acked_committed(acks, LOG, LOG[:2]) == []


def test_acked_not_committed() -> None:
    """An acknowledged request missing from the committed log is named."""
    violations = acked_committed([Ack(1, 9, 0)], LOG, LOG)

    assert violations == ["client 1 request 9 was acknowledged but not committed"]


def test_acked_not_in_output() -> None:
    """An acknowledged, committed request missing from output.txt is named."""
    violations = acked_committed([Ack(1, 3, 3)], LOG, LOG[:2])

    assert violations == ["client 1 request 3 was acknowledged but is not in output.txt"]


def test_acked_wrong_seq() -> None:
    """An acknowledgement at another seq than the output's is reported with both seqs."""
    violations = acked_committed([Ack(1, 2, 3)], LOG, LOG)

    assert violations == ["client 1 request 2 was acknowledged at seq 3 but output.txt has it at seq 2"]


def test_epoch_fencing_unfenced_append() -> None:
    """An output line appended by a term below the fence breaks EpochFencingInv."""
    violations = epoch_fencing({}, {}, [(2, 2), (3, 2), (2, 3)])

    assert violations == ["output line 3 was appended by term 2 while the fence held term 3"]
