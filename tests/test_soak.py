"""`cluster soak` and the pauses of `cluster run --chaos`."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.launcher import RunSummary
from cluster.run import PAUSE_SECONDS, RESTART_DELAY, ChaosPlan
from cluster.soak import describe_faults, violation_counts
from cluster.verify import CheckResult, Report


def old_kills(seed: int) -> list[tuple[float, str]]:
    """Return the kills that ChaosPlan drew before it had pauses, for the same seed."""
    rng = random.Random(seed)
    kills = [(rng.uniform(0.1, 0.4), "leader"), (rng.uniform(0.45, 0.75), "primary")]
    if rng.random() < 0.5:
        kills.append((rng.uniform(0.8, 0.9), rng.choice(["leader", "primary"])))
    return sorted(kills)


@pytest.mark.parametrize("seed", [1, 2, 3, 17])
def test_chaos_plan_adds_pause(seed: int) -> None:
    """A chaos plan pauses the leader once, longer than an election timeout, and keeps its kills."""
    plan = ChaosPlan.from_seed(seed)

    pauses = [fraction for fraction, action in plan.kills if action == "pause"]
    kills = [(fraction, action) for fraction, action in plan.kills if action != "pause"]
    assert len(pauses) == 1
    assert kills == old_kills(seed)
    assert PAUSE_SECONDS[0] <= plan.pause_seconds <= PAUSE_SECONDS[1]
    assert plan.pause_seconds > 0.6
    assert RESTART_DELAY[0] <= plan.restart_delay <= RESTART_DELAY[1]


def test_violation_counts_by_check() -> None:
    """Lost, duplicated and reordered messages are the violations of three named checks."""
    checks = [
        CheckResult("AckedCommittedInv", "", ["a", "b"]),
        CheckResult("ExactlyOnce", "", ["c"]),
        CheckResult("ClientOrderInv", "", []),
        CheckResult("LamportOrderInv", "", ["d"]),
    ]
    report = Report(checks, output_entries=0, sent=0, acknowledged=0, final_config=None, leaders=[])

    assert violation_counts(report) == (2, 1, 0)


@pytest.mark.e2e
def test_soak_two_rounds(tmp_path: Path) -> None:
    """Two seeded chaos rounds verify, print the totals and leave no round directory behind."""
    result = subprocess.run(
        [sys.executable, "-m", "cluster", "soak", "--rounds", "2", "--clients", "2", "--messages", "60",
         "--data-dir", str(tmp_path / "soak")],
        capture_output=True, text=True, timeout=180,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "round 1: chaos seed 1:" in result.stdout
    assert "round 2: chaos seed 2:" in result.stdout
    assert "soak: 2 rounds (2 runs), 240 acknowledged, 0 lost, 0 duplicated, 0 reordered" in result.stdout
    assert list((tmp_path / "soak").iterdir()) == []


def test_round_faults_name_every_kind() -> None:
    report = Report(checks=[], output_entries=10, sent=10, acknowledged=10, final_config=None, leaders=[])
    summary = RunSummary(report, 10, 1.0, None, None, kills=["killed sync 1"], exited=[("store", 2, -9)],
                         paused_outside=[("sync", 3)])

    assert describe_faults(summary) == ("killed sync 1; stopped from outside: store 2 (ended by signal SIGKILL); "
                                        "paused from outside and not resumed: sync 3")


def test_round_faults_empty_without_faults() -> None:
    report = Report(checks=[], output_entries=10, sent=10, acknowledged=10, final_config=None, leaders=[])

    assert describe_faults(RunSummary(report, 10, 1.0, None, None)) == ""
