"""Tests of the store node process that need no sockets, here the garbage collection of its log."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cluster.node import store_process


@pytest.fixture
def freezing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Install the freezing gc callback for one test, and remove it and unfreeze afterwards."""
    monkeypatch.setattr(store_process, "_freeze_callback", None)
    gc.unfreeze()
    callback = store_process.freeze_after_slow_collections()
    try:
        yield
    finally:
        gc.callbacks.remove(callback)
        gc.unfreeze()


def test_slow_full_collection_freezes(freezing: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_process, "SLOW_COLLECTION_SECONDS", 0.0)
    log = [[seq] for seq in range(10_000)]  # lists, which the collector tracks

    gc.collect()

    assert gc.get_freeze_count() >= len(log)


def test_fast_full_collection_keeps_generations(freezing: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_process, "SLOW_COLLECTION_SECONDS", 60.0)

    gc.collect()

    assert gc.get_freeze_count() == 0


def test_young_collection_never_freezes(freezing: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_process, "SLOW_COLLECTION_SECONDS", 0.0)

    gc.collect(0)

    assert gc.get_freeze_count() == 0


def test_callback_installed_once(freezing: None) -> None:
    first = store_process.freeze_after_slow_collections()

    second = store_process.freeze_after_slow_collections()

    assert second is first
    assert gc.callbacks.count(first) == 1
