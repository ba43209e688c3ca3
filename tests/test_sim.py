"""Tests of the deterministic simulator: replay, shrinking, faults, bugs, liveness and the CLI."""

from __future__ import annotations

import argparse
import io
import json
import logging
from pathlib import Path

import pytest

from cluster.core.bugs import Bug
from cluster.core.timers import MAX_TIMER_TICKS, Timers, TimersError
from cluster.sim.cli import add_simulate_parser, run_simulate
from cluster.sim.events import SimEvent
from cluster.sim.explore import EXPLORE_CONFIG, explore
from cluster.sim.liveness import LivenessMonitor, ack_bound, leader_bound
from cluster.sim.runner import FAULT_KINDS, Runner, SimConfig
from cluster.sim.scenario import ScenarioError, run_scenario
from cluster.sim.scheduler import RunResult, simulate
from cluster.sim.shrink import shrink
from cluster.sim.trace import TraceError, read_trace, replay, trace_to_json, write_trace


@pytest.fixture(autouse=True)
def quiet_nodes() -> None:
    logging.getLogger("cluster.core").setLevel(logging.CRITICAL)


def first_failing(config: SimConfig, seeds: int) -> tuple[int, object]:
    for seed in range(seeds):
        result = simulate(config, seed)
        if result.violation is not None:
            return seed, result
    raise AssertionError(f"no violation in {seeds} seeds")


# --- Determinism and replay ------------------------------------------------------------


def test_same_seed_same_trace() -> None:
    config = SimConfig(steps=1500)

    first = simulate(config, 11)
    second = simulate(config, 11)

    assert trace_to_json(first) == trace_to_json(second)


def test_replay_reproduces_clean_run() -> None:
    config = SimConfig(steps=1500)
    original = simulate(config, 5)

    replayed = replay(config, 5, original.events, original.recovery_start)

    assert original.violation is None
    assert replayed.violation is None
    assert replayed.events == original.events


def test_replay_reproduces_violation(tmp_path: Path) -> None:
    config = SimConfig(bugs=frozenset([Bug.EARLY_ACK]))
    seed, failing = first_failing(config, 20)
    path = tmp_path / "trace.json"
    write_trace(path, failing)  # type: ignore[arg-type]

    trace = read_trace(path)
    replayed = replay(trace.config, trace.seed, trace.events, trace.recovery_start)

    assert trace.seed == seed
    assert replayed.violation == failing.violation  # type: ignore[attr-defined]


def test_trace_names_messages_by_link() -> None:
    result = simulate(SimConfig(steps=300), 2)

    data = trace_to_json(result)
    deliveries = [event for event in data["events"] if event["op"] == "deliver"]

    assert data["format"] == "cluster-sim-trace"
    assert data["version"] == 1
    assert deliveries
    assert all(set(event) == {"op", "from", "to", "n"} for event in deliveries)


def test_replay_rejects_edited_trace() -> None:
    config = SimConfig(steps=200)
    events = [SimEvent("deliver", source=("sync", 1), target=("sync", 2), seq=99)]

    with pytest.raises(TraceError, match="cannot happen"):
        replay(config, 0, events)


# --- Shrinking --------------------------------------------------------------------------


@pytest.mark.parametrize("bug", [Bug.DOUBLE_VOTE, Bug.EARLY_ACK])
def test_shrink_keeps_violation_shorter(bug: Bug) -> None:
    _, failing = first_failing(SimConfig(bugs=frozenset([bug])), 100)

    shrunk = shrink(failing, budget=800)  # type: ignore[arg-type]

    assert shrunk.result.violation is not None
    assert shrunk.result.violation.name == failing.violation.name  # type: ignore[attr-defined]
    assert len(shrunk.result.events) < len(failing.events)  # type: ignore[attr-defined]
    strict = replay(failing.config, failing.seed, shrunk.result.events)  # type: ignore[attr-defined]
    assert strict.violation is not None
    assert strict.violation.name == shrunk.result.violation.name


# --- One scenario per fault kind --------------------------------------------------------


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_fault_kind_happens_and_safety_holds(kind: str) -> None:
    # A restart needs a crashed node, so the restart case also enables crashes.
    faults = {kind, "crash"} if kind == "restart" else {kind}
    config = SimConfig(steps=2000, faults=frozenset(faults))
    injected = {"crash": "crash", "restart": "restart", "partition": "partition", "drop": "drop",
                "duplicate": "duplicate", "pause": "pause"}

    ops: set[str] = set()
    for seed in range(20):
        result = simulate(config, seed)
        assert result.violation is None, f"seed {seed}: {result.violation}"
        ops |= {event.op for event in result.events}

    if kind == "reorder":
        assert "deliver" in ops
    else:
        assert injected[kind] in ops


