"""Timeouts of the protocol, in ticks.

The core counts time only in ticks; the node processes tick every
`TICK_SECONDS`, and the simulator advances ticks in virtual time.
"""

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
        if self.heartbeat_interval < 1:
            raise ValueError(f"heartbeat_interval must be at least 1 tick, got {self.heartbeat_interval}")
        if not self.heartbeat_interval < self.election_timeout_min <= self.election_timeout_max:
            raise ValueError(
                "election timeouts must satisfy heartbeat_interval < min <= max, got "
                f"{self.heartbeat_interval} < {self.election_timeout_min} <= {self.election_timeout_max}"
            )
        if not 1 <= self.leader_lost_delay <= self.election_retry_max < self.election_timeout_min:
            raise ValueError(
                "election retries must satisfy 1 <= leader_lost_delay <= election_retry_max < election_timeout_min,"
                f" got 1 <= {self.leader_lost_delay} <= {self.election_retry_max} < {self.election_timeout_min}"
            )
