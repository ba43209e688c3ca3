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
from pathlib import Path

import pytest

from cluster.sim.scenario import (
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
        ("cluster sync=x", "invalid sync='x'"),
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