def test_resent_epoch_ready_claims_only_committed() -> None:
    """A NewEpoch repeated after writes began makes the primary report only its committed prefix."""
    trace = read_trace(Path(__file__).parent / "data" / "sim" / "epoch_ready_resend.json")

    result = replay(trace.config, trace.seed, trace.events, trace.recovery_start)

    assert result.violation is None, result.violation


def test_reorder_delivers_out_of_order() -> None:
    config = SimConfig(steps=2000, faults=frozenset(["reorder"]))

    overtaken = 0
    for seed in range(10):
        runner = Runner(config, seed)
        for event in simulate(config, seed).events:
            if event.op == "deliver":
                older = [p for p in runner.world.network
                         if (p.source, p.target) == (event.source, event.target) and p.seq < event.seq]
                overtaken += bool(older)
            runner.step(event)

    assert overtaken > 0


def test_partition_drops_messages_across_cut() -> None:
    runner = Runner(SimConfig(), 0)
    group = (("sync", 1),)

    runner.step(SimEvent("partition", group=group))
    for _ in range(40):
        runner.step(SimEvent("tick", node=("sync", 2)))

    assert runner.world.lost_to_partition > 0
    assert all(packet.target != ("sync", 1) for packet in runner.world.network)


def test_pause_blocks_delivery_and_output() -> None:
    from cluster.sim.events import applicable

    runner = Runner(SimConfig(), 0)
    runner.step(SimEvent("pause", node=("sync", 1)))
    packet = next(p for p in runner.world.network if p.target == ("sync", 1))

    deliver = SimEvent("deliver", source=packet.source, target=packet.target, seq=packet.seq)

    assert not applicable(runner.world, deliver)
    assert not applicable(runner.world, SimEvent("tick", node=("sync", 1)))


# --- Bugs are found, the correct code is not accused ------------------------------------

# Seeds within which each bug must be found (3 sync x 3 store x 2 clients x 8 messages,
# 3000 steps, every fault kind). The first finding seeds are 0 to about 20 today.
BUG_SEED_BOUND = {
    Bug.DOUBLE_VOTE: 100,
    Bug.EARLY_ACK: 100,
    Bug.SKIP_EPOCH_CHECK: 100,
    Bug.NO_FENCE: 300,
}
EXPECTED_INVARIANT = {
    Bug.DOUBLE_VOTE: "ElectionSafetyInv",
    Bug.EARLY_ACK: "CommittedOnAllInv",
    Bug.SKIP_EPOCH_CHECK: "EpochFencingInv",
    Bug.NO_FENCE: "EpochFencingInv",
}


@pytest.mark.parametrize("bug", list(Bug))
def test_bug_found_within_seed_bound(bug: Bug) -> None:
    config = SimConfig(bugs=frozenset([bug]))

    seed, failing = first_failing(config, BUG_SEED_BOUND[bug])

    assert failing.violation.name == EXPECTED_INVARIANT[bug], f"seed {seed}"  # type: ignore[attr-defined]


# Schedules of the correct code that must break no safety invariant and no liveness bound.
CLEAN_SCHEDULES = 2000
CLEAN_STEPS = 1000


def test_correct_code_no_violation() -> None:
    config = SimConfig(steps=CLEAN_STEPS)

    failures = []
    for seed in range(CLEAN_SCHEDULES):
        result = simulate(config, seed)
        if result.violation is not None:
            failures.append((seed, result.violation.name, result.violation.details))

    assert failures == []


# --- Liveness ---------------------------------------------------------------------------


def test_liveness_bounds_follow_timers() -> None:
    timers = SimConfig().timers

    assert leader_bound(timers) == 5 * timers.election_timeout_max
    assert ack_bound(timers) > leader_bound(timers) + 2 * timers.client_retry


def test_liveness_run_acknowledges_everything() -> None:
    result = simulate(SimConfig(steps=800), 3)
    runner = Runner(result.config, result.seed)
    for event in result.events:
        runner.step(event)

    assert result.violation is None
    assert result.recovery_start is not None
    assert runner.world.all_acknowledged()


