"""Named protocol mistakes that a lab can switch on, in the code and in the spec.

Each value matches a bug variant of the TLA+ spec, so a student can watch the
model checker and the simulator find the same mistake.
"""

import enum


class Bug(enum.Enum):
    DOUBLE_VOTE = "double_vote"  # a sync node may vote twice in one term
    EARLY_ACK = "early_ack"  # the primary acknowledges before every backup has the write
    SKIP_EPOCH_CHECK = "skip_epoch_check"  # a store node accepts messages from old epochs
    NO_FENCE = "no_fence"  # the output append checks neither the fencing term nor the last seq


def parse_bugs(names: str) -> frozenset[Bug]:
    """Parse a comma-separated list of bug names; raise ValueError naming an unknown one."""
    bugs: set[Bug] = set()
    for raw in names.split(","):
        name = raw.strip()
        if not name:
            continue
        try:
            bugs.add(Bug(name))
        except ValueError:
            known = ", ".join(bug.value for bug in Bug)
            raise ValueError(f"unknown bug {name!r}; known bugs: {known}") from None
    return frozenset(bugs)
