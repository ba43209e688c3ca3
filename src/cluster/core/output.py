"""The fenced append to output.txt, as a pure decision.

The node process applies the decision to the real file while it holds an
exclusive lock on `output.lock`; the simulator applies it to a list. Either
way the rule is the same:

- the fence is the highest leader term that has claimed the file;
- an append from a term below the fence is refused, so a deposed leader that
  wakes up late cannot write;
- only entries that directly follow the file's last sequence number are
  written, so a retried append never duplicates a line or leaves a gap.
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster.core.bugs import Bug
from cluster.core.messages import Entry
from cluster.core.spec_names import action


@dataclass(frozen=True, slots=True)
class OutputState:
    """What the appender reads under the lock: the fence term and the last sequence number."""

    fence_term: int
    last_seq: int


@dataclass(frozen=True, slots=True)
class OutputDecision:
    """What to write: the new fence and the entries to append (empty when refused)."""

    accepted: bool
    fence_term: int
    entries: tuple[Entry, ...]
    last_seq: int  # the file's last sequence number after the append


def raise_fence(state: OutputState, term: int) -> OutputDecision:
    """Claim the file for `term`; refused when a later term already claimed it."""
    if term < state.fence_term:
        return OutputDecision(False, state.fence_term, (), state.last_seq)
    return OutputDecision(True, term, (), state.last_seq)


@action("AppendOutput")
def append_output(
    state: OutputState,
    term: int,
    entries: tuple[Entry, ...],
    bugs: frozenset[Bug] = frozenset(),
) -> OutputDecision:
    """Decide which of `entries` to append for the leader of `term`."""
    if Bug.NO_FENCE in bugs:
        # The unfenced append writes whatever it is given, so a leader that
        # resumes late repeats lines another leader already wrote.
        return OutputDecision(True, max(state.fence_term, term), entries, state.last_seq + len(entries))
    if term < state.fence_term:
        return OutputDecision(False, state.fence_term, (), state.last_seq)

    fresh: list[Entry] = []
    last_seq = state.last_seq
    for entry in entries:
        if entry.seq <= last_seq:
            continue
        if entry.seq != last_seq + 1:
            break
        fresh.append(entry)
        last_seq = entry.seq

    return OutputDecision(True, max(state.fence_term, term), tuple(fresh), last_seq)