def test_liveness_violation_reported() -> None:
    # No ticks ever reach the sync nodes in these rounds, so no leader can be elected.
    runner = Runner(SimConfig(), 0)
    monitor = LivenessMonitor(runner.config.timers)

    broken = None
    for _ in range(monitor.leader_bound + 1):
        broken = monitor.after_round(runner.world)

    assert broken is not None
    assert broken[0] == "LivenessLeaderElected"


# --- Exploration ------------------------------------------------------------------------


def test_explore_counts_reproducible() -> None:
    first = explore(EXPLORE_CONFIG, 5)
    second = explore(EXPLORE_CONFIG, 5)

    assert first.violation is None
    assert (first.explored, first.distinct) == (second.explored, second.distinct)
    assert first.distinct == EXPLORE_DISTINCT_DEPTH_5
    assert first.distinct < first.explored


# Depends on the protocol core: a change to a handler changes the count.
EXPLORE_DISTINCT_DEPTH_5 = 1070


# --- CLI --------------------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="cluster")
    add_simulate_parser(parser.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    code = run_simulate(parser.parse_args(["simulate", *argv]), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "abc"], "invalid --steps 'abc'"),
        (["--steps", "0"], "invalid --steps 0"),
        (["--seed", str(2**63 - 1), "--runs", "3"], f"invalid --seed {2**63 - 1}: expected an integer from 0 to "
                                                    f"{2**63 - 3}"),
        (["--seed", "-1"], "invalid --seed -1"),
        (["--sync", "99"], "invalid --sync 99"),
        (["--store", "0"], "invalid --store 0"),
        (["--clients", "x"], "invalid --clients 'x'"),
        (["--faults", "crash,boom"], "invalid --faults value boom"),
        (["--bug", "nope"], "unknown bug 'nope'"),
        (["--depth", "3"], "--depth needs --explore"),
        (["--explore", "--depth", "0"], "invalid --depth 0"),
        (["--replay", "/nonexistent/trace.json"], "cannot read trace"),
    ],
)
def test_cli_rejects_invalid_option(argv: list[str], message: str) -> None:
    code, _, err = run_cli(*argv)

    assert code == 2
    assert message in err


def test_cli_rejects_foreign_json(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"hello": 1}))

    code, _, err = run_cli("--replay", str(path))

    assert code == 2
    assert "not a simulator trace" in err


# A trace that replays cleanly: no events, on a small valid configuration.
VALID_TRACE = {
    "format": "cluster-sim-trace", "version": 1, "seed": 1, "events": [],
    "config": {"sync": 3, "store": 3, "clients": 1, "messages": 1, "steps": 10},
}


def _trace_with(tmp_path: Path, settings: dict[str, object] | None = None, **fields: object) -> Path:
    """Write VALID_TRACE with `settings` merged into its config and `fields` replacing its top-level fields."""
    data = {**VALID_TRACE, "config": {**VALID_TRACE["config"], **(settings or {})}, **fields}  # type: ignore[dict-item]
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_cli_replays_valid_trace(tmp_path: Path) -> None:
    code, _, err = run_cli("--replay", str(_trace_with(tmp_path)))

    assert code == 0
    assert err == ""


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"sync": -3}, '"config.sync" must be an integer from 1 to 15, found -3'),
        ({"sync": 0}, '"config.sync" must be an integer from 1 to 15, found 0'),
        ({"sync": 2_000_000}, '"config.sync" must be an integer from 1 to 15, found 2000000'),
        ({"sync": "3"}, '"config.sync" must be an integer from 1 to 15, found "3"'),
        ({"sync": 3.5}, '"config.sync" must be an integer from 1 to 15, found 3.5'),
        ({"sync": True}, '"config.sync" must be an integer from 1 to 15, found true'),
        ({"store": 16}, '"config.store" must be an integer from 1 to 15, found 16'),
        ({"clients": 0}, '"config.clients" must be an integer from 1 to 64, found 0'),
        ({"clients": 65}, '"config.clients" must be an integer from 1 to 64, found 65'),
        ({"messages": -1}, '"config.messages" must be an integer from 0 to 100000, found -1'),
        ({"steps": -1}, '"config.steps" must be an integer from 0 to 1000000000, found -1'),
        ({"steps": 10**9 + 1}, '"config.steps" must be an integer from 0 to 1000000000, found 1000000001'),
        ({"window": 0}, '"config.window" must be an integer from 1 to 1000, found 0'),
        ({"faults": "crash"}, '"config.faults" must be a list of fault kinds, found "crash"'),
        ({"faults": ["boom"]}, "unknown fault kinds ['boom']"),
        ({"fault_fraction": 1.5}, '"config.fault_fraction" must be a number from 0 to 1, found 1.5'),
        ({"fault_fraction": "half"}, '"config.fault_fraction" must be a number from 0 to 1, found "half"'),
        ({"liveness": "false"}, '"config.liveness" must be true or false, found "false"'),
        ({"timers": []}, '"config.timers" must be a JSON object, found []'),
        ({"timers": {"nap": 3}}, "unknown timer 'nap' in \"config.timers\"; known timers: heartbeat_interval, "),
        ({"timers": {"write_retry": 0}}, '"config.timers.write_retry" must be an integer from 1 to 1000 ticks, '
                                         "found 0"),
        ({"timers": {"election_timeout_max": 1001}}, '"config.timers.election_timeout_max" must be an integer from 1 '
                                                     "to 1000 ticks, found 1001"),
        ({"timers": {"heartbeat_interval": 40}}, '"config.timers" are inconsistent: election timeouts must satisfy'),
    ],
)
def test_cli_rejects_invalid_trace_config(tmp_path: Path, config: dict[str, object], message: str) -> None:
    path = _trace_with(tmp_path, config)

    code, _, err = run_cli("--replay", str(path))

    assert code == 2
    assert err.startswith(f"cluster simulate: error: {path} is invalid: {message}"), err


