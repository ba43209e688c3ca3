"""Scenario files: hand-written schedules of the protocol with their expected output.

Each file in `tests/scenarios/` opens with the rule it shows. The test runs
its commands on the in-memory cluster and compares every command's output
with the file. After a deliberate change of behaviour, regenerate the
expected output with

    SCENARIO_REWRITE=1 pytest tests/test_scenarios.py

and read the diff before committing it. The command language is described
in `src/cluster/sim/scenario.py`.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from cluster.sim.scenario import (
    MAX_COUNT,
    REWRITE_VARIABLE,
    ScenarioError,
    find_mismatches,
    parse_scenario,
    render_scenario,
    rewrite_scenario,
    run_scenario,
)

SCENARIO_DIR = Path(__file__).parent / "scenarios"
SCENARIO_FILES = sorted(SCENARIO_DIR.glob("*.txt"))


@pytest.fixture(autouse=True)
def quiet_nodes() -> None:
    logging.getLogger("cluster.core").setLevel(logging.CRITICAL)


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[path.stem for path in SCENARIO_FILES])
def test_scenario_output_matches(path: Path) -> None:
    text = path.read_text(encoding="utf-8")

    if os.environ.get(REWRITE_VARIABLE) == "1":
        path.write_text(rewrite_scenario(text), encoding="utf-8")
        return
    mismatches = find_mismatches(text)

    assert not mismatches, (
        f"{path.name}: {len(mismatches)} command(s) printed other output; first one:\n"
        f"{mismatches[0].describe()}\n(run with {REWRITE_VARIABLE}=1 to rewrite the file after a deliberate change)"
    )


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[path.stem for path in SCENARIO_FILES])
def test_scenario_states_its_rule(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]

    assert first.startswith("# "), f"{path.name} must open with a comment stating the rule it shows"


def test_scenario_files_exist() -> None:
    assert len(SCENARIO_FILES) >= 12


# --- The file format and the command language -------------------------------------------------


FORMAT_EXAMPLE = """\
# A comment.
cluster sync=3 store=2 clients=1 messages=1 seed=0
----
old output

# Another comment.
status
"""


def test_render_keeps_comments_and_commands() -> None:
    scenario, outputs = run_scenario(FORMAT_EXAMPLE)

    text = render_scenario(scenario, outputs)

    assert parse_scenario(text).blocks[0].preamble == ("# A comment.",)
    assert parse_scenario(text).blocks[1].preamble == ("", "# Another comment.")
    assert [block.command for block in parse_scenario(text).blocks] == [block.command for block in scenario.blocks]
    assert rewrite_scenario(text) == text


def test_command_without_expected_output_mismatches() -> None:
    mismatches = find_mismatches(FORMAT_EXAMPLE)

    assert [mismatch.line for mismatch in mismatches] == [2, 7]
    assert mismatches[1].expected is None


@pytest.mark.parametrize(
    ("commands", "message"),
    [
        ("status", "line 1: invalid command 'status': the first command must be 'cluster ...'"),
        ("cluster nodes=3", "invalid cluster setting 'nodes=3'"),
        ("cluster sync=x", "invalid sync=x; expected an integer from 1 to 15"),
        ("cluster sync=0", "invalid sync=0"),
        ("cluster bugs=typo", "unknown bug 'typo'"),
        ("cluster election_timeout_min=2", "election timeouts must satisfy"),
        ("cluster\ncluster", "line 2: invalid command 'cluster': 'cluster' may appear only once"),
        ("cluster\njump", "unknown command 'jump'"),
        ("cluster\ntick sync 9", "no sync 9 in this cluster"),
        ("cluster\ntick sync 1 x0", "invalid count 'x0'"),
        ("cluster\ntick sync 1 until boss", "invalid role 'boss'"),
        ("cluster\ndeliver sync 1 sync 2", "invalid selector"),
        ("cluster\ndeliver sync 1 -> sync 2 Vote", "unknown message type 'Vote'"),
        ("cluster\ndeliver planet -> sync 2", "invalid endpoint 'planet'"),
        ("cluster\ncrash client 1", "expected a sync or store node"),
        ("cluster\ncomplete sync 1", "expected 'complete output all'"),
        ("cluster\ncheck everything", "expected 'check invariants'"),
        ("----", "line 1: '----' without a command"),
    ],
)
def test_invalid_command_rejected(commands: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        run_scenario(commands + "\n")


@pytest.mark.parametrize(
    ("commands", "message"),
    [
        ("cluster election_timeout_max=100000000",
         "invalid election_timeout_max=100000000; expected an integer from 1 to 1000"),
        ("cluster client_retry=-5", "invalid client_retry=-5; expected an integer from 1 to 1000"),
        ("cluster write_retry=0", "invalid write_retry=0; expected an integer from 1 to 1000"),
        ("cluster seed=-1", f"invalid seed=-1; expected an integer from 0 to {2**63 - 1}"),
        ("cluster seed=" + "9" * 5000, f"expected an integer from 0 to {2**63 - 1}"),
        ("cluster messages=1001", "invalid messages=1001; expected an integer from 0 to 1000"),
        ("cluster\ntick sync 1 x99999999999", "invalid count 'x99999999999'; expected x1 to x10000"),
        ("cluster\ntick sync 1 x10001", "invalid count 'x10001'; expected x1 to x10000"),
        ("cluster\ntick all x10001", "invalid count 'x10001'; expected x1 to x10000"),
        ("cluster\ndrop sync 1 -> * x10001", "invalid count 'x10001'; expected x1 to x10000"),
        ("cluster\ncomplete output all x10001", "invalid count 'x10001'; expected x1 to x10000"),
        ("cluster\nrounds 999999999", "expected 'rounds N' with N from 1 to 10000"),
        ("cluster\nrounds " + "9" * 5000, "expected 'rounds N' with N from 1 to 10000"),
        ("cluster\nrounds 0", "expected 'rounds N' with N from 1 to 10000"),
    ],
    ids=["timer", "negative timer", "zero timer", "negative seed", "long seed", "messages", "tick count",
         "tick count above bound", "tick all count", "drop count", "complete count", "rounds", "long rounds",
         "zero rounds"],
)
@pytest.mark.timeout(30)  # without the bounds, some of these commands would run for hours
def test_unbounded_value_rejected(commands: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(message)):
        run_scenario(commands + "\n")


def test_largest_bounds_finish() -> None:
    """The largest timer and count are accepted, and `tick until` gives up after 10 of the longest timeouts."""
    text = ("cluster sync=3 store=2 clients=0 messages=0 election_timeout_max=1000 store_failure_timeout=1000\n"
            "tick sync 1 until leader\n"
            "tick sync 2 x10000\n"
            "rounds 10000\n")

    _, outputs = run_scenario(text)

    assert outputs[1][-1] == "sync 1 is not leader after 10000 ticks"
    assert outputs[3][-1] == "ran 10000 rounds"


def test_shipped_scenarios_within_bounds() -> None:
    """Every count and timer in the shipped scenarios is inside the bounds, with room to spare."""
    counts = []
    for path in SCENARIO_FILES:
        for block in parse_scenario(path.read_text(encoding="utf-8")).blocks:
            words = block.command.split()
            counts += [int(word[1:]) for word in words if re.fullmatch(r"x\d+", word)]
            if words[0] == "rounds":
                counts.append(int(words[1]))

    assert counts
    assert max(counts) * 100 <= MAX_COUNT
