"""Run TLC on the smallest configuration and on each bug configuration.

These tests run only when TLA2TOOLS is the path of a tla2tools.jar (`make
tla2tools` puts one at build/spec/tla2tools.jar); otherwise they are
skipped. On 2 cores with TLC 2.15 they took about 9 minutes in all:
MC_3x2 about 3 minutes, the NoFence configuration about 5.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_spec_syntax import load_spec_check

spec_check = load_spec_check()


def tla2tools_jar() -> Path | None:
    configured = os.environ.get("TLA2TOOLS")
    if not configured:
        return None
    candidate = Path(configured)
    return candidate if candidate.is_file() else None


JAR = tla2tools_jar()
pytestmark = [
    pytest.mark.skipif(JAR is None, reason="TLA2TOOLS does not point to a tla2tools.jar; "
                       "run `make tla2tools` and set TLA2TOOLS=build/spec/tla2tools.jar"),
    pytest.mark.skipif(shutil.which("java") is None, reason="no java binary on PATH"),
    pytest.mark.timeout(900),
]


def test_tlc_smallest_config_passes() -> None:
    assert JAR is not None
    config = spec_check.CONFIGS[0]

    rows = spec_check.run_tlc(config, JAR, workers=2)

    assert {row.invariant for row in rows} == set(config.invariants())
    failed = [(row.invariant, row.result, row.detail) for row in rows if row.result != "ok"]
    assert failed == []


@pytest.mark.parametrize("config", spec_check.BUG_CONFIGS, ids=lambda c: c.bug)
def test_tlc_finds_bug(config: object) -> None:
    assert JAR is not None

    rows = spec_check.run_tlc(config, JAR, workers=2)

    expected = config.expected  # type: ignore[attr-defined]
    results = {row.invariant: row.result for row in rows}
    assert results.get(expected) == "violated", rows