@pytest.mark.parametrize("field", ["sync", "store", "clients", "messages", "steps"])
def test_cli_rejects_missing_trace_config(tmp_path: Path, field: str) -> None:
    path = tmp_path / "trace.json"
    config = {key: value for key, value in VALID_TRACE["config"].items() if key != field}  # type: ignore[attr-defined]
    path.write_text(json.dumps({**VALID_TRACE, "config": config}), encoding="utf-8")

    code, _, err = run_cli("--replay", str(path))

    assert code == 2
    assert f'is invalid: "config.{field}" is missing; expected an integer from ' in err


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"events": "abc"}, 'is invalid: "events" must be a list of events, found "abc"'),
        ({"events": None}, 'is invalid: "events" must be a list of events, found null'),
        ({"version": "1"}, 'is invalid: "version" must be the integer 1, found "1"'),
        ({"version": True}, 'is invalid: "version" must be the integer 1, found true'),
        ({"version": 2}, "has trace version 2; this simulator reads version 1"),
        ({"config": None}, 'is invalid: "config" must be a JSON object, found null'),
    ],
)
def test_cli_rejects_invalid_trace_field(tmp_path: Path, fields: dict[str, object], message: str) -> None:
    path = _trace_with(tmp_path, **fields)

    code, _, err = run_cli("--replay", str(path))

    assert code == 2
    assert err.strip() == f"cluster simulate: error: {path} {message}"


MAX_SEED_TEXT = str(2**63 - 1)
ONE_TICK = {"op": "tick", "node": "sync 1"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"seed": "abc"}, f"is invalid: \"seed\" must be an integer from 0 to {MAX_SEED_TEXT}, found \"abc\""),
        ({"seed": -1}, f'is invalid: "seed" must be an integer from 0 to {MAX_SEED_TEXT}, found -1'),
        ({"seed": 2**63}, f'is invalid: "seed" must be an integer from 0 to {MAX_SEED_TEXT}, found {2**63}'),
        ({"seed": 1.5}, f'is invalid: "seed" must be an integer from 0 to {MAX_SEED_TEXT}, found 1.5'),
        ({"seed": True}, f'is invalid: "seed" must be an integer from 0 to {MAX_SEED_TEXT}, found true'),
        ({"recovery_start": "0"}, "is invalid: \"recovery_start\" must be null or an integer from 0 to 1 (the number "
                                  "of events), found \"0\""),
        ({"recovery_start": 2}, 'is invalid: "recovery_start" must be null or an integer from 0 to 1 (the number '
                                "of events), found 2"),
        ({"recovery_start": -1}, 'is invalid: "recovery_start" must be null or an integer from 0 to 1 (the number '
                                 "of events), found -1"),
        ({"violation": "ElectionSafetyInv"}, 'is invalid: "violation" must be null or an object whose "name" is '
                                             "one of ElectionSafetyInv, "),
        ({"violation": {"name": "Nope"}}, 'is invalid: "violation" must be null or an object whose "name" is one of '),
        ({"events": [ONE_TICK, {"op": "fly"}]}, "is invalid: \"events[1]\": invalid event op 'fly'; expected one of "),
    ],
    ids=["seed text", "negative seed", "seed above bound", "fractional seed", "boolean seed", "recovery_start text",
         "recovery_start after events", "negative recovery_start", "violation text", "unknown violation", "event"],
)
def test_cli_rejects_invalid_trace_top_level(tmp_path: Path, fields: dict[str, object], message: str) -> None:
    path = _trace_with(tmp_path, **{"events": [ONE_TICK], **fields})

    code, _, err = run_cli("--replay", str(path))

    assert code == 2
    assert err.startswith(f"cluster simulate: error: {path} {message}"), err


