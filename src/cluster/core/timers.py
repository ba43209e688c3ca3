"""Timeouts of the protocol, in ticks.

The core counts time only in ticks; the node processes tick every
`TICK_SECONDS`, and the simulator advances ticks in virtual time.
"""

from collections.abc import Callable
from dataclasses import dataclass

TICK_SECONDS = 0.01


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
        for rule in TIMER_RULES:
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


TIMER_RULES = (
    TimerRule(
        ("heartbeat_interval",),
        lambda heartbeat: heartbeat >= 1,
        "heartbeat_interval must be at least 1 tick",
        "{heartbeat_interval}",
    ),
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
    """An error for timeouts that break one of TIMER_RULES, with the rule and values so a caller can translate it."""

    def __init__(self, rule: TimerRule, values: tuple[int, ...]) -> None:
        self.rule = rule
        self.values = values
        super().__init__(f"{rule.rule}, found {self.found()}")

    def found(self) -> str:
        """Return the rule's relation with the values that broke it filled in."""
        return self.rule.found.format(**dict(zip(self.rule.names, self.values, strict=True)))
