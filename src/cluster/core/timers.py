"""Timeouts of the protocol, in ticks.

The core counts time only in ticks; the node processes tick every
`TICK_SECONDS`, and the simulator advances ticks in virtual time.
"""

from collections.abc import Callable
from dataclasses import dataclass, fields

TICK_SECONDS = 0.01
# Upper bound of every timer, in ticks. 1000 ticks are 10 s at TICK_SECONDS
# and ten times the longest default below (client_retry). The bound keeps a
# simulation finite, because the simulator's loops that wait for a timer, such
# as a scenario's `tick sync N until leader`, run a multiple of it.
MAX_TIMER_TICKS = 1000


@dataclass(frozen=True, slots=True)
class Timers:
    heartbeat_interval: int = 5
    # Generous, so a leader slowed by load is not deposed; a crashed leader is
    # noticed sooner, when its connections close (see `leader_lost_delay`).
    election_timeout_min: int = 30
    election_timeout_max: int = 60
    # A store member that has not answered a ping for this long is treated as
    # failed; a crashed one is noticed sooner, when its connection closes.
    store_failure_timeout: int = 30
    # The leader resends unacknowledged writes, and the primary unacknowledged
    # replication, after this long without progress.
    write_retry: int = 20
    # A follower whose connection to the leader closed waits at most this long
    # before standing for election (a random value from 1 up to it).
    leader_lost_delay: int = 3
    # Until it hears of a new leader, such a follower draws its election
    # timeout from leader_lost_delay up to this, so a split vote is retried
    # quickly rather than after a whole election timeout.
    election_retry_max: int = 12
    client_retry: int = 100
    client_backoff: int = 5

    def __post_init__(self) -> None:
        for rule in (*TIMER_RANGE_RULES, *TIMER_RULES):
            values = tuple(getattr(self, name) for name in rule.names)
            if not rule.satisfied(*values):
                raise TimersError(rule, values)


@dataclass(frozen=True, slots=True)
class TimerRule:
    """A constraint between timeouts; `satisfied` takes the values of `names`, in order."""

    names: tuple[str, ...]
    satisfied: Callable[..., bool]
    # The constraint in English, and the relation to fill in with the actual values.
    rule: str
    found: str


def _in_range(ticks: int) -> bool:
    return 1 <= ticks <= MAX_TIMER_TICKS


# One rule per timer, checked before TIMER_RULES, that it is from 1 to MAX_TIMER_TICKS.
TIMER_RANGE_RULES = tuple(
    TimerRule((item.name,), _in_range, f"{item.name} must be from 1 to {MAX_TIMER_TICKS} ticks", f"{{{item.name}}}")
    for item in fields(Timers)
)
# Constraints between timers.
TIMER_RULES = (
    TimerRule(
        ("heartbeat_interval", "election_timeout_min", "election_timeout_max"),
        lambda heartbeat, low, high: heartbeat < low <= high,
        "election timeouts must satisfy heartbeat_interval < min <= max",
        "{heartbeat_interval} < {election_timeout_min} <= {election_timeout_max}",
    ),
    TimerRule(
        ("leader_lost_delay", "election_retry_max", "election_timeout_min"),
        lambda lost, retry, low: 1 <= lost <= retry < low,
        "election retries must satisfy 1 <= leader_lost_delay <= election_retry_max < election_timeout_min",
        "1 <= {leader_lost_delay} <= {election_retry_max} < {election_timeout_min}",
    ),
)


class TimersError(ValueError):
    """An error for timeouts that break a rule, with the rule and values so a caller can translate it.

    The rule is one of TIMER_RANGE_RULES or TIMER_RULES.
    """

    def __init__(self, rule: TimerRule, values: tuple[int, ...]) -> None:
        self.rule = rule
        self.values = values
        super().__init__(f"{rule.rule}, found {self.found()}")

    def found(self) -> str:
        """Return the rule's relation with the values that broke it filled in."""
        return self.rule.found.format(**dict(zip(self.rule.names, self.values, strict=True)))