def test_cli_rejects_missing_trace_seed(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    path.write_text(json.dumps({key: value for key, value in VALID_TRACE.items() if key != "seed"}), encoding="utf-8")

    code, _, err = run_cli("--replay", str(path))

    assert code == 2
    assert err.strip() == (f'cluster simulate: error: {path} is invalid: "seed" is missing; expected an integer from '
                           f"0 to {MAX_SEED_TEXT}")


def test_cli_replay_not_reproduced_exits_3(tmp_path: Path) -> None:
    recorded = {"name": "ElectionSafetyInv", "step": 1, "details": ["term 1 had 2 leaders: sync nodes [1, 2]"]}
    path = _trace_with(tmp_path, violation=recorded)

    code, out, err = run_cli("--replay", str(path))

    assert code == 3
    assert err == ""
    assert out.splitlines()[-1] == "note: the trace recorded ElectionSafetyInv, the replay found none"


def test_cli_replay_clean_trace_exits_0(tmp_path: Path) -> None:
    code, out, _ = run_cli("--replay", str(_trace_with(tmp_path, violation=None)))

    assert code == 0
    assert "note:" not in out


def test_trace_timers_share_scenario_bound(tmp_path: Path) -> None:
    """A trace rejects the timer that a scenario file rejects, and accepts the largest one a scenario accepts."""
    too_long = _trace_with(tmp_path, {"timers": {"election_timeout_max": 100_000_000}})
    code, _, err = run_cli("--replay", str(too_long))
    with pytest.raises(ScenarioError, match="expected an integer from 1 to 1000"):
        run_scenario("cluster election_timeout_max=100000000\n")

    assert code == 2
    assert '"config.timers.election_timeout_max" must be an integer from 1 to 1000 ticks, found 100000000' in err

    longest = _trace_with(tmp_path, {"timers": {"election_timeout_max": MAX_TIMER_TICKS}})
    assert read_trace(longest).config.timers.election_timeout_max == MAX_TIMER_TICKS


def test_timers_reject_out_of_range() -> None:
    with pytest.raises(TimersError, match=r"^client_retry must be from 1 to 1000 ticks, found 1001$"):
        Timers(client_retry=MAX_TIMER_TICKS + 1)
    with pytest.raises(TimersError, match=r"^write_retry must be from 1 to 1000 ticks, found 0$"):
        Timers(write_retry=0)


@pytest.mark.parametrize("config", [SimConfig(), EXPLORE_CONFIG], ids=["default", "explore"])
def test_trace_config_round_trip(tmp_path: Path, config: SimConfig) -> None:
    """A written configuration reads back equal, including the 0 random steps that --explore records."""
    path = tmp_path / "trace.json"
    write_trace(path, RunResult(config, 0, [], None, None))

    assert read_trace(path).config == config


def test_cli_finds_shrinks_and_replays(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"

    code, out, _ = run_cli("--bug", "early_ack", "--runs", "20", "--trace-out", str(path),
                           "--shrink-budget", "300")
    replay_code, replay_out, _ = run_cli("--replay", str(path))

    assert code == 1
    assert "CommittedOnAllInv violated" in out
    assert "shrunk from" in out
    assert replay_code == 1
    assert "CommittedOnAllInv violated" in replay_out
    assert "note:" not in replay_out


def test_cli_clean_run_exit_zero() -> None:
    code, out, _ = run_cli("--steps", "500", "--runs", "3")

    assert code == 0
    assert "no violation in 3 runs" in out


def test_cli_explore_reports_counts() -> None:
    code, out, _ = run_cli("--explore", "--depth", "3")

    assert code == 0
    assert "explored depth 3: 258 states reached, 125 distinct" in out
