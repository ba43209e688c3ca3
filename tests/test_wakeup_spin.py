"""The poll window of the wake-up diagnostic: it keeps an event loop awake, then lets it sleep again."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from cluster.node.client_process import ReplyProtocol
from cluster.node.runtime import NodeRuntime
from cluster.node.sync_process import SyncRuntime

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def wakeup_spin() -> ModuleType:
    """Load benchmarks/wakeup_spin.py, which imports its sibling scripts by their bare names."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("bench_wakeup_spin", BENCHMARKS / "wakeup_spin.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_spinner_polls_until_window_closes(wakeup_spin: ModuleType) -> None:
    spinner = wakeup_spin.Spinner(0.02, yield_core=False)

    async def scenario() -> tuple[int, bool, int, bool]:
        spinner.touch()
        await asyncio.sleep(0.01)
        during = (spinner.polls, spinner.polling)
        await asyncio.sleep(0.03)
        return (*during, spinner.polls, spinner.polling)

    polls_during, polling_during, polls_after, polling_after = asyncio.run(scenario())

    assert polls_during > 1
    assert polling_during
    assert not polling_after
    assert polls_after >= polls_during


def test_spinner_idle_loop_does_not_poll(wakeup_spin: ModuleType) -> None:
    spinner = wakeup_spin.Spinner(0.005, yield_core=False)

    async def scenario() -> int:
        spinner.touch()
        await asyncio.sleep(0.02)
        closed_at = spinner.polls
        await asyncio.sleep(0.02)
        return spinner.polls - closed_at

    assert asyncio.run(scenario()) == 0


def test_spinner_yields_core_between_polls(wakeup_spin: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    yields = []
    monkeypatch.setattr(os, "sched_yield", lambda: yields.append(time.monotonic()))
    spinner = wakeup_spin.Spinner(0.01, yield_core=True)

    async def scenario() -> None:
        spinner.touch()
        await asyncio.sleep(0.02)

    asyncio.run(scenario())

    assert spinner.polls > 0
    assert len(yields) == spinner.polls


def test_spinning_wraps_then_restores_handlers(wakeup_spin: ModuleType) -> None:
    handlers = (NodeRuntime._handle_peer_message, SyncRuntime.on_client_message, ReplyProtocol.data_received)

    with wakeup_spin.spinning(wakeup_spin.Spinner(0.001, yield_core=True)):
        wrapped = (NodeRuntime._handle_peer_message, SyncRuntime.on_client_message, ReplyProtocol.data_received)

    restored = (NodeRuntime._handle_peer_message, SyncRuntime.on_client_message, ReplyProtocol.data_received)
    assert all(new is not old for new, old in zip(wrapped, handlers, strict=True))
    assert restored == handlers


def test_spinning_opens_window_on_reply(wakeup_spin: ModuleType) -> None:
    spinner = wakeup_spin.Spinner(0.01, yield_core=False)

    async def scenario() -> bool:
        protocol = ReplyProtocol("a test connection", lambda message: None)
        protocol.data_received(b"")
        return spinner.polling

    with wakeup_spin.spinning(spinner):
        polling = asyncio.run(scenario())

    assert polling
