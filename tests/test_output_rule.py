"""Unit tests of the fenced append to output.txt (core/output.py).

The rule is that of docs/protocol.md ("Output file and fencing"): a leader
raises the fence to its term, an append from a term below the fence is
refused, and only entries that directly follow the file's last seq are
written.
"""

from __future__ import annotations

import pytest

from cluster.core.bugs import Bug
from cluster.core.messages import Entry
from cluster.core.output import OutputDecision, OutputState, append_output, raise_fence


def entries(*seqs: int, term: int = 3) -> tuple[Entry, ...]:
    return tuple(Entry(seq, term, seq, 1, seq, f"message {seq}") for seq in seqs)


@pytest.mark.parametrize(
    ("fence", "term", "accepted", "new_fence"), [(4, 3, False, 4), (4, 4, True, 4), (4, 6, True, 6)]
)
def test_raise_fence(fence: int, term: int, accepted: bool, new_fence: int) -> None:
    """A fence is raised to a term at least the current fence; a lower term is refused."""
    state = OutputState(fence_term=fence, last_seq=7)

    decision = raise_fence(state, term)

    assert decision.accepted is accepted
    assert decision.fence_term == new_fence
    assert decision.last_seq == 7
    assert decision.entries == ()


def test_append_below_fence_refused() -> None:
    """An append from a term below the fence writes nothing: the appender was deposed."""
    state = OutputState(fence_term=5, last_seq=2)

    decision = append_output(state, 4, entries(3, 4))

    assert decision == OutputDecision(False, 5, (), 2)


def test_append_follows_last_seq() -> None:
    """An append at the fence term writes the entries that follow the last seq."""
    state = OutputState(fence_term=3, last_seq=2)

    decision = append_output(state, 3, entries(3, 4))

    assert decision == OutputDecision(True, 3, entries(3, 4), 4)


def test_append_skips_present() -> None:
    """Entries already in the file are skipped, so a retried append never repeats a line."""
    state = OutputState(fence_term=3, last_seq=4)

    decision = append_output(state, 3, entries(3, 4, 5, 6))

    assert decision.entries == entries(5, 6)
    assert decision.last_seq == 6


@pytest.mark.parametrize("seqs", [(3, 5, 6), (3, 5, 4)])
def test_append_stops_at_gap(seqs: tuple[int, ...]) -> None:
    """The append stops at the first gap and writes only the entries before it."""
    state = OutputState(fence_term=3, last_seq=2)

    decision = append_output(state, 3, entries(*seqs))

    assert decision.entries == entries(3)
    assert decision.last_seq == 3


def test_append_gap_at_start() -> None:
    """An append whose first new entry does not follow the file writes nothing, but is not refused."""
    state = OutputState(fence_term=3, last_seq=2)

    decision = append_output(state, 3, entries(4, 5))

    assert decision == OutputDecision(True, 3, (), 2)


def test_append_raises_fence() -> None:
    """An append from a term above the fence raises the fence to that term."""
    state = OutputState(fence_term=2, last_seq=0)

    decision = append_output(state, 5, entries(1))

    assert decision.fence_term == 5


def test_no_fence_bug_appends_blindly() -> None:
    """With Bug.NO_FENCE the append ignores both the fence and the last seq and writes every entry."""
    state = OutputState(fence_term=9, last_seq=4)

    decision = append_output(state, 3, entries(3, 4, 5), frozenset({Bug.NO_FENCE}))

    assert decision.accepted is True
    assert decision.entries == entries(3, 4, 5)
    assert decision.last_seq == 7
