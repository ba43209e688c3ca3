"""Keep the names of the TLA+ spec and of the Python code in step.

Each spec action is implemented by a handler registered with
`@action("Name")`, and each invariant by a function registered with
`@invariant("Name")` (cluster.core.spec_names). The names are read from the
spec's parse tree, not with regular expressions.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_spec_syntax import (
    SPEC_DIR,
    load_spec_check,
    spec_actions,
    spec_definitions,
    spec_invariants,
)

from cluster.core import spec_names

EXPECTED_INVARIANTS = {
    "ElectionSafetyInv", "EpochFencingInv", "CommittedOnAllInv", "LogMatchingInv",
    "OutputPrefixInv", "LamportOrderInv", "ClientOrderInv", "AckedCommittedInv",
}

EXPECTED_ACTIONS = {
    "ElectionTimeout", "HandlePreVote", "HandlePreVoteReply", "HandleRequestVote", "HandleVoteReply", "BecomeLeader",
    "SendHeartbeats", "HandleHeartbeat", "HandleHeartbeatReply", "CheckQuorum",
    "ProposeConfig", "InstallEpoch", "HandleEpochReady", "HandleClientRequest",
    "HandleWriteAck", "DetectStoreFailure", "AppendOutput",
    "HandleNewEpoch", "HandleEpochSync", "HandleEpochSyncReply", "HandleWrite",
    "HandleReplicate", "HandleReplicateReply", "HandleCommit", "HandleCatchUp",
    "HandleCatchUpReply",
    "ClientSend", "HandleClientReply",
    "CrashSync", "RestartSync", "CrashStore", "RestartStore", "DropMessage",
    "DuplicateMessage",
}

SPEC_BUGS = {"DoubleVote": "double_vote", "EarlyAck": "early_ack",
             "SkipEpochCheck": "skip_epoch_check", "NoFence": "no_fence"}


def test_spec_defines_listed_invariants() -> None:
    assert spec_invariants() == EXPECTED_INVARIANTS


def test_spec_next_applies_listed_actions() -> None:
    assert spec_actions() == EXPECTED_ACTIONS


def test_every_spec_action_has_python_handler() -> None:
    registered = spec_names.registered_actions()

    missing = sorted(spec_actions() - registered.keys())

    assert missing == [], f"spec actions without @action handler: {missing}"


def test_every_python_action_is_in_spec() -> None:
    registered = spec_names.registered_actions()

    unknown = sorted(registered.keys() - spec_actions())

    assert unknown == [], f"@action names that the spec does not define: {unknown}"


def test_every_spec_invariant_has_python_check() -> None:
    registered = spec_names.registered_invariants()

    missing = sorted(spec_invariants() - registered.keys())

    assert missing == [], f"spec invariants without @invariant function: {missing}"


def test_every_python_invariant_is_in_spec() -> None:
    registered = spec_names.registered_invariants()

    unknown = sorted(registered.keys() - spec_invariants())

    assert unknown == [], f"@invariant names that the spec does not define: {unknown}"


@pytest.mark.parametrize("cfg", sorted(SPEC_DIR.glob("*.cfg")), ids=lambda p: p.name)
def test_cfg_invariants_exist_in_spec(cfg: object) -> None:
    spec_check = load_spec_check()
    listed = spec_check.cfg_invariants(cfg.read_text(encoding="utf-8"))  # type: ignore[attr-defined]

    unknown = sorted(set(listed) - spec_invariants())

    assert listed, f"{cfg} lists no invariant"
    assert unknown == [], f"{cfg} lists invariants the spec does not define: {unknown}"


@pytest.mark.parametrize("cfg", sorted(SPEC_DIR.glob("*.cfg")), ids=lambda p: p.name)
def test_cfg_properties_exist_in_spec(cfg: object) -> None:
    spec_check = load_spec_check()
    listed = spec_check.cfg_names(cfg.read_text(encoding="utf-8"),  # type: ignore[attr-defined]
                                  spec_check.PROPERTY_KEYWORDS)

    unknown = sorted(set(listed) - spec_definitions().keys())

    assert unknown == [], f"{cfg} lists properties the spec does not define: {unknown}"


def test_bug_configs_cover_every_bug() -> None:
    spec_check = load_spec_check()

    bugs = {config.bug for config in spec_check.BUG_CONFIGS}

    assert bugs == set(SPEC_BUGS)


def test_python_bug_enum_matches_spec() -> None:
    from cluster.core.bugs import Bug

    values = {member.value for member in Bug}

    assert values == set(SPEC_BUGS.values())
